//! Preparing a created container ahead of its `start` ("prestart").
//!
//! `docker run` is `create`, then `attach` and `wait`, then `start`: the client spends a few
//! milliseconds of its own between the create's answer and the start. berthd uses them: right
//! after a create it does the slow half of `start` in the background — mount the rootfs, write
//! the bundle, spawn the monitor, which makes the cgroups and clones the init, which mounts
//! and pivots into the container's filesystem and then waits. That is the OCI runtime's own
//! "created" state; the container stays `created` in every API answer (no PID, no events).
//! `start` then only joins networks and lets the process run (see `start::start_locked`).
//!
//! A preparation is speculative, so it is bounded and reversible:
//! - at most `prestart` containers (daemon.json, default 4, 0 = off) are prepared or being
//!   prepared at once; a create beyond that is not prepared;
//! - a container not started within [`EXPIRY`] is taken down again (init killed, cgroups and
//!   rootfs mount gone), as is one that is removed, updated, written to by `cp`, or still
//!   prepared when berthd stops; after a crash its monitor does that itself (it watches
//!   berthd's pidfd until `start`, monitor/PROTOCOL.md "Lifetime"), and `exit::restore` kills
//!   whatever is still left;
//! - a preparation that fails is dropped silently: `start` does the whole work again and
//!   reports the error as it always would;
//! - containers that join another container's namespace are never prepared (that container
//!   must be running at `start`, not at create), nor those with links (their targets'
//!   addresses are read at `start`).
//!
//! Locking: the preparation holds the container's `prep` lock while it runs, so a start or a
//! removal arriving meanwhile waits for it; `prep` is always taken after `op`, never before.

use super::monitor_client;
use super::Container;
use crate::state::Ctx;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long a prepared container waits for its start before it is taken down again.
pub const EXPIRY: Duration = Duration::from_secs(10);

/// Whether a container's configuration allows preparing it at create time.
fn eligible(rec: &super::ContainerRecord) -> bool {
    let hc = &rec.host_config;
    let shared = |m: &str| m.starts_with("container:");
    // Links take their targets' addresses at start.
    let linked = hc.links.as_ref().is_some_and(|l| !l.is_empty());
    !shared(&hc.network_mode) && !shared(&hc.pid_mode) && !shared(&hc.ipc_mode) && !linked
}

/// Takes one unit of the budget; false when it is used up.
fn reserve(ctx: &Ctx) -> bool {
    let limit = ctx.config.prestart;
    ctx.containers
        .prepared
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        })
        .is_ok()
}

/// Gives one unit of the budget back.
fn release(ctx: &Ctx) {
    let _ = ctx
        .containers
        .prepared
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}

/// Called after a create: prepares `c` in the background when its configuration and the
/// budget allow.
pub fn begin(ctx: &Ctx, c: &Arc<Container>) {
    if !c.view(eligible) || !reserve(ctx) {
        return;
    }
    // Locked before the task runs, so a start or removal that arrives at once waits for it.
    let Ok(mut slot) = c.prep.clone().try_lock_owned() else {
        release(ctx);
        return;
    };
    let (ctx, c) = (ctx.clone(), c.clone());
    tokio::spawn(async move {
        let (ctx2, c2) = (ctx.clone(), c.clone());
        let spawned =
            tokio::task::spawn_blocking(move || super::start::spawn_monitor(&ctx2, &c2)).await;
        match spawned {
            Ok(Ok(pid)) => {
                *slot = Some(pid);
                drop(slot);
                expire_later(ctx, c, pid);
            }
            Ok(Err(e)) => {
                tracing::debug!("preparing {} ahead of its start: {}", c.id, e.to_string());
                release(&ctx);
            }
            Err(_) => release(&ctx),
        }
    });
}

/// Takes the container down again if it is still prepared, unstarted, after [`EXPIRY`].
fn expire_later(ctx: Ctx, c: Arc<Container>, pid: i32) {
    tokio::spawn(async move {
        tokio::time::sleep(EXPIRY).await;
        let _op = c.op.lock().await;
        let mut slot = c.prep.lock().await;
        if *slot == Some(pid) {
            *slot = None;
            drop(slot);
            release(&ctx);
            discard(&ctx, &c).await;
        }
    });
}

/// For `start` (under `op`): the PID of the container's prepared init, once any preparation
/// still running has finished; `None` when there is none, or it died meanwhile (whatever is
/// left of it is taken down, and the caller starts from scratch).
pub async fn take(ctx: &Ctx, c: &Container) -> Option<i32> {
    let pid = c.prep.lock().await.take()?;
    release(ctx);
    // SAFETY: kill(2) with signal 0 sends nothing; it only checks that `pid` exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return Some(pid);
    }
    discard(ctx, c).await;
    None
}

/// Takes down the preparation of `c`, if it has one (removal, `update`, `cp` into it).
pub async fn cancel(ctx: &Ctx, c: &Container) {
    let had = c.prep.lock().await.take().is_some();
    if had {
        release(ctx);
        discard(ctx, c).await;
    }
}

/// Takes down every preparation (berthd is stopping).
pub async fn cancel_all(ctx: &Ctx) {
    for c in ctx.containers.all() {
        cancel(ctx, &c).await;
    }
}

/// After a daemon start: a created container whose monitor still answers was prepared by the
/// previous berthd; it is taken down.
pub async fn orphan(ctx: &Ctx, c: &Container) {
    let sock = ctx.containers.monitor_sock(&c.id);
    if tokio::net::UnixStream::connect(&sock).await.is_ok() {
        tracing::info!("taking down the preparation of created container {}", c.id);
        discard(ctx, c).await;
    }
}

/// Kills a prepared container's init, waits for its monitor to finish (it removes the
/// cgroups and exits), and unmounts the rootfs.
async fn discard(ctx: &Ctx, c: &Container) {
    let sock = ctx.containers.monitor_sock(&c.id);
    let waiting = monitor_client::wait_request(&sock).await;
    monitor_client::kill_all(&sock).await;
    // The reply says the init is dead; the end of the connection, that the monitor is gone.
    if let Ok(Some((_, rest))) = tokio::time::timeout(
        Duration::from_secs(10),
        monitor_client::wait_reply_rest(waiting),
    )
    .await
    {
        monitor_client::until_closed(rest).await;
    }
    let root = super::start::rootfs(ctx, &c.id);
    let sdir = ctx.containers.state_dir(&c.id);
    let _ = tokio::task::spawn_blocking(move || {
        let _ = berth_core::mount::unmount(&root);
        let _ = std::fs::remove_file(sdir.join("exit.json"));
    })
    .await;
}
