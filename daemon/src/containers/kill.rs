//! Sending a signal to a running container (`docker kill`), and the signal step every verb
//! that ends a container uses (stop, restart, `rm -f`): one `kill` command to its monitor.

use super::{exit, lock, monitor_client, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::state::Ctx;
use berth_monitor_proto::{Command, Reply};
use std::sync::Arc;

/// Sends `sig` to the running container `c` (`key`: the name or id the caller gave).
/// Waits for a start in progress; alongside a stop in progress it signals at once (see
/// [`lock`]). Docker's 409 when the container is not running.
pub async fn kill(ctx: &Ctx, c: &Arc<Container>, key: &str, sig: i32) -> ServiceResult<()> {
    let _op = lock::op_or_stopping(c).await?;
    if !c.running() {
        // Waiting to restart (its policy's back-off): dockerd sends nothing and the container
        // stays stopped.
        if super::restart::cancel_pending(ctx, c) {
            return Ok(());
        }
        return Err(not_running(key, c));
    }
    if sig == libc::SIGKILL || sig == libc::SIGTERM {
        c.update(|r| r.manually_stopped = true);
    }
    signal(ctx, c, sig).await.map_err(|e| match e {
        ServiceError::Conflict(_) => not_running(key, c),
        e => e,
    })?;
    publish_kill(ctx, c, sig);
    if sig == libc::SIGKILL {
        // As dockerd's: a SIGKILL is answered once the exit is recorded, so the container is
        // `exited` to the next request (a kill that takes no effect is an error).
        if !super::stop::exited(c, KILL_PATIENCE).await {
            return Err(ServiceError::internal(format!(
                "tried to kill container, but did not receive an exit event: {}",
                c.id
            )));
        }
        lock::settled(c).await;
    }
    Ok(())
}

/// How long a SIGKILL waits for the exit to be recorded (dockerd: 10 s, then 2 s more).
const KILL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(12);

/// Docker's refusal to kill a container that is not running.
fn not_running(key: &str, c: &Container) -> ServiceError {
    ServiceError::conflict(format!(
        "cannot kill container: {key}: container {} is not running",
        c.id
    ))
}

/// The `kill` event (`signal` attribute), which Docker also emits for each signal of a stop.
pub fn publish_kill(ctx: &Ctx, c: &Container, sig: i32) {
    let mut a = exit::attrs(c);
    a.insert("signal".into(), sig.to_string());
    ctx.events.publish("container", "kill", &c.id, a);
}

/// Asks `c`'s monitor to send `sig` (to every process of the container for SIGKILL). A
/// monitor that is gone, or that fails while the container is no longer running, means the
/// container has exited meanwhile: a conflict, not a failure of the daemon.
pub async fn signal(ctx: &Ctx, c: &Container, sig: i32) -> ServiceResult<()> {
    let sock = ctx.containers.monitor_sock(&c.id);
    let cmd = Command::Kill {
        signal: sig,
        all: sig == libc::SIGKILL,
    };
    match monitor_client::call(&sock, cmd).await {
        Ok(Reply::Failure(_)) if !c.running() => Err(ServiceError::conflict(format!(
            "Container {} is not running",
            c.id
        ))),
        Ok(Reply::Failure(f)) => Err(ServiceError::internal(f.error)),
        Ok(_) => Ok(()),
        Err(e) => Err(ServiceError::conflict(format!(
            "Container {} is not running ({e})",
            c.id
        ))),
    }
}
