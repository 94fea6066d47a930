//! Removing a container (`docker rm`, with `-f` killing it first).

use super::exit;
use crate::server::http::{empty, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use hyper::StatusCode;
use serde_json::json;

pub async fn remove(ctx: Ctx, req: Req) -> ApiResult {
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
        let _ = super::stop::send_signal(&ctx, &c, libc::SIGKILL).await;
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
