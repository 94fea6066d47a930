//! Port forwarding over WebSocket channels, as kubelet's streaming server serves it
//! (`pkg/kubelet/cri/streaming/portforward/websocket.go`): the ports are fixed when the
//! connection opens — the CRI request's `port` list, or, when it named none, the `port` query
//! parameters of the upgrade request (each a list of comma-separated ports, 1–65535) — and
//! port `i` gets channel `2i` for its data (both ways) and `2i+1` for its errors (berth's
//! side only). Before anything else berth sends the port, 2 bytes little-endian, on both
//! channels of a pair. Each pair is one TCP connection to its port in the pod, relayed as a
//! SPDY pair is ([`super::portforward`]: a failure is written as text on the error channel);
//! when every pair has ended berth closes the connection, and when the client goes every
//! relay ends. Subprotocols: none (binary), `v4.channel.k8s.io`, `v4.base64.channel.k8s.io`.

use super::backend::StreamBackend;
use super::conn::Conn;
use super::portforward;
use super::ws::Channel;
use std::sync::Arc;

/// The WebSocket subprotocols port forwarding speaks, berth's preference first (a client that
/// offers none gets binary channels).
pub const PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"];
/// The most ports one connection forwards (two channels each, within a connection's streams).
pub const MAX_PORTS: usize = 32;
/// The longest query string read for ports.
const MAX_QUERY: usize = 4096;

/// The ports of a WebSocket port forward: `requested` (the CRI request's), else the `port`
/// parameters of `query`; the refusal (kubelet's words where it has them) otherwise.
pub fn ports(requested: &[i32], query: Option<&str>) -> Result<Vec<i32>, String> {
    if !requested.is_empty() {
        return Ok(requested.to_vec());
    }
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY {
        return Err("the query is too long".into());
    }
    let mut out = Vec::new();
    let mut named = false;
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if k != "port" {
            continue;
        }
        named = true;
        // A comma may come percent-encoded.
        let v = v.replace("%2C", ",").replace("%2c", ",");
        if v.is_empty() {
            return Err("query parameter \"port\" cannot be empty".into());
        }
        for p in v.split(',') {
            let port: u16 = p
                .parse()
                .map_err(|_| format!("unable to parse {v:?} as a port"))?;
            if port < 1 {
                return Err(format!("port {v:?} must be > 0"));
            }
            out.push(i32::from(port));
        }
    }
    if !named {
        return Err("query parameter \"port\" is required".into());
    }
    if out.len() > MAX_PORTS {
        return Err(format!(
            "at most {MAX_PORTS} ports can be forwarded at once"
        ));
    }
    Ok(out)
}

/// The channels of `ports`: data (the client writes) then error, each opened by the port.
pub fn channels(ports: &[i32]) -> Vec<Channel> {
    let mut out = Vec::with_capacity(ports.len() * 2);
    for (i, p) in ports.iter().enumerate() {
        // An out-of-range port is sent truncated, as kubelet does; its relay fails.
        let first = (*p as u16).to_le_bytes().to_vec();
        for kind in ["data", "error"] {
            out.push(Channel {
                headers: vec![
                    ("streamtype".into(), kind.into()),
                    ("port".into(), p.to_string()),
                    ("requestid".into(), i.to_string()),
                ],
                readable: kind == "data",
                first: Some(first.clone()),
            });
        }
    }
    out
}

/// Relays the `pairs` channel pairs of `conn` to their ports in the pod `pod_id`; closes the
/// connection when all have ended or the client went.
pub async fn serve<B: StreamBackend>(
    mut conn: Conn,
    pod_id: String,
    pairs: usize,
    backend: Arc<B>,
) {
    let mut forwards = tokio::task::JoinSet::new();
    for _ in 0..pairs {
        let (Some(data), Some(error)) = (conn.next_stream().await, conn.next_stream().await) else {
            break;
        };
        forwards.spawn(portforward::forward(
            backend.clone(),
            pod_id.clone(),
            data,
            error,
        ));
    }
    let gone = conn.gone();
    tokio::select! {
        _ = async { while forwards.join_next().await.is_some() {} } => {}
        _ = gone => {}
    }
    forwards.abort_all();
    conn.finish().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_request_then_the_query() {
        assert_eq!(ports(&[80], Some("port=90")), Ok(vec![80]));
        assert_eq!(
            ports(&[], Some("port=80,8080&x=1&port=443")),
            Ok(vec![80, 8080, 443])
        );
        assert!(ports(&[], None)
            .expect_err("refused")
            .contains("is required"));
        assert!(ports(&[], Some("port="))
            .expect_err("refused")
            .contains("empty"));
        assert!(ports(&[], Some("port=0"))
            .expect_err("refused")
            .contains("> 0"));
        assert!(ports(&[], Some("port=70000"))
            .expect_err("refused")
            .contains("parse"));
        let many = vec!["port=1"; MAX_PORTS + 1].join("&");
        assert!(ports(&[], Some(&many))
            .expect_err("refused")
            .contains("at most"));
        assert!(ports(&[], Some(&"x".repeat(MAX_QUERY + 1))).is_err());
    }

    #[test]
    fn each_port_has_a_data_and_an_error_channel_opened_by_the_port() {
        let c = channels(&[8080, 443]);
        assert_eq!(c.len(), 4);
        assert!(c[0].readable && !c[1].readable && c[2].readable && !c[3].readable);
        assert_eq!(c[0].first.as_deref(), Some(&[0x90, 0x1f][..]));
        assert_eq!(c[3].first.as_deref(), Some(&[0xbb, 0x01][..]));
        assert_eq!(c[3].headers[0].1, "error");
        assert_eq!(c[2].headers[1].1, "443");
    }
}
