//! berth's streaming server for the CRI's `Exec`, `Attach` and `PortForward`: those calls park
//! their request under a one-time token ([`tokens`]) and answer the URL
//! `http://ADDR/{exec,attach,portforward}/TOKEN`; the client (kubelet's proxy, crictl,
//! critest) upgrades a request to that URL to SPDY/3.1 ([`spdy`]) or to WebSocket channels
//! ([`ws`]) and speaks kubelet's remotecommand ([`remotecommand`]: `v4.channel.k8s.io` down
//! to `channel.k8s.io`) or port forwarding on it (`portforward.k8s.io` streams over SPDY,
//! [`portforward`]; a channel pair per port over WebSocket, [`portforward_ws`]) ([`conn`] is
//! what both wires give the protocols). The engine is reached only through
//! [`backend::StreamBackend`].

pub mod backend;
pub mod conn;
mod http;
pub mod portforward;
pub mod portforward_ws;
pub mod remotecommand;
pub mod requests;
pub mod spdy;
pub mod tokens;
pub mod ws;

use backend::{ExecSpec, StreamOpts};
pub use http::{bind, serve};

/// A request parked until its client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    /// An exec.
    Exec(ExecSpec),
    /// An attach to the container (full ID).
    Attach {
        /// The container.
        container_id: String,
        /// Its streams.
        opts: StreamOpts,
    },
    /// Port forwards into the pod (full ID).
    PortForward {
        /// The pod.
        pod_id: String,
        /// The ports the request named (over WebSocket, the ports forwarded; none: the
        /// client's `port` query parameters; SPDY clients name theirs per stream).
        ports: Vec<i32>,
    },
}

impl StreamRequest {
    /// The URL path segment it is served under.
    fn kind(&self) -> &'static str {
        match self {
            StreamRequest::Exec(_) => "exec",
            StreamRequest::Attach { .. } => "attach",
            StreamRequest::PortForward { .. } => "portforward",
        }
    }
}

/// The streaming server's front: where it listens and the requests it waits for.
pub struct Streaming {
    base: String,
    tokens: tokens::Tokens<StreamRequest>,
}

impl Streaming {
    /// The URL a client streams `req` at.
    pub fn url(&self, req: StreamRequest) -> crate::CriResult<String> {
        let kind = req.kind();
        let token = self.tokens.insert(req)?;
        Ok(format!("{}/{kind}/{token}", self.base))
    }
}
