//! Attaching to a container's streams (`docker attach`, and `docker run`'s attach before its start).

use super::streams;
use crate::server::hijack::hijack;
use crate::server::http::{ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use berth_api::detach;

pub async fn attach(ctx: Ctx, mut req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let q = &req.query;
    let stream = q.bool("stream", false);
    let (stdin, stdout, stderr) = (
        q.bool("stdin", false),
        q.bool("stdout", false),
        q.bool("stderr", false),
    );
    let logs = q.bool("logs", false);
    let detach_keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => detach::parse(k)
            .map_err(|_| ApiError::bad_request(format!("Invalid detachKeys ({k}) provided")))?,
        None => detach::DEFAULT.to_vec(),
    };
    let tty = c.tty();
    let (resp, upgraded) = hijack(&mut req.inner, !tty);
    let (io_tx, io_rx) = tokio::sync::oneshot::channel();
    if stream {
        let p = streams::PendingAttach {
            io: io_rx,
            stdin,
            stdout,
            stderr,
            detach_keys,
        };
        // Registered now, before the answer goes out: the client sends `start` as soon as it
        // has it. `start::start_locked` records the container running before it takes the
        // pending attaches, so one that finds it running here wires itself.
        let pending = match c.pending.lock() {
            Ok(mut pend) if !c.running() => {
                pend.push(p);
                None
            }
            _ => Some(p),
        };
        if let Some(p) = pending {
            let sock = ctx.containers.monitor_sock(&c.id);
            tokio::spawn(streams::wire(sock, p, tty));
        }
    }
    let c2 = c.clone();
    tokio::spawn(async move {
        let Some(mut io) = upgraded.await else { return };
        if logs {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let path = std::path::PathBuf::from(c2.record()["LogPath"].as_str().unwrap_or(""));
            let o = streams::LogOpts {
                stdout,
                stderr,
                follow: false,
                timestamps: false,
                tail: None,
                since: None,
                until: None,
                tty,
            };
            tokio::spawn(streams::logs(path, o, tx, || false));
            use tokio::io::AsyncWriteExt;
            while let Some(b) = rx.recv().await {
                if io.write_all(&b).await.is_err() {
                    return;
                }
            }
        }
        if stream {
            let _ = io_tx.send(io);
        }
    });
    crate::containers::exit::publish(&ctx, req.param("id"), "attach");
    Ok(resp)
}
