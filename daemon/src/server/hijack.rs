//! Docker's connection hijack for attach and exec: answer `101 UPGRADED` with `Connection:
//! Upgrade` / `Upgrade: tcp`, then hand the raw bidirectional stream to the handler. Old
//! clients that did not ask for an upgrade get `200` and the output as the response body
//! instead (their stdin reads as closed).

use super::http::{empty, Body, Resp};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

/// The hijacked connection given to the handler: read the client's stdin from it, write
/// output to it (stdcopy frames when multiplexed), shut it down when done. To the domain it
/// is just a client stream (`AsyncRead + AsyncWrite`).
pub type Upgraded = crate::containers::streams::ClientStream;

/// A pending upgrade taken from a request (whose body can still be read).
pub struct Upgrader {
    wants: bool,
    on: hyper::upgrade::OnUpgrade,
}

/// Takes the upgrade out of `req`; call before reading the body.
pub fn take(req: &mut Request<Incoming>) -> Upgrader {
    let wants = req
        .headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.is_empty());
    Upgrader {
        wants,
        on: hyper::upgrade::on(req),
    }
}

/// The media type of a hijacked stream.
pub fn media_type(multiplexed: bool) -> &'static str {
    if multiplexed {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

impl Upgrader {
    /// Whether the client asked for an upgrade.
    #[allow(dead_code)] // for handlers that behave differently for old clients
    pub fn wants_upgrade(&self) -> bool {
        self.wants
    }

    /// The response to return from the handler, and a future yielding the raw stream once
    /// the response went out (`None` if the client vanished). `multiplexed` picks the content
    /// type (stdcopy frames vs raw TTY bytes).
    pub fn respond(
        self,
        multiplexed: bool,
    ) -> (Resp, impl std::future::Future<Output = Option<Upgraded>>) {
        let ct = HeaderValue::from_static(media_type(multiplexed));
        if self.wants {
            let mut resp = empty(StatusCode::SWITCHING_PROTOCOLS);
            let h = resp.headers_mut();
            h.insert("content-type", ct);
            h.insert("connection", HeaderValue::from_static("Upgrade"));
            h.insert("upgrade", HeaderValue::from_static("tcp"));
            let on = self.on;
            let fut = async move {
                let io: Upgraded = Box::new(TokioIo::new(on.await.ok()?));
                Some(io)
            };
            return (resp, futures_util::future::Either::Left(fut));
        }
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (read, mut write) = tokio::io::split(ours);
        tokio::spawn(async move {
            let _ = write.shutdown().await;
        });
        let stream = tokio_util::io::ReaderStream::new(read).map(|r| r.map(Frame::data));
        let body: Body = BodyExt::boxed(StreamBody::new(stream));
        let mut resp = Resp::new(body);
        resp.headers_mut().insert("content-type", ct);
        let io: Upgraded = Box::new(theirs);
        let fut = futures_util::future::ready(Some(io));
        (resp, futures_util::future::Either::Right(fut))
    }
}

/// [`take`] + [`Upgrader::respond`] in one step.
pub fn hijack(
    req: &mut Request<Incoming>,
    multiplexed: bool,
) -> (Resp, impl std::future::Future<Output = Option<Upgraded>>) {
    take(req).respond(multiplexed)
}
