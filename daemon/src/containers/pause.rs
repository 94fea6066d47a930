//! Pausing and unpausing a container (its cgroup frozen and thawed by its monitor).

use super::{exit, start};
use crate::server::http::{empty, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use hyper::StatusCode;
use serde_json::json;

pub async fn pause_resume(ctx: Ctx, req: Req, pause: bool) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    if !c.running() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let sock = ctx.containers.monitor_sock(&c.id);
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

pub async fn pause(ctx: Ctx, req: Req) -> ApiResult {
    pause_resume(ctx, req, true).await
}

pub async fn unpause(ctx: Ctx, req: Req) -> ApiResult {
    pause_resume(ctx, req, false).await
}
