//! Container streams and views: attach, logs, top, changes (diff) and export.

use crate::containers::{attach, start, streams};
use crate::server::hijack::hijack;
use crate::server::http::{self, ok_json, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use berth_api::detach;
use serde_json::{json, Value};

fn parse_time(s: Option<&str>) -> Option<i64> {
    let s = s?.trim();
    if s.is_empty() || s == "0" {
        return None;
    }
    s.parse::<f64>().ok().map(|f| (f * 1e9) as i64)
}

pub async fn logs(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let q = &req.query;
    let (stdout, stderr) = (q.bool("stdout", false), q.bool("stderr", false));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    if c.view(|r| r.host_config.log_config.kind == "none") {
        return Err(ApiError::new(
            hyper::StatusCode::NOT_IMPLEMENTED,
            "configured logging driver does not support reading",
        ));
    }
    let tail = q
        .get("tail")
        .filter(|t| *t != "all")
        .and_then(|t| t.parse().ok());
    let tty = c.tty();
    let o = streams::LogOpts {
        stdout,
        stderr,
        follow: q.bool("follow", false),
        timestamps: q.bool("timestamps", false),
        tail,
        since: parse_time(q.get("since")),
        until: parse_time(q.get("until")),
        tty,
    };
    let (tx, resp) = http::stream(if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    });
    let path = std::path::PathBuf::from(c.view(|r| r.log_path.clone()));
    let c2 = c.clone();
    tokio::spawn(streams::logs(path, o, tx, move || c2.running()));
    Ok(resp)
}

pub async fn top(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    if !c.running() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let pids = crate::containers::cgroup(&c).pids();
    let mut procs = Vec::new();
    for p in pids {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(") ")
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .unwrap_or("0")
            .to_string();
        let uid = std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            })
            .unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let user = if uid == "0" { "root".to_string() } else { uid };
        procs.push(json!([
            user,
            p.to_string(),
            ppid,
            "0",
            "",
            "?",
            "00:00:00",
            cmd
        ]));
    }
    ok_json(
        &json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": procs}),
    )
}

pub async fn changes(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let (s, id) = (ctx.storage.clone(), c.id.clone());
    let list = tokio::task::spawn_blocking(move || s.changes(&id)).await??;
    let out: Vec<Value> = list
        .iter()
        .filter(|ch| !["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"].contains(&ch.path.as_str()))
        .map(|ch| json!({"Path": ch.path, "Kind": match ch.kind { berth_core::storage::ChangeKind::Modified => 0, berth_core::storage::ChangeKind::Added => 1, berth_core::storage::ChangeKind::Deleted => 2 }}))
        .collect();
    ok_json(&out)
}

pub async fn export(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let (tx, resp) = http::stream("application/x-tar");
    let (ctx2, id) = (ctx.clone(), c.id.clone());
    tokio::task::spawn_blocking(move || {
        let root = match start::mount_rootfs(&ctx2, &id) {
            Ok(r) => r,
            Err(_) => return,
        };
        let mut w = ChannelWriter(tx);
        let _ = berth_archive::write_diff_between(&root, None, &mut w);
        if !c.running() {
            let _ = berth_core::mount::unmount(&root);
        }
    });
    crate::containers::exit::publish(&ctx, req.param("id"), "export");
    Ok(resp)
}

/// A blocking writer into a response stream.
pub struct ChannelWriter(pub tokio::sync::mpsc::Sender<bytes::Bytes>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(bytes::Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::other("client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `POST /containers/{id}/attach`: hijacks the connection, replays the log with `logs`, and
/// with `stream` connects it to the container's streams ([`attach::attach`]).
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
    // Registered now, before the answer goes out: the client sends `start` as soon as it has
    // it.
    let on_detach = {
        let (ctx, id) = (ctx.clone(), c.id.clone());
        move || crate::containers::exit::publish(&ctx, &id, "detach")
    };
    let p = stream.then(|| streams::PendingAttach {
        io: io_rx,
        stdin,
        stdout,
        stderr,
        detach_keys,
        on_detach: Some(Box::new(on_detach)),
    });
    attach::attach(&ctx, &c, p);
    let c2 = c.clone();
    tokio::spawn(async move {
        let Some(mut io) = upgraded.await else { return };
        if logs {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let path = std::path::PathBuf::from(c2.view(|r| r.log_path.clone()));
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
    Ok(resp)
}
