//! Restarting a container: stop, then start.

use super::{exit, start};
use crate::server::http::{empty, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use hyper::StatusCode;

pub async fn restart(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let t = req.query.int("t")?;
    super::stop::stop(&ctx, &c, t, None).await?;
    start::start(&ctx, &c).await?;
    ctx.events
        .publish("container", "restart", &c.id, exit::attrs(&c));
    Ok(empty(StatusCode::NO_CONTENT))
}
