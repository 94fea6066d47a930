//! Restarting a container (`docker restart`): stop, then start, under one hold of its op lock
//! so no other verb comes between.

use super::{exit, lock, start, stop, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::state::Ctx;
use std::sync::Arc;

/// Stops `c` (SIGKILL after `timeout` seconds) if it runs, then starts it.
pub async fn restart(ctx: &Ctx, c: &Arc<Container>, timeout: Option<i64>) -> ServiceResult<()> {
    let _op = lock::op(c).await?;
    stop::stop_held(ctx, c, timeout, None).await?;
    match start::start_held(ctx, c).await {
        // Still running: its exit was not recorded within the stop's patience.
        Err(ServiceError::NotModified) => {
            return Err(ServiceError::conflict(format!(
                "Cannot restart container {}: it did not stop",
                c.id
            )))
        }
        r => r?,
    }
    ctx.events
        .publish("container", "restart", &c.id, exit::attrs(c));
    Ok(())
}
