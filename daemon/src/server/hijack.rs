//! Docker's connection hijack for attach and exec: answer `101 UPGRADED` (or `200` to clients
//! that did not ask for an upgrade), then hand the raw bidirectional stream to the handler.

use super::http::{empty, Resp};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

/// The upgraded connection.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// A pending upgrade taken from a request (whose body can still be read).
pub struct Upgrader {
    wants: bool,
    on: hyper::upgrade::OnUpgrade,
}

/// Takes the upgrade out of `req`.
pub fn take(req: &mut Request<Incoming>) -> Upgrader {
    let wants = req.headers().get("upgrade").is_some();
    Upgrader {
        wants,
        on: hyper::upgrade::on(req),
    }
}

impl Upgrader {
    /// The response to send and a future yielding the raw stream. `multiplexed` picks the
    /// content type (stdcopy frames vs raw TTY bytes).
    pub fn respond(
        self,
        multiplexed: bool,
    ) -> (Resp, impl std::future::Future<Output = Option<Upgraded>>) {
        let ct = if multiplexed {
            "application/vnd.docker.multiplexed-stream"
        } else {
            "application/vnd.docker.raw-stream"
        };
        let mut resp = empty(if self.wants {
            StatusCode::SWITCHING_PROTOCOLS
        } else {
            StatusCode::OK
        });
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static(ct));
        if self.wants {
            h.insert("connection", HeaderValue::from_static("Upgrade"));
            h.insert("upgrade", HeaderValue::from_static("tcp"));
        }
        let on = self.on;
        (resp, async move { on.await.ok().map(TokioIo::new) })
    }
}

/// `take` + `respond` in one step.
pub fn hijack(
    req: &mut Request<Incoming>,
    multiplexed: bool,
) -> (Resp, impl std::future::Future<Output = Option<Upgraded>>) {
    take(req).respond(multiplexed)
}
