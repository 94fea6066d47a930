//! Container lifecycle endpoints: create, start, wait, stop, kill, restart, pause, resize,
//! rename and remove; `register` wires every container route (listing and inspection live in
//! `containers_list`, streams in `containers_io`, stats in `containers_stats`, `docker cp` in
//! `containers_archive`, `docker update` in `containers_update`).

use super::{containers_archive as archive, containers_io as io, containers_list as list};
use crate::containers::{attach, create, kill, pause, remove, rename, restart, start, stop, wait};
use crate::server::http::{self, empty, read_json, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/containers/create", create_h);
    r.add(Method::GET, "/containers/json", list::list);
    r.add(Method::POST, "/containers/prune", list::prune);
    r.add(Method::GET, "/containers/{id}/json", list::inspect);
    r.add(Method::POST, "/containers/{id}/start", start_h);
    r.add(Method::POST, "/containers/{id}/attach", attach::attach);
    r.add(Method::POST, "/containers/{id}/wait", wait::wait);
    r.add(Method::POST, "/containers/{id}/stop", stop::stop_h);
    r.add(Method::POST, "/containers/{id}/kill", kill::kill);
    r.add(Method::POST, "/containers/{id}/restart", restart::restart);
    r.add(Method::POST, "/containers/{id}/pause", pause::pause);
    r.add(Method::POST, "/containers/{id}/unpause", pause::unpause);
    r.add(Method::POST, "/containers/{id}/resize", resize);
    r.add(Method::POST, "/containers/{id}/rename", rename::rename);
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
        crate::containers::update::update,
    );
    r.add(Method::DELETE, "/containers/{id}", remove::remove);
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

async fn resize(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let (h, w) = (
        req.query.int("h")?.unwrap_or(24),
        req.query.int("w")?.unwrap_or(80),
    );
    if c.running() {
        let sock = ctx.containers.monitor_sock(&c.id);
        let _ = tokio::task::spawn_blocking(move || {
            start::monitor_cmd(&sock, &json!({"cmd": "resize", "h": h, "w": w}))
        })
        .await;
    }
    Ok(empty(StatusCode::OK))
}
