//! kubelet's remotecommand protocol (exec and attach) over SPDY: the client opens one stream
//! per channel, named by its `streamType` header — `error`, `stdin`, `stdout`, `stderr` and,
//! from v3 on, `resize` (JSON `{"Width":…,"Height":…}` values) — and the server relays them
//! to the process. When it ends, the output streams are half-closed, then the error stream
//! carries the outcome: from v4 a JSON `metav1.Status` (`Success`, or `Failure` with reason
//! `NonZeroExitCode` and an `ExitCode` cause holding the code); before v4 only a failure's
//! message, as text.

use super::backend::{Reader, Session, StreamOpts, TermSize};
use super::conn::{Conn, Stream, StreamWriter};
use super::spdy::headers;
use crate::error::CriResult;
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The remotecommand protocol versions, newest first (the server's preference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    /// `channel.k8s.io` (also what a client that names none gets).
    V1,
    /// `v2.channel.k8s.io`.
    V2,
    /// `v3.channel.k8s.io`: adds the resize stream.
    V3,
    /// `v4.channel.k8s.io`: the error stream carries a JSON status with the exit code.
    V4,
}

impl Proto {
    /// Every version, the server's preference first.
    pub const ALL: [Proto; 4] = [Proto::V4, Proto::V3, Proto::V2, Proto::V1];

    /// Its name in `X-Stream-Protocol-Version`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::V1 => "channel.k8s.io",
            Proto::V2 => "v2.channel.k8s.io",
            Proto::V3 => "v3.channel.k8s.io",
            Proto::V4 => "v4.channel.k8s.io",
        }
    }
}

/// How long the client has to open its streams (kubelet's default).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// After the process ended, output still flowing is relayed until it is quiet this long...
const DRAIN_QUIET: Duration = Duration::from_millis(500);
/// ...and for at most this long (a background child may hold the pipes for ever).
const DRAIN_MAX: Duration = Duration::from_secs(30);
/// The longest resize message buffered.
const MAX_RESIZE: usize = 4096;

/// The streams of one session, by type.
#[derive(Default)]
struct Channels {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

impl Channels {
    fn complete(&self, proto: Proto, o: &StreamOpts) -> bool {
        self.error.is_some()
            && (!o.stdin || self.stdin.is_some())
            && (!o.stdout || self.stdout.is_some())
            && (!o.stderr || o.tty || self.stderr.is_some())
            && (!o.tty || proto < Proto::V3 || self.resize.is_some())
    }

    fn put(&mut self, s: Stream) {
        let slot = match headers::get(&s.headers, "streamType").unwrap_or("") {
            "error" => &mut self.error,
            "stdin" => &mut self.stdin,
            "stdout" => &mut self.stdout,
            "stderr" => &mut self.stderr,
            "resize" => &mut self.resize,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(s);
        }
    }
}

/// Waits for the streams `o` needs.
async fn collect(conn: &mut Conn, proto: Proto, o: &StreamOpts) -> Option<Channels> {
    let mut ch = Channels::default();
    let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
    while !ch.complete(proto, o) {
        match tokio::time::timeout_at(deadline, conn.next_stream()).await {
            Ok(Some(s)) => ch.put(s),
            Ok(None) => return None,
            Err(_) => {
                tracing::debug!("streaming client did not open its streams in time");
                return None;
            }
        }
    }
    Some(ch)
}

/// The v4 status of an outcome (`Ok(code)`: the process ended; `Err`: it could not run).
fn status(outcome: &Result<Option<i32>, String>) -> serde_json::Value {
    match outcome {
        Ok(None) | Ok(Some(0)) => json!({"metadata": {}, "status": "Success"}),
        Ok(Some(code)) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(m) => json!({
            "metadata": {},
            "status": "Failure",
            "message": m,
            "reason": "InternalError",
            "details": {"causes": [{"message": m}]},
            "code": 500,
        }),
    }
}

/// Writes the outcome on the error stream as `proto` wants it, and half-closes it.
async fn report(err: &StreamWriter, proto: Proto, outcome: Result<Option<i32>, String>) {
    let body = if proto == Proto::V4 {
        Some(status(&outcome).to_string())
    } else {
        match &outcome {
            Ok(None) | Ok(Some(0)) => None,
            Ok(Some(code)) => Some(format!(
                "command terminated with non-zero exit code: exit status {code}"
            )),
            Err(m) => Some(m.clone()),
        }
    };
    if let Some(b) = body {
        err.write(b.as_bytes()).await;
    }
    err.close().await;
}

/// Relays `r` to `w` (or reads and drops it without a stream), counting progress; half-closes
/// the stream at its end.
fn relay_out(
    r: Option<Reader>,
    w: Option<StreamWriter>,
    progress: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(mut r) = r {
            let mut buf = vec![0u8; 16 << 10];
            loop {
                let n = match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                progress.fetch_add(n as u64, Ordering::Relaxed);
                if let Some(w) = &w {
                    if !w.write(&buf[..n]).await {
                        return;
                    }
                }
            }
        }
        if let Some(w) = w {
            w.close().await;
        }
    })
}

/// Parses the resize stream's JSON values and applies each.
async fn resizes(mut s: Stream, resize: Box<dyn Fn(TermSize) + Send + Sync>) {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let mut buf: Vec<u8> = Vec::new();
    while let Some(data) = s.rx.recv().await {
        buf.extend_from_slice(&data);
        let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Size>();
        let mut used = 0;
        loop {
            match it.next() {
                Some(Ok(sz)) => {
                    used = it.byte_offset();
                    resize(TermSize {
                        width: sz.width,
                        height: sz.height,
                    });
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => return,
                None => break,
            }
        }
        buf.drain(..used);
        if buf.len() > MAX_RESIZE {
            return;
        }
    }
}

/// Serves one exec or attach on `conn`: waits for the client's streams, starts the session
/// with `start`, relays until it ends, reports the outcome.
pub async fn serve(
    mut conn: Conn,
    proto: Proto,
    opts: StreamOpts,
    start: impl Future<Output = CriResult<Session>>,
) {
    let Some(ch) = collect(&mut conn, proto, &opts).await else {
        conn.finish().await;
        return;
    };
    let Some(error) = ch.error else { return };
    let session = match start.await {
        Ok(s) => s,
        Err(e) => {
            report(&error.tx, proto, Err(e.to_string())).await;
            for s in [ch.stdout, ch.stderr, ch.stdin, ch.resize]
                .into_iter()
                .flatten()
            {
                s.tx.close().await;
            }
            conn.finish().await;
            return;
        }
    };
    let Session {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = session;
    let mut side = Vec::new();
    let stdin_tx = ch.stdin.as_ref().map(|s| s.tx.clone());
    if let Some(mut s) = ch.stdin {
        side.push(tokio::spawn(async move {
            let mut w = stdin;
            while let Some(data) = s.rx.recv().await {
                if let Some(wr) = w.as_mut() {
                    if wr.write_all(&data).await.is_err() || wr.flush().await.is_err() {
                        w = None;
                    }
                }
            }
            if let Some(mut wr) = w {
                let _ = wr.shutdown().await;
            }
        }));
    }
    let resize_tx = ch.resize.as_ref().map(|s| s.tx.clone());
    if let (Some(s), Some(r)) = (ch.resize, resize) {
        side.push(tokio::spawn(resizes(s, r)));
    }
    let progress = Arc::new(AtomicU64::new(0));
    let outs = [
        relay_out(stdout, ch.stdout.map(|s| s.tx), progress.clone()),
        relay_out(stderr, ch.stderr.map(|s| s.tx), progress.clone()),
    ];
    let gone = conn.gone();
    let code = tokio::select! {
        c = exit => c,
        _ = gone => {
            for t in outs.iter().chain(side.iter()) {
                t.abort();
            }
            conn.finish().await;
            return;
        }
    };
    // The output still in the pipes follows the exit, while it flows.
    let started = tokio::time::Instant::now();
    let mut all = futures_join(outs);
    loop {
        let before = progress.load(Ordering::Relaxed);
        if tokio::time::timeout(DRAIN_QUIET, &mut all).await.is_ok() {
            break;
        }
        if progress.load(Ordering::Relaxed) == before || started.elapsed() > DRAIN_MAX {
            all.abort();
            break;
        }
    }
    report(&error.tx, proto, Ok(code)).await;
    for w in [stdin_tx, resize_tx].into_iter().flatten() {
        w.close().await;
    }
    for t in side {
        t.abort();
    }
    conn.finish().await;
}

/// The output relays, awaited together; aborting stops both (each half-closes only at its
/// own end, so an aborted one is closed here).
struct Outs {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn futures_join(tasks: [tokio::task::JoinHandle<()>; 2]) -> Outs {
    Outs {
        tasks: tasks.into(),
    }
}

impl Outs {
    fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Future for Outs {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.tasks
            .retain_mut(|t| std::pin::Pin::new(t).poll(cx).is_pending());
        if self.tasks.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_zero_exit_is_a_v4_failure_with_its_code() {
        let s = status(&Ok(Some(3)));
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(status(&Ok(Some(0)))["status"], "Success");
        assert_eq!(status(&Err("x".into()))["reason"], "InternalError");
    }
}
