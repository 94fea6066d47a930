//! Pausing and unpausing a container (`docker pause`, `docker unpause`): its cgroup frozen and
//! thawed by its monitor.

use super::{exit, lock, monitor_client, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::state::Ctx;
use berth_monitor_proto::{Command, Reply};
use std::sync::Arc;

/// Freezes the running container `c`.
pub async fn pause(ctx: &Ctx, c: &Arc<Container>) -> ServiceResult<()> {
    set_paused(ctx, c, true).await
}

/// Thaws the paused container `c`.
pub async fn unpause(ctx: &Ctx, c: &Arc<Container>) -> ServiceResult<()> {
    set_paused(ctx, c, false).await
}

async fn set_paused(ctx: &Ctx, c: &Arc<Container>, pause: bool) -> ServiceResult<()> {
    let _op = lock::op(c).await?;
    let not_running = || ServiceError::conflict(format!("Container {} is not running", c.id));
    if !c.running() {
        return Err(not_running());
    }
    match (pause, c.paused()) {
        (true, true) => {
            return Err(ServiceError::conflict(format!(
                "Container {} is already paused",
                c.id
            )))
        }
        (false, false) => {
            return Err(ServiceError::conflict(format!(
                "Container {} is not paused",
                c.id
            )))
        }
        _ => {}
    }
    let sock = ctx.containers.monitor_sock(&c.id);
    let cmd = if pause {
        Command::Pause
    } else {
        Command::Resume
    };
    let r = monitor_client::call(&sock, cmd)
        .await
        // The monitor is gone: the container exited meanwhile.
        .map_err(|_| not_running())?;
    if let Reply::Failure(f) = r {
        if !c.running() {
            return Err(not_running());
        }
        return Err(ServiceError::internal(f.error));
    }
    // Only while it still runs: an exit recorded meanwhile (without the lock) has the last
    // word, so a stopped container is never left `paused`.
    let recorded = c.update(|r| {
        r.state.running && !r.state.restarting && {
            r.state.set_paused(pause);
            true
        }
    });
    if !recorded {
        return Err(not_running());
    }
    let _ = ctx.containers.save(c);
    ctx.events.publish(
        "container",
        if pause { "pause" } else { "unpause" },
        &c.id,
        exit::attrs(c),
    );
    super::health::paused(ctx, c, pause);
    Ok(())
}
