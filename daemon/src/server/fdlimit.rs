//! Out of descriptors: a clear answer instead of a hang.
//!
//! When `accept` fails with `EMFILE`/`ENFILE` (it does before it even looks for a client),
//! a client stays in the listen backlog, and would wait there until some descriptor is freed
//! — for ever, if none is. So each listener keeps one spare descriptor: while descriptors
//! are out, it looks every [`PAUSE`] whether a client waits (`poll`, no descriptor needed),
//! and only then lets go of the spare, accepts that client, answers Docker's error shape
//! (500, `{"message": ...}`) naming the limit, closes the connection and takes its spare
//! back. Between looks it sleeps: no busy loop while the limit is reached.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How often a listener out of descriptors looks for a waiting client.
pub const PAUSE: Duration = Duration::from_millis(20);

/// Whether an `accept` error means the process (or the system) has no descriptor left.
pub fn exhausted(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// One spare descriptor, held for the moment descriptors run out.
pub struct Spare(Option<std::fs::File>);

impl Spare {
    /// Opens the spare (`/dev/null`).
    pub fn new() -> Spare {
        Spare(std::fs::File::open("/dev/null").ok())
    }

    /// Called when `accept` on the listener `fd` failed for want of descriptors: when a
    /// client waits, frees the spare so `accept` can bring it, answers it the error, and
    /// takes the spare back; else (or after) pauses for [`PAUSE`].
    pub async fn refuse<S, F>(&mut self, fd: BorrowedFd<'_>, accept: impl FnOnce() -> F)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
        F: std::future::Future<Output = io::Result<Option<S>>>,
    {
        if waiting(fd) {
            self.0 = None;
            let accepted = tokio::time::timeout(PAUSE, accept()).await;
            if let Ok(Ok(Some(mut s))) = accepted {
                let _ = tokio::time::timeout(Duration::from_millis(500), answer(&mut s)).await;
            }
            *self = Spare::new();
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Whether a client waits on the listening socket `fd`.
fn waiting(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, its count 1, no waiting; `fd` is borrowed open for the call.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// Reads what the client sent so far (so closing does not reset the answer away) and
/// answers the error.
async fn answer<S>(s: &mut S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await;
    let soft = berth_core::nofile::current().map_or(0, |(soft, _)| soft);
    let body = serde_json::json!({
        "message": format!(
            "berthd has run out of file descriptors (RLIMIT_NOFILE {soft}): too many containers or connections at once; raise berthd's limit (LimitNOFILE)"
        )
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    let _ = s.shutdown().await;
}
