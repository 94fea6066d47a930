//! Restarting a container (`docker restart`): stop, then start, under one hold of its op lock
//! so no other verb comes between; and the back-off of restart policies.

use super::{exit, lock, start, stop, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::state::Ctx;
use std::sync::Arc;
use std::time::Duration;

/// The first back-off of a restart policy, and its cap.
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long starts the back-off again from [`FIRST_DELAY`].
const RESET_AFTER: Duration = Duration::from_secs(10);

/// Docker's restart back-off after a run of `ran`, the previous back-off being `previous`
/// (zero: none yet): 100 ms, doubled after each short run, at most a minute; a run of 10 s
/// or more starts again at 100 ms.
pub fn backoff(previous: Duration, ran: Duration) -> Duration {
    let previous = if ran >= RESET_AFTER {
        Duration::ZERO
    } else {
        previous
    };
    if previous.is_zero() {
        FIRST_DELAY
    } else {
        previous.saturating_mul(2).min(MAX_DELAY)
    }
}

/// Cancels the restart `c`'s policy has pending (stop, kill and `rm -f` of a `restarting`
/// container): it is `exited` again, stopped by hand. False when none was pending.
pub fn cancel_pending(ctx: &Ctx, c: &Container) -> bool {
    let mut pending = false;
    c.events
        .send_modify(|l| pending = std::mem::take(&mut l.restart_pending));
    if pending {
        c.update(|r| {
            r.manually_stopped = true;
            r.state.cancel_restart();
        });
        let _ = ctx.containers.save(c);
    }
    pending
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute_and_resets_after_a_long_run() {
        let short = Duration::from_secs(1);
        let mut d = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..12 {
            d = backoff(d, short);
            seen.push(d.as_millis());
        }
        assert_eq!(&seen[..4], &[100, 200, 400, 800]);
        assert_eq!(seen[11], 60_000);
        assert_eq!(backoff(d, Duration::from_secs(10)).as_millis(), 100);
    }
}
