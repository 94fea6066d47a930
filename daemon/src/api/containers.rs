//! Container endpoints: create, start, attach, wait, stop, kill, restart, pause, remove,
//! inspect, list, logs, resize, top, rename, changes, export, prune (stats live in
//! `containers_stats`).

use crate::containers::{create, exit, start, streams, Container};
use crate::server::hijack::hijack;
use crate::server::http::{self, empty, ok_json, read_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/containers/create", create_h);
    r.add(Method::GET, "/containers/json", list);
    r.add(Method::POST, "/containers/prune", prune);
    r.add(Method::GET, "/containers/{id}/json", inspect);
    r.add(Method::POST, "/containers/{id}/start", start_h);
    r.add(Method::POST, "/containers/{id}/attach", attach);
    r.add(Method::POST, "/containers/{id}/wait", wait);
    r.add(Method::POST, "/containers/{id}/stop", stop_h);
    r.add(Method::POST, "/containers/{id}/kill", kill);
    r.add(Method::POST, "/containers/{id}/restart", restart);
    r.add(Method::POST, "/containers/{id}/pause", pause);
    r.add(Method::POST, "/containers/{id}/unpause", unpause);
    r.add(Method::POST, "/containers/{id}/resize", resize);
    r.add(Method::POST, "/containers/{id}/rename", rename);
    r.add(Method::GET, "/containers/{id}/logs", logs);
    r.add(Method::GET, "/containers/{id}/top", top);
    r.add(Method::GET, "/containers/{id}/changes", changes);
    r.add(Method::GET, "/containers/{id}/export", export);
    r.add(
        Method::GET,
        "/containers/{id}/stats",
        super::containers_stats::stats,
    );
    r.add(Method::DELETE, "/containers/{id}", remove);
}

async fn create_h(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.query.get("name").map(str::to_string);
    let body: Value = read_json(req.into_body()).await?;
    let id = create::create(&ctx, name.as_deref(), body).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": []}),
    ))
}

async fn start_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    start::start(&ctx, &c).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn attach(ctx: Ctx, mut req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let q = &req.query;
    let stream = q.bool("stream", false);
    let (stdin, stdout, stderr) = (
        q.bool("stdin", false),
        q.bool("stdout", false),
        q.bool("stderr", false),
    );
    let logs = q.bool("logs", false);
    let tty = c.tty();
    let (resp, upgraded) = hijack(&mut req.inner, !tty);
    let ctx2 = ctx.clone();
    tokio::spawn(async move {
        let Some(mut io) = upgraded.await else { return };
        if logs {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let path = std::path::PathBuf::from(c.record()["LogPath"].as_str().unwrap_or(""));
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
        if !stream {
            return;
        }
        let p = streams::PendingAttach {
            io,
            stdin,
            stdout,
            stderr,
        };
        if c.running() {
            streams::wire(
                ctx2.containers.state_dir(&c.id).join("monitor.sock"),
                p,
                tty,
            )
            .await;
        } else if let Ok(mut pend) = c.pending.lock() {
            pend.push(p);
        }
    });
    ctx.events.publish(
        "container",
        "attach",
        &ctx.containers
            .get(req.param("id"))
            .map(|c| c.id.clone())
            .unwrap_or_default(),
        Default::default(),
    );
    Ok(resp)
}

async fn wait(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let cond = req
        .query
        .get("condition")
        .unwrap_or("not-running")
        .to_string();
    if !["not-running", "next-exit", "removed", ""].contains(&cond.as_str()) {
        return Err(ApiError::bad_request(format!(
            "invalid condition: \"{cond}\""
        )));
    }
    let mut rx = c.events.subscribe();
    let start = rx.borrow().clone();
    let (tx, resp) = http::stream("application/json");
    tokio::spawn(async move {
        loop {
            let now = rx.borrow().clone();
            let done = match cond.as_str() {
                "next-exit" => now.exits > start.exits || now.removed,
                "removed" => now.removed,
                _ => !c.running() || now.removed,
            };
            if done {
                let code = if now.exits > 0 || now.removed {
                    now.exit_code
                } else {
                    c.record()
                        .pointer("/State/ExitCode")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                };
                let body = json!({"StatusCode": code, "Error": null});
                let _ = tx.send(bytes::Bytes::from(format!("{body}\n"))).await;
                return;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(resp)
}

/// Stops `c`: its stop signal, then SIGKILL after `timeout` seconds.
pub async fn stop(
    ctx: &Ctx,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<i32>,
) -> Result<bool, ApiError> {
    if !c.running() {
        return Ok(false);
    }
    c.update(|r| r["ManuallyStopped"] = json!(true));
    let _ = ctx.containers.save(c);
    let sig = signal.unwrap_or_else(|| start::stop_signal(c));
    let t = timeout
        .or_else(|| {
            c.record()
                .pointer("/Config/StopTimeout")
                .and_then(Value::as_i64)
        })
        .unwrap_or(10);
    let mut rx = c.events.subscribe();
    send_signal(ctx, c, sig).await?;
    let wait = async {
        while rx.borrow().running {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    if t < 0 {
        wait.await;
    } else if tokio::time::timeout(std::time::Duration::from_secs(t as u64), wait)
        .await
        .is_err()
    {
        send_signal(ctx, c, libc::SIGKILL).await?;
        let mut rx = c.events.subscribe();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while rx.borrow().running {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    ctx.events
        .publish("container", "stop", &c.id, exit::attrs(c));
    Ok(true)
}

async fn send_signal(ctx: &Ctx, c: &Container, sig: i32) -> Result<(), ApiError> {
    let sock = ctx.containers.state_dir(&c.id).join("monitor.sock");
    let r = tokio::task::spawn_blocking(move || {
        start::monitor_cmd(
            &sock,
            &json!({"cmd": "kill", "signal": sig, "all": sig == libc::SIGKILL}),
        )
    })
    .await?;
    match r {
        Ok(v) if v["ok"].as_bool() == Some(true) => Ok(()),
        Ok(v) => Err(ApiError::internal(
            v["error"].as_str().unwrap_or("kill failed").to_string(),
        )),
        Err(e) => Err(ApiError::conflict(format!(
            "Container {} is not running ({e})",
            c.id
        ))),
    }
}

async fn stop_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let t = req.query.int("t")?.or(req.query.int("timeout")?);
    let sig = req.query.get("signal").and_then(super::signal_number);
    if !stop(&ctx, &c, t, sig).await? {
        return Err(ApiError::not_modified());
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn kill(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let sig_s = req.query.get("signal").unwrap_or("SIGKILL");
    let sig = super::signal_number(sig_s)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid signal: {sig_s}")))?;
    if !c.running() {
        return Err(ApiError::conflict(format!(
            "cannot kill container: {}: container {} is not running",
            req.param("id"),
            c.id
        )));
    }
    if sig == libc::SIGKILL || sig == libc::SIGTERM {
        c.update(|r| r["ManuallyStopped"] = json!(true));
    }
    send_signal(&ctx, &c, sig).await?;
    let mut a = exit::attrs(&c);
    a.insert("signal".into(), sig.to_string());
    ctx.events.publish("container", "kill", &c.id, a);
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn restart(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let t = req.query.int("t")?;
    stop(&ctx, &c, t, None).await?;
    start::start(&ctx, &c).await?;
    ctx.events
        .publish("container", "restart", &c.id, exit::attrs(&c));
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn pause_resume(ctx: Ctx, req: Req, pause: bool) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    if !c.running() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let sock = ctx.containers.state_dir(&c.id).join("monitor.sock");
    let cmd = json!({"cmd": if pause { "pause" } else { "resume" }});
    let r = tokio::task::spawn_blocking(move || start::monitor_cmd(&sock, &cmd))
        .await?
        .map_err(ApiError::internal)?;
    if r["ok"].as_bool() != Some(true) {
        return Err(ApiError::internal(
            r["error"].as_str().unwrap_or("failed").to_string(),
        ));
    }
    c.update(|r| {
        r["State"]["Paused"] = json!(pause);
        r["State"]["Status"] = json!(if pause { "paused" } else { "running" });
    });
    let _ = ctx.containers.save(&c);
    ctx.events.publish(
        "container",
        if pause { "pause" } else { "unpause" },
        &c.id,
        exit::attrs(&c),
    );
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn pause(ctx: Ctx, req: Req) -> ApiResult {
    pause_resume(ctx, req, true).await
}

async fn unpause(ctx: Ctx, req: Req) -> ApiResult {
    pause_resume(ctx, req, false).await
}

async fn resize(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let (h, w) = (
        req.query.int("h")?.unwrap_or(24),
        req.query.int("w")?.unwrap_or(80),
    );
    if c.running() {
        let sock = ctx.containers.state_dir(&c.id).join("monitor.sock");
        let _ = tokio::task::spawn_blocking(move || {
            start::monitor_cmd(&sock, &json!({"cmd": "resize", "h": h, "w": w}))
        })
        .await;
    }
    Ok(empty(StatusCode::OK))
}

async fn rename(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let new = req
        .query
        .get("name")
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    if !crate::containers::names::valid(&new) {
        return Err(ApiError::bad_request(format!(
            "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if let Ok(o) = ctx.containers.get(&new) {
        if o.name() == new {
            return Err(ApiError::conflict(format!("Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.", o.id)));
        }
    }
    c.update(|r| r["Name"] = json!(format!("/{new}")));
    ctx.containers.save(&c)?;
    ctx.events
        .publish("container", "rename", &c.id, exit::attrs(&c));
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn remove(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let force = req.query.bool("force", false);
    if c.running() {
        if !force {
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                c.name()
            )));
        }
        let mut rx = c.events.subscribe();
        c.update(|r| r["ManuallyStopped"] = json!(true));
        let _ = send_signal(&ctx, &c, libc::SIGKILL).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while rx.borrow().running {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    if !ctx.containers.all().iter().any(|x| x.id == c.id) {
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    exit::remove_with_volumes(&ctx, &c, req.query.bool("v", false)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Docker's inspect JSON of a container.
pub fn inspect_json(c: &Container) -> Value {
    let mut r = c.record();
    if let Some(o) = r.as_object_mut() {
        o.remove("ManuallyStopped");
    }
    let live = r
        .pointer("/NetworkSettings/Ports")
        .filter(|p| p.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    let mut ports = live.unwrap_or_else(|| {
        r.pointer("/HostConfig/PortBindings")
            .cloned()
            .unwrap_or(json!({}))
    });
    // As Docker reports them: the bound address (0.0.0.0 for "all").
    if let Some(m) = ports.as_object_mut() {
        for list in m.values_mut() {
            for b in list.as_array_mut().into_iter().flatten() {
                if b["HostIp"].as_str().unwrap_or("").is_empty() {
                    b["HostIp"] = json!("0.0.0.0");
                }
            }
        }
    }
    r["NetworkSettings"]["Ports"] = ports;
    r
}

async fn inspect(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    ok_json(&inspect_json(&c))
}

fn status_text(state: &Value) -> String {
    let since = |t: &str| -> String {
        let secs = chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| (chrono::Utc::now().timestamp() - d.timestamp()).max(0))
            .unwrap_or(0);
        human_duration(secs)
    };
    match state["Status"].as_str().unwrap_or("created") {
        "running" => format!("Up {}", since(state["StartedAt"].as_str().unwrap_or(""))),
        "paused" => format!(
            "Up {} (Paused)",
            since(state["StartedAt"].as_str().unwrap_or(""))
        ),
        "exited" => format!(
            "Exited ({}) {} ago",
            state["ExitCode"].as_i64().unwrap_or(0),
            since(state["FinishedAt"].as_str().unwrap_or(""))
        ),
        "created" => "Created".into(),
        other => other.to_string(),
    }
}

/// Docker's go-units HumanDuration.
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 14 * 86400 => format!("{} days", s / 86400),
        s => format!("{} weeks", s / (7 * 86400)),
    }
}

fn command_text(r: &Value) -> String {
    let mut parts = vec![r["Path"].as_str().unwrap_or("").to_string()];
    parts.extend(
        r["Args"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string)),
    );
    parts.join(" ")
}

fn summary(c: &Container) -> Value {
    let r = c.record();
    let created = chrono::DateTime::parse_from_rfc3339(r["Created"].as_str().unwrap_or(""))
        .map(|d| d.timestamp())
        .unwrap_or(0);
    let mut ports = Vec::new();
    let live = r
        .pointer("/NetworkSettings/Ports")
        .filter(|p| p.as_object().is_some_and(|m| !m.is_empty()));
    if let Some(pb) = live
        .or(r.pointer("/HostConfig/PortBindings"))
        .and_then(Value::as_object)
    {
        for (k, v) in pb {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            for b in v.as_array().cloned().unwrap_or_default() {
                ports.push(json!({"IP": if b["HostIp"].as_str().unwrap_or("").is_empty() { "0.0.0.0" } else { b["HostIp"].as_str().unwrap_or("") }, "PrivatePort": port.parse::<u16>().unwrap_or(0), "PublicPort": b["HostPort"].as_str().unwrap_or("0").parse::<u16>().unwrap_or(0), "Type": proto}));
            }
        }
    }
    json!({
        "Id": c.id,
        "Names": [r["Name"]],
        "Image": r.pointer("/Config/Image").cloned().unwrap_or(json!("")),
        "ImageID": r["Image"],
        "Command": command_text(&r),
        "Created": created,
        "Ports": ports,
        "Labels": r.pointer("/Config/Labels").cloned().unwrap_or(json!({})),
        "State": r.pointer("/State/Status").cloned().unwrap_or(json!("created")),
        "Status": status_text(&r["State"]),
        "HostConfig": {"NetworkMode": r.pointer("/HostConfig/NetworkMode").cloned().unwrap_or(json!("bridge"))},
        "NetworkSettings": {"Networks": r.pointer("/NetworkSettings/Networks").cloned().unwrap_or(json!({}))},
        "Mounts": r["Mounts"],
    })
}

fn matches(c: &Container, f: &http::Filters) -> bool {
    let r = c.record();
    let name = c.name();
    let status = r
        .pointer("/State/Status")
        .and_then(Value::as_str)
        .unwrap_or("");
    let any = |k: &str, pred: &dyn Fn(&str) -> bool| {
        f.get(k).is_empty() || f.get(k).iter().any(|v| pred(v))
    };
    let labels = r
        .pointer("/Config/Labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    any("id", &|v| c.id.starts_with(v))
        && any("name", &|v| name.contains(v.trim_start_matches('/')))
        && any("status", &|v| v == status)
        && any("exited", &|v| {
            status == "exited"
                && r.pointer("/State/ExitCode")
                    .and_then(Value::as_i64)
                    .map(|x| x.to_string())
                    .as_deref()
                    == Some(v)
        })
        && any("ancestor", &|v| {
            r.pointer("/Config/Image").and_then(Value::as_str) == Some(v)
                || r["Image"].as_str().is_some_and(|i| i.contains(v))
        })
        && f.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
            None => labels.contains_key(l.as_str()),
        })
}

async fn list(ctx: Ctx, req: Req) -> ApiResult {
    let all = req.query.bool("all", false);
    let limit = req.query.int("limit")?.unwrap_or(-1);
    let f = req.query.filters()?;
    let mut cs: Vec<Arc<Container>> = ctx
        .containers
        .all()
        .into_iter()
        .filter(|c| (all || c.running() || limit > 0) && matches(c, &f))
        .collect();
    cs.sort_by(|a, b| {
        b.record()["Created"]
            .as_str()
            .unwrap_or("")
            .cmp(a.record()["Created"].as_str().unwrap_or(""))
    });
    if limit > 0 {
        cs.truncate(limit as usize);
    }
    let out: Vec<Value> = cs.iter().map(|c| summary(c)).collect();
    ok_json(&out)
}

async fn prune(ctx: Ctx, _req: Req) -> ApiResult {
    let mut deleted = Vec::new();
    for c in ctx.containers.all() {
        if !c.running() {
            exit::remove(&ctx, &c).await?;
            deleted.push(c.id.clone());
        }
    }
    ok_json(&json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}))
}

fn parse_time(s: Option<&str>) -> Option<i64> {
    let s = s?.trim();
    if s.is_empty() || s == "0" {
        return None;
    }
    s.parse::<f64>().ok().map(|f| (f * 1e9) as i64)
}

async fn logs(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let q = &req.query;
    let (stdout, stderr) = (q.bool("stdout", false), q.bool("stderr", false));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
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
    let path = std::path::PathBuf::from(c.record()["LogPath"].as_str().unwrap_or(""));
    let c2 = c.clone();
    tokio::spawn(streams::logs(path, o, tx, move || c2.running()));
    Ok(resp)
}

async fn top(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    if !c.running() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let cg = format!("/sys/fs/cgroup/pids/berth/{}/cgroup.procs", c.id);
    let pids = std::fs::read_to_string(&cg)
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/berth/{}/cgroup.procs", c.id)))
        .unwrap_or_default();
    let mut procs = Vec::new();
    for p in pids.lines() {
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
        procs.push(json!([user, p, ppid, "0", "", "?", "00:00:00", cmd]));
    }
    ok_json(
        &json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": procs}),
    )
}

async fn changes(ctx: Ctx, req: Req) -> ApiResult {
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

async fn export(ctx: Ctx, req: Req) -> ApiResult {
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
    ctx.events
        .publish("container", "export", req.param("id"), Default::default());
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
