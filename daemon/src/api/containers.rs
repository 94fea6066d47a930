//! Container lifecycle endpoints — create, start, wait, stop, kill, restart, pause, unpause,
//! resize, rename, update and remove — and `register`, which wires every container route
//! (listing and inspection live in `containers_list`, streams in `containers_io`, stats in
//! `containers_stats`, `docker cp` in `containers_archive`). Each handler parses the request,
//! calls the verb's service in `containers/` and renders its answer.

use super::{containers_archive as archive, containers_io as io, containers_list as list};
use crate::containers::{
    create, kill, links, monitor_client, pause, remove, rename, restart, start, stop, update,
    validate, wait,
};
use crate::server::http::{self, empty, ok_json, read_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use berth_api::types::container::HostConfig;
use berth_monitor_proto::Command;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// Registers the routes. A container is named by `{id*}`: a link's name (`parent/alias`)
/// names its target, as with dockerd, and `docker rm --link` names a link.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/containers/create", create_h);
    r.add(Method::GET, "/containers/json", list::list);
    r.add(Method::POST, "/containers/prune", list::prune);
    r.add(Method::GET, "/containers/{id*}/json", list::inspect);
    r.add(Method::POST, "/containers/{id*}/start", start_h);
    r.add(Method::POST, "/containers/{id*}/attach", io::attach);
    r.add(Method::POST, "/containers/{id*}/wait", wait_h);
    r.add(Method::POST, "/containers/{id*}/stop", stop_h);
    r.add(Method::POST, "/containers/{id*}/kill", kill_h);
    r.add(Method::POST, "/containers/{id*}/restart", restart_h);
    r.add(Method::POST, "/containers/{id*}/pause", pause_h);
    r.add(Method::POST, "/containers/{id*}/unpause", unpause_h);
    r.add(Method::POST, "/containers/{id*}/resize", resize);
    r.add(Method::POST, "/containers/{id*}/rename", rename_h);
    r.add(Method::GET, "/containers/{id*}/logs", io::logs);
    r.add(Method::GET, "/containers/{id*}/top", io::top);
    r.add(Method::GET, "/containers/{id*}/changes", io::changes);
    r.add(Method::GET, "/containers/{id*}/export", io::export);
    r.add(
        Method::GET,
        "/containers/{id*}/stats",
        super::containers_stats::stats,
    );
    r.add(Method::HEAD, "/containers/{id*}/archive", archive::head);
    r.add(Method::GET, "/containers/{id*}/archive", archive::get);
    r.add(Method::PUT, "/containers/{id*}/archive", archive::put);
    r.add(Method::POST, "/containers/{id*}/update", update_h);
    r.add(Method::DELETE, "/containers/{id*}", remove_h);
}

async fn create_h(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.query.get("name").map(str::to_string);
    let old_api = req.version < (1, 44);
    let mut body: Value = read_json(req.into_body()).await?;
    // `Healthcheck.StartInterval` came with API 1.44: dockerd drops an older client's.
    if let Some(hc) = body.get_mut("Healthcheck").and_then(Value::as_object_mut) {
        if old_api {
            hc.remove("StartInterval");
        }
    }
    // Before API 1.44 dockerd connected a new container to one network only.
    if let Some(eps) = body["NetworkingConfig"]["EndpointsConfig"]
        .as_object()
        .filter(|m| old_api && m.len() > 1)
    {
        let names: Vec<&str> = eps.keys().map(String::as_str).collect();
        return Err(ApiError::bad_request(format!(
            "Container cannot be connected to network endpoints: {}",
            names.join(", ")
        )));
    }
    let warnings: Vec<String> = if old_api || !body.is_object() {
        Vec::new()
    } else {
        crate::network::mac::main_mac_from_1_44(&mut body)?
            .into_iter()
            .collect()
    };
    let id = create::create(&ctx, name.as_deref(), body).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

async fn start_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    start::start(&ctx, &c).await?;
    Ok(empty(StatusCode::NO_CONTENT))
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

async fn wait_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let cond = wait::Condition::parse(req.query.get("condition").unwrap_or(""))?;
    // Subscribed before the answer starts: an exit right after it is not missed.
    let done = wait::wait(&c, cond);
    let (tx, resp) = http::stream("application/json");
    tokio::spawn(async move {
        tokio::select! {
            code = done => if let Some(code) = code {
                let body = json!({"StatusCode": code, "Error": null});
                let _ = tx.send(bytes::Bytes::from(format!("{body}\n"))).await;
            },
            _ = tx.closed() => {}
        }
    });
    Ok(resp)
}

async fn stop_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let t = req.query.int("t")?.or(req.query.int("timeout")?);
    let sig = req.query.get("signal").and_then(super::signal_number);
    stop::stop(&ctx, &c, t, sig).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn kill_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let sig_s = req.query.get("signal").unwrap_or("SIGKILL");
    let sig = super::signal_number(sig_s)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid signal: {sig_s}")))?;
    kill::kill(&ctx, &c, req.param("id"), sig).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn restart_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    restart::restart(&ctx, &c, req.query.int("t")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn pause_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    pause::pause(&ctx, &c).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn unpause_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    pause::unpause(&ctx, &c).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn rename_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    rename::rename(&ctx, &c, req.query.get("name").unwrap_or("")).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn update_h(ctx: Ctx, req: Req) -> ApiResult {
    // The body first, as dockerd: the client has sent all of it before it reads the answer.
    let id = req.param("id").to_string();
    let mut body: Value = read_json(req.into_body()).await?;
    let c = ctx.containers.get(&id)?;
    validate::normalise(&mut body);
    let u: HostConfig =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("json: {e}")))?;
    update::update(&ctx, &c, &u).await?;
    ok_json(&json!({"Warnings": []}))
}

async fn remove_h(ctx: Ctx, req: Req) -> ApiResult {
    if req.query.bool("link", false) {
        links::remove_link(&ctx, req.param("id"))?;
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    let c = ctx.containers.get(req.param("id"))?;
    let (force, volumes) = (req.query.bool("force", false), req.query.bool("v", false));
    remove::remove(&ctx, &c, force, volumes).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
