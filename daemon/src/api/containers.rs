//! Container lifecycle endpoints: create, start, wait, stop, kill, restart, pause, resize,
//! rename and remove; `register` wires every container route (listing and inspection live in
//! `containers_list`, streams in `containers_io`, stats in `containers_stats`, `docker cp` in
//! `containers_archive`, `docker update` in `containers_update`).

use super::{containers_archive as archive, containers_io as io, containers_list as list};
use crate::containers::{create, exit, monitor_client, start, Container};
use crate::server::http::{self, empty, read_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use berth_monitor_proto::{Command, Reply};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/containers/create", create_h);
    r.add(Method::GET, "/containers/json", list::list);
    r.add(Method::POST, "/containers/prune", list::prune);
    r.add(Method::GET, "/containers/{id}/json", list::inspect);
    r.add(Method::POST, "/containers/{id}/start", start_h);
    r.add(Method::POST, "/containers/{id}/attach", io::attach);
    r.add(Method::POST, "/containers/{id}/wait", wait);
    r.add(Method::POST, "/containers/{id}/stop", stop_h);
    r.add(Method::POST, "/containers/{id}/kill", kill);
    r.add(Method::POST, "/containers/{id}/restart", restart);
    r.add(Method::POST, "/containers/{id}/pause", pause);
    r.add(Method::POST, "/containers/{id}/unpause", unpause);
    r.add(Method::POST, "/containers/{id}/resize", resize);
    r.add(Method::POST, "/containers/{id}/rename", rename);
    r.add(Method::GET, "/containers/{id}/logs", io::logs);
    r.add(Method::GET, "/containers/{id}/top", io::top);
    r.add(Method::GET, "/containers/{id}/changes", io::changes);
    r.add(Method::GET, "/containers/{id}/export", io::export);
    r.add(
        Method::GET,
        "/containers/{id}/stats",
        super::containers_stats::stats,
    );
    r.add(Method::HEAD, "/containers/{id}/archive", archive::head);
    r.add(Method::GET, "/containers/{id}/archive", archive::get);
    r.add(Method::PUT, "/containers/{id}/archive", archive::put);
    r.add(
        Method::POST,
        "/containers/{id}/update",
        super::containers_update::update,
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
    publish_kill(ctx, c, sig);
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
        publish_kill(ctx, c, libc::SIGKILL);
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

/// The `kill` event (`signal` attribute), which Docker also emits for each signal of a stop.
fn publish_kill(ctx: &Ctx, c: &Container, sig: i32) {
    let mut a = exit::attrs(c);
    a.insert("signal".into(), sig.to_string());
    ctx.events.publish("container", "kill", &c.id, a);
}

async fn send_signal(ctx: &Ctx, c: &Container, sig: i32) -> Result<(), ApiError> {
    let sock = ctx.containers.monitor_sock(&c.id);
    let cmd = Command::Kill {
        signal: sig,
        all: sig == libc::SIGKILL,
    };
    match monitor_client::call(&sock, cmd).await {
        Ok(Reply::Failure(f)) => Err(ApiError::internal(f.error)),
        Ok(_) => Ok(()),
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
    publish_kill(&ctx, &c, sig);
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
    let sock = ctx.containers.monitor_sock(&c.id);
    let cmd = if pause {
        Command::Pause
    } else {
        Command::Resume
    };
    monitor_client::request(&sock, cmd)
        .await
        .map_err(ApiError::internal)?;
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
        let sock = ctx.containers.monitor_sock(&c.id);
        let dim = |v: i64| u16::try_from(v.max(0)).unwrap_or(u16::MAX);
        let cmd = Command::Resize {
            h: dim(h),
            w: dim(w),
        };
        let _ = monitor_client::call(&sock, cmd).await;
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
    let old = format!("/{}", c.name());
    c.update(|r| r["Name"] = json!(format!("/{new}")));
    ctx.containers.save(&c)?;
    let mut a = exit::attrs(&c);
    a.insert("oldName".into(), old);
    ctx.events.publish("container", "rename", &c.id, a);
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
