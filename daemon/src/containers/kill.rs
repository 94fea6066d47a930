//! Sending a signal to a running container (`docker kill`).

use crate::server::http::{empty, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use hyper::StatusCode;
use serde_json::json;

pub async fn kill(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let sig_s = req.query.get("signal").unwrap_or("SIGKILL");
    let sig = crate::api::signal_number(sig_s)
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
    super::stop::send_signal(&ctx, &c, sig).await?;
    super::stop::publish_kill(&ctx, &c, sig);
    Ok(empty(StatusCode::NO_CONTENT))
}
