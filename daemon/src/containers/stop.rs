//! Stopping a container (`docker stop`): its stop signal, then SIGKILL after a timeout.

use super::{exit, kill, lock, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::state::Ctx;
use std::sync::Arc;
use std::time::Duration;

/// How long the exit may take after SIGKILL before the stop gives up waiting.
const KILL_PATIENCE: Duration = Duration::from_secs(10);

/// Stops `c`: `signal` (default its stop signal), then SIGKILL after `timeout` seconds
/// (default its `StopTimeout`, else 10; negative: wait for ever). `NotModified` when it was
/// not running.
pub async fn stop(
    ctx: &Ctx,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<i32>,
) -> ServiceResult<()> {
    let _op = lock::op(c).await?;
    if !stop_held(ctx, c, timeout, signal).await? {
        return Err(ServiceError::not_modified());
    }
    Ok(())
}

/// [`stop`] with `c`'s op lock held by the caller (`stop`, `restart`); false when it was not
/// running. While it waits for the exit, `kill` and `rm -f` signal alongside it.
pub async fn stop_held(
    ctx: &Ctx,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<i32>,
) -> ServiceResult<bool> {
    if !c.running() {
        // Waiting to restart (its policy's back-off): stopped for good, as dockerd's.
        return Ok(super::restart::cancel_pending(ctx, c));
    }
    c.update(|r| r.manually_stopped = true);
    let _ = ctx.containers.save(c);
    let sig = signal.unwrap_or_else(|| super::start::stop_signal(c));
    let t = timeout
        .or_else(|| c.view(|r| r.config.stop_timeout))
        .unwrap_or(10);
    let _stopping = lock::Stopping::begin(c);
    match kill::signal(ctx, c, sig).await {
        Ok(()) => kill::publish_kill(ctx, c, sig),
        // Its monitor is gone or going: the container is exiting by itself.
        Err(ServiceError::Conflict(_)) => {
            exited(c, KILL_PATIENCE).await;
            return Ok(true);
        }
        Err(e) => return Err(e),
    }
    let in_time = match u64::try_from(t) {
        Ok(t) => exited(c, Duration::from_secs(t)).await,
        Err(_) => exited(c, Duration::MAX).await,
    };
    if !in_time {
        if kill::signal(ctx, c, libc::SIGKILL).await.is_ok() {
            kill::publish_kill(ctx, c, libc::SIGKILL);
        }
        exited(c, KILL_PATIENCE).await;
    }
    ctx.events
        .publish("container", "stop", &c.id, exit::attrs(c));
    Ok(true)
}

/// Waits up to `patience` until the exit of `c` has been recorded; false if it was not.
pub async fn exited(c: &Container, patience: Duration) -> bool {
    let mut rx = c.events.subscribe();
    let wait = async move { rx.wait_for(|l| !l.running).await.is_ok() };
    if patience == Duration::MAX {
        return wait.await;
    }
    tokio::time::timeout(patience, wait).await.unwrap_or(false)
}
