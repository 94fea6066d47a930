//! Removing a container (`docker rm`; with `-f` a running one is killed first).

use super::{exit, kill, lock, stop, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::filters::PruneFilter;
use crate::state::Ctx;
use std::sync::Arc;
use std::time::Duration;

/// How long `rm -f` waits for the exit of the container it killed.
const KILL_PATIENCE: Duration = Duration::from_secs(10);

/// Removes `c`: its rw layer, folders and record; with `volumes` also its anonymous volumes
/// no other container uses. A running container only with `force` (killed, its exit recorded
/// first); a stop in progress does not hold that up (see [`lock`]).
pub async fn remove(
    ctx: &Ctx,
    c: &Arc<Container>,
    force: bool,
    volumes: bool,
) -> ServiceResult<()> {
    let _op = if force {
        match lock::op_or_stopping(c).await? {
            Some(g) => g,
            None => {
                // A stop holds the lock, waiting for the exit: hurry it up.
                let _ = kill::signal(ctx, c, libc::SIGKILL).await;
                lock::op(c).await?
            }
        }
    } else {
        lock::op(c).await?
    };
    if !c.running() && c.events.borrow().restart_pending {
        // Waiting to restart: dockerd's restarting container.
        if !force {
            return Err(refusal(c, "restarting"));
        }
        super::restart::cancel_pending(ctx, c);
    }
    if c.running() {
        if !force {
            let state = c.view(|r| r.state.status().to_string());
            return Err(refusal(c, &state));
        }
        c.update(|r| r.manually_stopped = true);
        c.events.send_modify(|l| l.removing = true);
        let _ = kill::signal(ctx, c, libc::SIGKILL).await;
        if !stop::exited(c, KILL_PATIENCE).await {
            c.events.send_modify(|l| l.removing = false);
            return Err(ServiceError::internal(format!(
                "Could not kill running container {}, cannot remove",
                c.id
            )));
        }
        lock::settled(c).await;
        // An AutoRemove container is gone by itself.
        if c.events.borrow().removed {
            return Ok(());
        }
    }
    exit::remove_with_volumes(ctx, c, volumes).await
}

/// Docker's refusal to remove a running, paused or restarting container without `force`.
fn refusal(c: &Container, state: &str) -> ServiceError {
    let procedure = "Stop the container before attempting removal or force remove";
    let procedure = if state == "paused" {
        format!("Unpause and then {}", procedure.to_lowercase())
    } else {
        procedure.to_string()
    };
    ServiceError::conflict(format!(
        "You cannot remove a {state} container {}. {procedure}",
        c.id
    ))
}

/// What `docker container prune` did: the ids removed and the bytes their rw layers held.
#[derive(Debug, Default)]
pub struct Pruned {
    pub deleted: Vec<String>,
    pub reclaimed: u64,
}

/// Removes every stopped container `filter` admits (`docker container prune`).
pub async fn prune(ctx: &Ctx, filter: &PruneFilter) -> ServiceResult<Pruned> {
    let mut out = Pruned::default();
    for c in ctx.containers.all() {
        let admitted = c.view(|r| {
            let labels = r.config.labels.as_ref();
            filter.matches(|k| labels?.get(k).map(String::as_str), &r.created)
        });
        if !admitted || c.running() {
            continue;
        }
        let storage = ctx.storage.clone();
        let id = c.id.clone();
        let size = tokio::task::spawn_blocking(move || storage.usage(&id).map_or(0, |u| u.size))
            .await
            .unwrap_or(0);
        match remove(ctx, &c, false, false).await {
            Ok(()) => {
                out.deleted.push(c.id.clone());
                out.reclaimed += size;
            }
            // Running, or removed meanwhile: not for this prune.
            Err(ServiceError::Conflict(_) | ServiceError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
