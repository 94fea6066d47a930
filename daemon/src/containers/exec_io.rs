//! An exec's streams (`docker exec`, attached or detached): the client's connection — any
//! `AsyncRead + AsyncWrite` — relayed to the process's pipes or pty, stdcopy-framed without a
//! TTY, the detach keys watched on a TTY's stdin, and the exit recorded. The output stream
//! ends when the process exits (after draining its pipes), even if a background child still
//! holds them, as Docker's does.

use super::exec::{self, Spawned};
use super::streams::ClientStream;
use crate::state::Ctx;
use berth_api::stdcopy::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Waits for a detached exec's process and records its exit.
pub fn detached(ctx: Ctx, s: Spawned) {
    let Spawned {
        mut child,
        exec: e,
        container: c,
        ..
    } = s;
    tokio::spawn(async move {
        let code = child
            .wait()
            .await
            .ok()
            .and_then(|s| s.code())
            .unwrap_or(126) as i64;
        exec::finish(&ctx, &c, &e.id, code);
    });
}

/// The client went away before the stream was set up: the process is killed.
pub async fn abandon(mut s: Spawned) {
    let _ = s.child.kill().await;
}

/// Relays `io` to the exec's process until it exits (or the client detaches) and records
/// the exit.
pub async fn serve(ctx: Ctx, s: Spawned, io: ClientStream) {
    let Spawned {
        mut child,
        master,
        exec: e,
        container: c,
        tty,
    } = s;
    let keys = match e.detach_keys.as_slice() {
        [] => berth_api::detach::DEFAULT.to_vec(),
        k => k.to_vec(),
    };
    let attach_stdin = e.config.attach_stdin;
    let (attach_out, attach_err) = (e.config.attach_stdout, e.config.attach_stderr);
    let finish = move |code: i64| exec::finish(&ctx, &c, &e.id, code);
    let (mut cr, mut cw) = tokio::io::split(io);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Stream, Vec<u8>)>(32);
    let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
    let mut readers = Vec::new();
    let up = if let Some(m) = master {
        let mf = std::fs::File::from(m);
        let Ok(rf) = mf.try_clone() else { return };
        let mw = tokio::fs::File::from_std(mf);
        readers.push(forward(
            Stream::Stdout,
            tokio::fs::File::from_std(rf),
            Some(tx),
        ));
        // As dockerd's: only a TTY exec watches its stdin for the detach keys, and only
        // an exec that asked for stdin gets the client's bytes.
        let mw = attach_stdin.then_some(mw);
        tokio::spawn(tty_stdin(cr, mw, keys, detach_tx))
    } else {
        let stdin = child.stdin.take();
        // A stream the exec did not ask for (`AttachStdout`/`AttachStderr` false) is read
        // and dropped, as dockerd gives the process nothing to fill there.
        let (out_tx, err_tx) = (attach_out.then(|| tx.clone()), attach_err.then_some(tx));
        if let Some(o) = child.stdout.take() {
            readers.push(forward(Stream::Stdout, o, out_tx));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(forward(Stream::Stderr, e, err_tx));
        }
        tokio::spawn(async move {
            if let Some(mut s) = stdin {
                let _ = tokio::io::copy(&mut cr, &mut s).await;
            }
        })
    };
    let detached = async move {
        if detach_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let Some(code) = pump(&mut rx, &mut child, &mut cw, !tty, detached).await else {
        // The client typed the detach keys. dockerd (20.10) ends the stream with this
        // text, records the exec as ended with 126 and lets go of its terminal (a
        // process that does not survive the hang-up ends).
        let text = b"exec attach failed: error on attach stdin: read escape sequence\r\n";
        let _ = cw.write_all(text).await;
        for r in readers {
            r.abort();
        }
        up.abort();
        finish(126);
        let _ = cw.shutdown().await;
        let _ = child.wait().await;
        return;
    };
    for r in readers {
        r.abort();
    }
    up.abort();
    finish(code);
    let _ = cw.shutdown().await;
}

/// Once the exec's process has exited, output already in its pipes is still forwarded until
/// they stay quiet this long...
const DRAIN_QUIET: std::time::Duration = std::time::Duration::from_millis(100);
/// ...and for at most this long: a background child may hold them open for ever, and Docker
/// ends the stream when the process exits.
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads `r` into `tx` as `(stream, bytes)` until EOF (`None`: read and dropped).
fn forward(
    stream: Stream,
    mut r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tx: Option<tokio::sync::mpsc::Sender<(Stream, Vec<u8>)>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16384];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Some(tx) = &tx {
                if tx.send((stream, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    })
}

/// Copies a TTY exec's client input to its pty (`mw`; `None`: the exec has no stdin, the
/// input is dropped) until the client types `keys`, which fires `detach`.
async fn tty_stdin(
    mut cr: impl tokio::io::AsyncRead + Unpin,
    mut mw: Option<tokio::fs::File>,
    keys: Vec<u8>,
    detach: tokio::sync::oneshot::Sender<()>,
) {
    let mut escape = berth_api::detach::Escape::new(keys);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (fwd, detached) = escape.feed(&buf[..n]);
        if let Some(w) = mw.as_mut() {
            if !fwd.is_empty() && w.write_all(&fwd).await.is_err() {
                return;
            }
        }
        if detached {
            let _ = detach.send(());
            return;
        }
    }
}

/// Copies output to the client (stdcopy frames when `framed`) until the process has exited
/// and its pipes are drained; returns its exit code, or `None` when `detached` fired first
/// (the process still runs).
async fn pump(
    rx: &mut tokio::sync::mpsc::Receiver<(Stream, Vec<u8>)>,
    child: &mut tokio::process::Child,
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    framed: bool,
    detached: impl std::future::Future<Output = ()>,
) -> Option<i64> {
    tokio::pin!(detached);
    let code = |s: std::io::Result<std::process::ExitStatus>| {
        s.ok().and_then(|s| s.code()).unwrap_or(126) as i64
    };
    let mut exited: Option<(i64, tokio::time::Instant)> = None;
    loop {
        let msg = match exited {
            Some((_, deadline)) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(DRAIN_QUIET.min(left), rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            None => tokio::select! {
                m = rx.recv() => m,
                () = &mut detached => return None,
                s = child.wait() => {
                    exited = Some((code(s), tokio::time::Instant::now() + DRAIN_MAX));
                    continue;
                }
            },
        };
        let Some((stream, data)) = msg else { break };
        let f = if framed {
            berth_api::stdcopy::frame(stream, &data)
        } else {
            data
        };
        if out.write_all(&f).await.is_err() {
            break;
        }
    }
    Some(match exited {
        Some((c, _)) => c,
        None => code(child.wait().await),
    })
}
