//! What the streaming server needs from the engine: starting an exec, attaching to a
//! container, and opening a TCP connection inside a pod's network namespace — in plain I/O
//! types, so the engine knows nothing of SPDY and this crate nothing of the engine.

use crate::error::CriResult;
use std::future::Future;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte source.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// A byte sink.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;
/// A connection both ways (writes shut down to half-close).
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// Which of a process's streams a client wants, and whether it has a terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOpts {
    /// Its standard input.
    pub stdin: bool,
    /// Its standard output.
    pub stdout: bool,
    /// Its standard error (never with a terminal).
    pub stderr: bool,
    /// A terminal (output on stdout only, resizable).
    pub tty: bool,
}

/// An exec a client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The container (its full ID).
    pub container_id: String,
    /// The command.
    pub cmd: Vec<String>,
    /// Its streams.
    pub opts: StreamOpts,
}

/// A terminal size change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// A running process's I/O, as the engine gives it.
pub struct Session {
    /// Its standard input (dropped or shut down: end of input).
    pub stdin: Option<Writer>,
    /// Its standard output (a terminal's whole output).
    pub stdout: Option<Reader>,
    /// Its standard error.
    pub stderr: Option<Reader>,
    /// Resizes its terminal.
    pub resize: Option<Box<dyn Fn(TermSize) + Send + Sync>>,
    /// Completes when it ends: an exec's exit code, or `None` when an attached container's
    /// streams ended.
    pub exit: Pin<Box<dyn Future<Output = Option<i32>> + Send>>,
}

/// The engine under the streaming server.
pub trait StreamBackend: Send + Sync + 'static {
    /// Starts `spec` in its (running) container.
    fn exec(&self, spec: ExecSpec) -> impl Future<Output = CriResult<Session>> + Send;
    /// Attaches to the main process of the container `id`.
    fn attach(&self, id: &str, opts: StreamOpts)
        -> impl Future<Output = CriResult<Session>> + Send;
    /// Connects to `127.0.0.1:port` in the network namespace of the pod `pod_id`.
    fn port_forward(
        &self,
        pod_id: &str,
        port: u16,
    ) -> impl Future<Output = CriResult<Box<dyn Duplex>>> + Send;
}
