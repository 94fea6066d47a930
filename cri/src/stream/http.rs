//! The streaming server's HTTP side: a TCP listener (the `streaming_address`), one-time tokens
//! taken from the request path, the SPDY/3.1 upgrade with the `X-Stream-Protocol-Version`
//! negotiation kubelet does (the client lists what it speaks, the server answers the one it
//! picked) or the WebSocket one (`Sec-WebSocket-Protocol`), then the connection handed to the
//! remotecommand or port-forward protocol.
//! Bounded: request headers must come within 30 s, and at most 128 connections are served at
//! once.

use super::backend::StreamBackend;
use super::conn::Limits;
use super::remotecommand::{self, Proto};
use super::{portforward, portforward_ws};
use super::{spdy, ws};
use super::{StreamRequest, Streaming};
use crate::error::CriError;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The most connections served at once.
const MAX_CONNECTIONS: usize = 128;
/// How long a client has to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The upgrade protocol.
const SPDY: &str = "SPDY/3.1";
/// The negotiation header.
const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";
/// WebSocket's negotiation header.
const WS_PROTOCOL_HEADER: &str = "Sec-WebSocket-Protocol";
/// The WebSocket channel protocols exec and attach speak, berth's preference first.
const WS_PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// Binds the streaming server on `addr` (`HOST:PORT`; port 0 picks a free one). Called
/// within the tokio runtime.
pub fn bind(addr: &str) -> Result<(TcpListener, Arc<Streaming>), CriError> {
    let err = |e| CriError::Socket {
        path: addr.to_string(),
        source: e,
    };
    let l = std::net::TcpListener::bind(addr).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    let mut local = l.local_addr().map_err(err)?;
    let l = TcpListener::from_std(l).map_err(err)?;
    // A wildcard address is not one a client can dial: loopback stands for it.
    if local.ip().is_unspecified() {
        local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok((
        l,
        Arc::new(Streaming {
            base: format!("http://{local}"),
            tokens: Default::default(),
        }),
    ))
}

/// Serves streaming connections on `listener` until `shutdown` completes.
pub async fn serve<B: StreamBackend>(
    listener: TcpListener,
    streaming: Arc<Streaming>,
    backend: Arc<B>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (sock, _) = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!("streaming server accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(sock);
            continue;
        };
        let (st, b) = (streaming.clone(), backend.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (st, b) = (st.clone(), b.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(req, st, b)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(sock), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("streaming connection: {e}");
            }
            drop(permit);
        });
    }
}

fn plain(code: StatusCode, text: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.into())));
    *r.status_mut() = code;
    r
}

/// Every protocol the client offers in `header`, in its order.
fn offered(req: &Request<Incoming>, header: &str) -> Vec<String> {
    req.headers()
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The protocol berth speaks for `req`: `Ok(None)` when the client offers none (an exec
/// client then speaks the first version), `Err` when it offers only others.
fn negotiate<'a>(offers: &[String], ours: &[&'a str]) -> Result<Option<&'a str>, String> {
    if offers.is_empty() {
        return Ok(None);
    }
    ours.iter()
        .find(|p| offers.iter().any(|o| o == *p))
        .map(|p| Some(*p))
        .ok_or_else(|| {
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offers:?}, \
                 server supports {ours:?}"
            )
        })
}

fn handle<B: StreamBackend>(
    mut req: Request<Incoming>,
    st: Arc<Streaming>,
    backend: Arc<B>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_matches('/').to_string();
    let Some((kind, token)) = path.split_once('/') else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let Some(sr) = st.tokens.take(token).filter(|r| r.kind() == kind) else {
        return plain(StatusCode::NOT_FOUND, "unknown or expired streaming token");
    };
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let upgrade = header(hyper::header::UPGRADE).to_ascii_lowercase();
    let ws_key = header(hyper::header::SEC_WEBSOCKET_KEY);
    // A WebSocket upgrade needs its key (RFC 6455).
    let websocket = upgrade.contains("websocket") && !ws_key.is_empty();
    // A WebSocket port forward's ports are fixed now (kubelet's `V4Options`).
    let mut ws_ports = Vec::new();
    if let (true, StreamRequest::PortForward { ports, .. }) = (websocket, &sr) {
        match portforward_ws::ports(ports, req.uri().query()) {
            Ok(p) => ws_ports = p,
            Err(m) => return plain(StatusCode::BAD_REQUEST, m),
        }
    }
    if !websocket && !upgrade.contains(&SPDY.to_ascii_lowercase()) {
        return plain(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: berth's streaming server speaks SPDY/3.1 and WebSocket",
        );
    }
    let port_forward = matches!(sr, StreamRequest::PortForward { .. });
    let chosen = if websocket && port_forward {
        negotiate(
            &offered(&req, WS_PROTOCOL_HEADER),
            &portforward_ws::PROTOCOLS,
        )
    } else if websocket {
        negotiate(&offered(&req, WS_PROTOCOL_HEADER), &WS_PROTOCOLS)
    } else if port_forward {
        negotiate(&offered(&req, PROTOCOL_HEADER), &[portforward::PROTOCOL])
    } else {
        negotiate(
            &offered(&req, PROTOCOL_HEADER),
            &Proto::ALL.map(Proto::name),
        )
    };
    let chosen = match chosen {
        Ok(c) => c,
        Err(m) => return plain(StatusCode::FORBIDDEN, m),
    };
    let proto = if websocket {
        match chosen {
            Some(c) if c.starts_with("v4.") => Proto::V4,
            _ => Proto::V1,
        }
    } else {
        Proto::ALL
            .into_iter()
            .find(|p| Some(p.name()) == chosen)
            .unwrap_or(Proto::V1)
    };
    let base64 = chosen.is_some_and(|c| c.contains("base64"));
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let io = match on.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!("streaming upgrade: {e}");
                return;
            }
        };
        let conn = if websocket && port_forward {
            let channels = portforward_ws::channels(&ws_ports);
            ws::start(io, Limits::default(), base64, channels)
        } else if websocket {
            ws::start(io, Limits::default(), base64, ws::remotecommand_channels())
        } else {
            spdy::conn::start(io, Limits::default())
        };
        match sr {
            StreamRequest::Exec(spec) => {
                let opts = spec.opts.clone();
                let b = backend.clone();
                remotecommand::serve(conn, proto, opts, async move { b.exec(spec).await }).await
            }
            StreamRequest::Attach { container_id, opts } => {
                let o = opts.clone();
                let b = backend.clone();
                let start = async move { b.attach(&container_id, o).await };
                remotecommand::serve(conn, proto, opts, start).await
            }
            StreamRequest::PortForward { pod_id, .. } if websocket => {
                portforward_ws::serve(conn, pod_id, ws_ports.len(), backend).await
            }
            StreamRequest::PortForward { pod_id, .. } => {
                portforward::serve(conn, pod_id, backend).await
            }
        }
    });
    let mut r = plain(StatusCode::SWITCHING_PROTOCOLS, "");
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    if websocket {
        h.insert(
            hyper::header::UPGRADE,
            hyper::header::HeaderValue::from_static("websocket"),
        );
        if let Ok(v) = ws::accept_key(&ws_key).parse() {
            h.insert(hyper::header::SEC_WEBSOCKET_ACCEPT, v);
        }
        if let Some(c) = chosen.and_then(|c| c.parse().ok()) {
            h.insert(hyper::header::SEC_WEBSOCKET_PROTOCOL, c);
        }
    } else {
        h.insert(
            hyper::header::UPGRADE,
            hyper::header::HeaderValue::from_static(SPDY),
        );
        if let Some(c) = chosen.and_then(|c| c.parse().ok()) {
            h.insert(PROTOCOL_HEADER, c);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_common_protocol_is_chosen() {
        let ours = Proto::ALL.map(Proto::name);
        let offers = vec!["v2.channel.k8s.io".to_string(), "v4.channel.k8s.io".into()];
        assert_eq!(negotiate(&offers, &ours), Ok(Some("v4.channel.k8s.io")));
        assert_eq!(negotiate(&[], &ours), Ok(None));
        assert!(negotiate(&["v9".into()], &ours).is_err());
    }
}
