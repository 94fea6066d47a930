//! Attach (hijacked connections wired to the monitor's socket) and logs (the json-file log,
//! followed while the container runs), in Docker's stream formats.

use super::logfiles::{inode, log_files, successor};
use bytes::Bytes;
use serde_json::Value;
use std::path::PathBuf;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// What a client's raw bidirectional stream must be: bytes both ways (a hijacked HTTP
/// connection, a test's duplex pipe). The domain sees no more of the transport than this.
pub trait ClientIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ClientIo for T {}

/// A client's stream, type-erased so it can wait in a container's pending attaches.
pub type ClientStream = Box<dyn ClientIo>;

/// An attach request waiting for the container to start.
pub struct PendingAttach {
    /// The client's raw connection, once the upgrade is through (the request is registered
    /// before its `101` goes out, so a `start` that follows at once cannot miss it).
    pub io: tokio::sync::oneshot::Receiver<ClientStream>,
    /// Streams wanted.
    pub stdin: bool,
    /// stdout.
    pub stdout: bool,
    /// stderr.
    pub stderr: bool,
    /// The detach sequence watched for on stdin (empty: none).
    pub detach_keys: Vec<u8>,
    /// Called when the client detaches with it (Docker's `detach` event).
    pub on_detach: Option<Box<dyn FnOnce() + Send>>,
}

/// Connects `p` to the monitor at `sock` and pumps both directions in the background.
/// Returns once the monitor accepted the attach (so no output is missed after `start`).
pub async fn wire(sock: PathBuf, p: PendingAttach, tty: bool) {
    let Some(m) = super::monitor_client::attach(&sock, p.stdin, p.stdout, p.stderr).await else {
        return;
    };
    tokio::spawn(pump(m, p, tty));
}

async fn pump(m: tokio::net::UnixStream, p: PendingAttach, tty: bool) {
    // Until the client's connection is ready, the monitor's output waits in the socket.
    let Ok(io) = p.io.await else {
        return;
    };
    if relay(m, io, p.stdin, p.detach_keys, tty).await {
        if let Some(f) = p.on_detach {
            f();
        }
    }
}

/// Relays between the monitor connection `m` of an attach and the client's stream `io` until
/// either side ends or the client of a TTY types `detach_keys`: the client's bytes go to the
/// container's stdin (when `stdin`), the container's stdcopy frames to the client (as raw
/// bytes when `tty`). True when the client detached.
pub async fn relay(
    m: tokio::net::UnixStream,
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    stdin: bool,
    detach_keys: Vec<u8>,
    tty: bool,
) -> bool {
    let (mut mr, mut mw) = m.into_split();
    let (mut cr, mut cw) = tokio::io::split(io);
    // As dockerd's: only a TTY attach watches for the detach keys; without a TTY the
    // client's bytes all reach the container (which keeps its stdin when the client goes,
    // unless `StdinOnce`).
    let keys = if tty { detach_keys } else { Vec::new() };
    let mut escape = berth_api::detach::Escape::new(keys);
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
    let up = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !stdin {
                continue;
            }
            let (fwd, detached) = escape.feed(&buf[..n]);
            if !fwd.is_empty() && mw.write_all(&fwd).await.is_err() {
                break;
            }
            if detached {
                // The container keeps running: end this attach only.
                let _ = detached_tx.send(());
                return;
            }
        }
        let _ = mw.shutdown().await;
    });
    let out = async {
        let mut hdr = [0u8; 8];
        loop {
            if mr.read_exact(&mut hdr).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            let mut payload = vec![0u8; len];
            if mr.read_exact(&mut payload).await.is_err() {
                break;
            }
            let ok = if tty {
                cw.write_all(&payload).await
            } else {
                cw.write_all(&hdr).await.and(cw.write_all(&payload).await)
            };
            if ok.is_err() {
                break;
            }
            let _ = cw.flush().await;
        }
    };
    let detached = tokio::select! {
        _ = out => false,
        Ok(()) = detached_rx => true,
    };
    let _ = cw.shutdown().await;
    up.abort();
    detached
}

/// Log options.
pub struct LogOpts {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    pub tail: Option<usize>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub tty: bool,
}

fn nanos(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_nanos_opt().unwrap_or(0))
        .unwrap_or(0)
}

fn render(line: &Value, o: &LogOpts) -> Option<Bytes> {
    let stream = line["stream"].as_str().unwrap_or("stdout");
    if (stream == "stdout" && !o.stdout) || (stream == "stderr" && !o.stderr) {
        return None;
    }
    let time = line["time"].as_str().unwrap_or("");
    let t = nanos(time);
    if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
        return None;
    }
    let mut payload = Vec::new();
    if o.timestamps {
        payload.extend_from_slice(time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(line["log"].as_str().unwrap_or("").as_bytes());
    if o.tty {
        return Some(Bytes::from(payload));
    }
    let mut f = vec![if stream == "stderr" { 2 } else { 1 }, 0, 0, 0];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&payload);
    Some(Bytes::from(f))
}

/// Streams the log at `path` (its rotated files first) into `tx`; with `follow`, until
/// `running()` turns false, reopening the log when the monitor rotates it.
pub async fn logs(
    path: PathBuf,
    o: LogOpts,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    running: impl Fn() -> bool + Send + 'static,
) {
    // With `tail`, only the last lines are kept: memory stays bounded by what is asked for.
    let mut kept = std::collections::VecDeque::new();
    let mut current = None;
    let mut buf = String::new();
    for file in log_files(&path).await {
        let Ok(f) = tokio::fs::File::open(&file).await else {
            continue;
        };
        let ino = f.metadata().await.ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino()
        });
        let mut r = BufReader::new(f);
        loop {
            buf.clear();
            match r.read_line(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let Ok(v) = serde_json::from_str::<Value>(&buf) else {
                continue;
            };
            match o.tail {
                Some(0) => {}
                Some(t) => {
                    if kept.len() == t {
                        kept.pop_front();
                    }
                    kept.push_back(v);
                }
                None => {
                    if let Some(b) = render(&v, &o) {
                        if tx.send(b).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if file == path {
            current = Some((r, ino));
        }
    }
    for l in kept {
        if let Some(b) = render(&l, &o) {
            if tx.send(b).await.is_err() {
                return;
            }
        }
    }
    let Some((mut r, mut ino)) = current else {
        return;
    };
    if !o.follow {
        return;
    }
    let mut pending = String::new();
    loop {
        buf.clear();
        match r.read_line(&mut buf).await {
            Ok(0) => {
                let now = inode(&path).await;
                if now.is_some() && now != ino {
                    // Rotated: first what the old file got before its rename (whole records:
                    // the monitor rotates between them), then on in the new file.
                    let mut rest = String::new();
                    let _ = r.read_to_string(&mut rest).await;
                    pending.push_str(&rest);
                    for l in pending.lines() {
                        if let Some(b) = serde_json::from_str::<Value>(l)
                            .ok()
                            .and_then(|v| render(&v, &o))
                        {
                            if tx.send(b).await.is_err() {
                                return;
                            }
                        }
                    }
                    pending.clear();
                    // The file written after ours: the next in the rotation order (several
                    // rotations may have happened since the last look).
                    if let Some((f, next)) = successor(&path, ino).await {
                        r = BufReader::new(f);
                        ino = next;
                        continue;
                    }
                }
                if !running() {
                    // One last read for lines written as it exited.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    let now = inode(&path).await;
                    if now.is_some() && now != ino {
                        continue; // still behind: the files that follow ours come first
                    }
                    let mut rest = String::new();
                    let _ = r.read_to_string(&mut rest).await;
                    for l in rest.lines() {
                        if let Some(b) = serde_json::from_str::<Value>(l)
                            .ok()
                            .and_then(|v| render(&v, &o))
                        {
                            let _ = tx.send(b).await;
                        }
                    }
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Ok(_) => {
                pending.push_str(&buf);
                if pending.ends_with('\n') {
                    if let Some(b) = serde_json::from_str::<Value>(&pending)
                        .ok()
                        .and_then(|v| render(&v, &o))
                    {
                        if tx.send(b).await.is_err() {
                            return;
                        }
                    }
                    pending.clear();
                }
            }
            Err(_) => return,
        }
        if tx.is_closed() {
            return;
        }
    }
}
