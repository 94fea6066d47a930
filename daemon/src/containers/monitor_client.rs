//! berthd's side of the monitor protocol (`monitor/PROTOCOL.md`, types in
//! `berth-monitor-proto`): connect to a container's `monitor.sock`, send one typed request,
//! read its reply — one line, bounded in length and in time — and the files a monitor shares
//! with berthd (`monitor.json` written for it, its ready line, `exit.json` read back).
//!
//! Every request names `berth_monitor_proto::PROTOCOL_VERSION`. A monitor started by an older berthd (live
//! restore across an upgrade) ignores the field and answers in the same shapes.

use berth_monitor_proto::{
    self as proto, Command, ExitRecord, MonitorConfig, ProtoError, Ready, Reply, Request, MAX_LINE,
};
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// How long a monitor may take to answer a request (a `start` waits for the init's set-up).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A conversation with a monitor that went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Its socket is gone or refuses: the monitor has exited (or never was).
    #[error("connecting to the container's monitor: {0}")]
    Connect(std::io::Error),
    /// The connection broke.
    #[error("talking to the container's monitor: {0}")]
    Io(std::io::Error),
    /// No reply within [`REPLY_TIMEOUT`].
    #[error("the container's monitor did not answer `{0}`")]
    Timeout(&'static str),
    /// The connection ended before the reply.
    #[error("the container's monitor closed the connection without answering")]
    Closed,
    /// The reply was not a protocol message.
    #[error("bad reply from the container's monitor: {0}")]
    Proto(#[from] ProtoError),
}

/// Connects to the monitor at `sock` and sends `cmd`; the connection is left for the reply.
pub async fn send(sock: &Path, cmd: Command) -> Result<UnixStream, ClientError> {
    let mut s = UnixStream::connect(sock)
        .await
        .map_err(ClientError::Connect)?;
    let line = Request::new(cmd).encode()?;
    s.write_all(&line).await.map_err(ClientError::Io)?;
    Ok(s)
}

/// Sends `cmd` to the monitor at `sock` and returns its reply (a failure reply is `Ok` here:
/// the monitor answered). Not for `wait`, whose answer comes at the exit.
pub async fn call(sock: &Path, cmd: Command) -> Result<Reply, ClientError> {
    let name = cmd.name();
    let mut s = send(sock, cmd).await?;
    reply(&mut s, name).await
}

/// Reads the reply line to request `name` on `s`, bounded in time.
async fn reply(s: &mut UnixStream, name: &'static str) -> Result<Reply, ClientError> {
    let line = tokio::time::timeout(REPLY_TIMEOUT, read_line(s))
        .await
        .map_err(|_| ClientError::Timeout(name))??;
    Ok(proto::decode(&line)?)
}

/// Reads one `\n`-terminated line (at most [`MAX_LINE`] bytes) from a monitor connection byte
/// by byte, so nothing that follows it (attach frames, the exit line of a `start` that also
/// waits) is consumed.
pub async fn read_line(s: &mut UnixStream) -> Result<Vec<u8>, ClientError> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b).await {
            Ok(0) => return Err(ClientError::Closed),
            Ok(_) if b[0] == b'\n' => return Ok(line),
            Ok(_) => line.push(b[0]),
            Err(e) => return Err(ClientError::Io(e)),
        }
        if line.len() > MAX_LINE {
            return Err(ProtoError::TooLong { len: line.len() }.into());
        }
    }
}

/// Asks the monitor at `sock` to carry the container's streams on a new connection; returns
/// it once the monitor accepted (so no output is missed after a `start`).
pub async fn attach(sock: &Path, stdin: bool, stdout: bool, stderr: bool) -> Option<UnixStream> {
    let cmd = Command::Attach {
        stdin,
        stdout,
        stderr,
    };
    let mut s = send(sock, cmd).await.ok()?;
    // The reply line, and not a byte of the frames that may follow it.
    reply(&mut s, "attach").await.ok()?.into_result().ok()?;
    Some(s)
}

/// Asks the monitor at `sock` to answer when the container has exited (`wait`). Made before
/// `start` on the start path, so a container that exits at once cannot take the socket away
/// before the daemon asked.
pub async fn wait_request(sock: &Path) -> Option<UnixStream> {
    send(sock, Command::Wait).await.ok()
}

/// Sends `start` to the monitor at `sock` on a connection that then waits for the exit
/// (PROTOCOL.md): the reply, and the connection for the exit record.
pub async fn start_and_wait(sock: &Path) -> (Result<Reply, ClientError>, Option<UnixStream>) {
    let mut s = match send(sock, Command::Start { wait: true }).await {
        Ok(s) => s,
        Err(e) => return (Err(e), None),
    };
    // The exit line may follow at once: it stays for the waiter.
    match reply(&mut s, "start").await {
        Ok(r) => (Ok(r), Some(s)),
        Err(e) => (Err(e), None),
    }
}

/// The exit record a `wait` connection `s` gets when the container has exited.
pub async fn wait_reply(s: Option<UnixStream>) -> Option<ExitRecord> {
    wait_reply_rest(s).await.map(|(r, _)| r)
}

/// As [`wait_reply`], with the rest of the connection: its end of file means the monitor has
/// finished its clean-up and exited (PROTOCOL.md, "Exit and clean-up").
pub async fn wait_reply_rest(s: Option<UnixStream>) -> Option<(ExitRecord, BufReader<UnixStream>)> {
    // Every running container has one of these waiting: a small buffer (the exit line is
    // short) instead of the default 8 KiB, which was a third of berthd's memory per container.
    let mut r = BufReader::with_capacity(WAIT_BUFFER, s?);
    let mut line = Vec::new();
    (&mut r)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await
        .ok()?;
    Some((proto::decode(&line).ok()?, r))
}

/// Reads a monitor connection to its end (bounded in time): the monitor is gone.
pub async fn until_closed(mut r: BufReader<UnixStream>) {
    let mut buf = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Kills every process of the container (SIGKILL to its cgroup); the reply, if any, is not
/// needed.
pub async fn kill_all(sock: &Path) {
    let cmd = Command::Kill {
        signal: libc::SIGKILL,
        all: true,
    };
    let _ = call(sock, cmd).await;
}

/// Writes `monitor.json` into the state folder `sdir`.
pub fn write_config(sdir: &Path, cfg: &MonitorConfig) -> Result<(), ProtoError> {
    let line = proto::encode(cfg)?;
    std::fs::write(sdir.join("monitor.json"), line)
        .map_err(|e| ProtoError::Encode(format!("writing monitor.json: {e}")))
}

/// The read buffer of a connection waiting for a container's exit.
const WAIT_BUFFER: usize = 256;

/// How long a new monitor may take to report its container created (the runtime's set-up
/// of the init: namespaces, cgroups, an OCI runtime's `create`).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads the ready line a monitor writes to `r` (its ready pipe), waiting at most `patience`:
/// a monitor that ended without one failed; one still silent after it is a
/// [`ClientError::Timeout`] (it takes its container down by itself: PROTOCOL.md, "Lifetime").
pub fn read_ready(
    mut r: impl Read + std::os::fd::AsFd,
    patience: Duration,
) -> Result<Ready, ClientError> {
    let deadline = std::time::Instant::now() + patience;
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    while !line.ends_with(b"\n") && line.len() <= MAX_LINE {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if !readable(r.as_fd(), left).map_err(ClientError::Io)? {
            return Err(ClientError::Timeout("ready"));
        }
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ClientError::Io(e)),
        }
    }
    if line.is_empty() {
        return Ok(Ready::Failed(proto::Failure::new(
            "the monitor died before reporting",
        )));
    }
    Ok(proto::decode(&line).unwrap_or_else(|e| Ready::Failed(e.into())))
}

/// Whether `fd` has something to read (or its end of file) within `patience`.
fn readable(fd: std::os::fd::BorrowedFd<'_>, patience: Duration) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let ms = i32::try_from(patience.as_millis()).unwrap_or(i32::MAX);
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, its count 1; `fd` is borrowed open for the call.
        match unsafe { libc::poll(&mut p, 1, ms) } {
            n if n > 0 => return Ok(true),
            0 => return Ok(false),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// The exit record in the state folder `sdir` (`exit.json`), if the monitor wrote one.
pub fn exit_record(sdir: &Path) -> Option<ExitRecord> {
    let f = std::fs::File::open(sdir.join("exit.json")).ok()?;
    let mut bytes = Vec::new();
    f.take(MAX_LINE as u64).read_to_end(&mut bytes).ok()?;
    proto::decode(&bytes).ok()
}
