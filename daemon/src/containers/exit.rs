//! What happens around a container's process: network join/leave, noticing its exit (through
//! the monitor's `wait`, or `exit.json` when the monitor is gone), restart policies, AutoRemove,
//! and reconciling everything after a daemon restart.

use super::monitor_client::{self, until_closed, wait_reply_rest, wait_request};
use super::{timestamp, Container, ContainerRecord};
use crate::state::Ctx;
use berth_monitor_proto::ExitRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Publishes container event `action` about the container `name_or_id` names, if it exists.
pub fn publish(ctx: &Ctx, name_or_id: &str, action: &str) {
    if let Ok(c) = ctx.containers.get(name_or_id) {
        ctx.events.publish("container", action, &c.id, attrs(&c));
    }
}

/// Event attributes of a container (image, name, labels).
pub fn attrs(c: &Container) -> BTreeMap<String, String> {
    c.view(|r| {
        let mut a = r.config.labels.clone().unwrap_or_default();
        a.insert("image".into(), r.config.image.clone());
        a.insert("name".into(), r.short_name().to_string());
        a
    })
}

/// The ports to publish: `HostConfig.PortBindings`, plus every exposed port on a random host
/// port with `PublishAllPorts` (`-P`).
pub fn port_bindings(rec: &ContainerRecord) -> Vec<berth_core::network::PortBinding> {
    let mut out = Vec::new();
    let none = Default::default();
    let bindings = rec.host_config.port_bindings.as_ref().unwrap_or(&none);
    for (k, list) in bindings {
        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        for b in list.iter().flatten() {
            out.push(berth_core::network::PortBinding {
                proto: proto.to_string(),
                container_port,
                host_ip: b.host_ip.clone(),
                host_port: b.host_port.parse().unwrap_or(0),
            });
        }
    }
    if rec.host_config.publish_all_ports {
        for k in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
            if bindings.contains_key(k) {
                continue;
            }
            let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
            if let Ok(container_port) = port.parse::<u16>() {
                out.push(berth_core::network::PortBinding {
                    proto: proto.into(),
                    container_port,
                    host_ip: String::new(),
                    host_port: 0,
                });
            }
        }
    }
    out
}

/// Joins the container's networks (see `network::endpoints`); returns its first address.
pub async fn join_network(
    ctx: &Ctx,
    c: &Container,
    pid: i32,
) -> Result<Option<String>, crate::error::ServiceError> {
    crate::network::endpoints::join_all(ctx, c, i64::from(pid)).await
}

/// Leaves every network the container joined; returns them (see `network::endpoints`).
pub async fn leave_network(ctx: &Ctx, c: &Container) -> Vec<crate::model::network::NetworkRecord> {
    crate::network::endpoints::leave_all(ctx, c).await
}

/// The `network disconnect` events of the networks a container left.
pub fn publish_left(ctx: &Ctx, c: &Container, left: &[crate::model::network::NetworkRecord]) {
    for net in left {
        crate::network::endpoints::publish(ctx, net, "disconnect", Some(&c.id));
    }
}

/// Follows a running container until it exits.
pub fn watch(ctx: Ctx, c: Arc<Container>) {
    watch_with(ctx, c, None);
}

/// Follows a running container until it exits, on the `wait` connection `waiting` when one is
/// already open.
pub fn watch_with(ctx: Ctx, c: Arc<Container>, waiting: Option<tokio::net::UnixStream>) {
    tokio::spawn(async move {
        let sdir = ctx.containers.state_dir(&c.id);
        let waiting = match waiting {
            Some(s) => Some(s),
            None => wait_request(&ctx.containers.monitor_sock(&c.id)).await,
        };
        let info = match wait_reply_rest(waiting).await {
            Some((v, rest)) => {
                if let Ok(mut h) = c.monitor_exit.lock() {
                    *h = Some(tokio::spawn(until_closed(rest)));
                }
                v
            }
            None => {
                // The monitor is gone: its exit.json says how the container ended.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                monitor_client::exit_record(&sdir)
                    .unwrap_or_else(|| ExitRecord::vanished(137, "container monitor disappeared"))
            }
        };
        on_exit(&ctx, &c, &info).await;
    });
}

/// Records an exit and applies the restart policy / AutoRemove.
pub async fn on_exit(ctx: &Ctx, c: &Arc<Container>, info: &ExitRecord) {
    // Verbs taking the op lock wait until this is over (`lock::op`).
    c.events.send_modify(|l| l.exiting = true);
    if c.view(super::defers_memory_cgroup) {
        if let Some(m) = super::cgroup(c).memory_dir() {
            ctx.containers.reaper.defer(m);
        }
    }
    let code = i64::from(info.exit_code);
    let oom = info.oom_killed;
    let left = leave_network(ctx, c).await;
    let finished = Some(info.finished_at.clone())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(timestamp);
    let (auto, restart, ran) = c.update(|r| {
        let ran = run_time(&r.state.started_at, &finished);
        r.state.set_exited(code, &finished, oom);
        super::health::stopped(r);
        if !info.error.is_empty() {
            r.state.set_error(&info.error);
        }
        let restart = restarts(r, code);
        // Counted when the restart is decided, as Docker's restart manager does; the
        // container is `restarting` (Running, no Pid) until then.
        if restart {
            r.restart_count += 1;
            r.state.set_restarting(code, &finished);
        }
        (auto_remove(r), restart, ran)
    });
    let delay = super::restart::backoff(c.events.borrow().restart_delay, ran);
    // A container that stays has its rootfs detached before anyone hears of the exit (a start
    // right after must mount a new one); an AutoRemove one only once it has left the store.
    let root = super::start::rootfs(ctx, &c.id);
    let kept = match restart || !auto {
        true => Some(super::teardown::detach_blocking(root.clone()).await),
        false => None,
    };
    // An AutoRemove container is about to go: its record is removed, not rewritten (after a
    // crash, `restore` finds it "running" without a monitor and removes it then); so is one
    // that `rm -f` killed (after a crash it is found exited, as the kill left it).
    if (restart || !auto) && !c.events.borrow().removing {
        let _ = ctx.containers.save(c);
        let _ = std::fs::remove_file(ctx.containers.state_dir(&c.id).join("exit.json"));
    }
    if oom {
        ctx.events.publish("container", "oom", &c.id, attrs(c));
    }
    let mut a = attrs(c);
    a.insert("exitCode".into(), code.to_string());
    ctx.events.publish("container", "die", &c.id, a);
    publish_left(ctx, c, &left);
    // An AutoRemove container stays `exiting` until it has left the store (`forget`).
    let leaving = kept.is_none();
    c.events.send_modify(|l| {
        l.exits += 1;
        l.exit_code = code;
        l.running = false;
        l.exiting = leaving;
        l.restart_pending = restart;
        if restart {
            l.restart_delay = delay;
        }
    });
    let Some(detached) = kept else {
        let _ = remove_detached(ctx, c, &root).await;
        super::spawner::refill_later(ctx, std::time::Duration::ZERO);
        return;
    };
    if restart {
        super::teardown::finish(c, detached);
        let (ctx2, c2) = (ctx.clone(), c.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // A stop, kill or removal during the back-off cancelled it.
            let mut pending = false;
            c2.events
                .send_modify(|l| pending = std::mem::take(&mut l.restart_pending));
            if !pending {
                return;
            }
            if let Err(e) = super::start::start(&ctx2, &c2).await {
                tracing::warn!("restarting {}: {}", c2.id, e.to_string());
            }
        });
        return;
    }
    super::teardown::finish(c, detached);
    // The next container's monitor, spawned ahead now that this one has finished.
    super::spawner::refill_later(ctx, std::time::Duration::ZERO);
}

/// How long a run that started at `started` (RFC 3339) and ended at `finished` lasted (zero
/// when either does not parse).
fn run_time(started: &str, finished: &str) -> std::time::Duration {
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (t(started), t(finished)) {
        (Some(s), Some(f)) => (f - s).to_std().unwrap_or_default(),
        _ => std::time::Duration::ZERO,
    }
}

/// Whether a container (record `rec`) is removed when it exits (`--rm`).
pub fn auto_remove(rec: &ContainerRecord) -> bool {
    rec.host_config.auto_remove
}

/// Whether the restart policy of a container (record `rec`) that exited with `code` restarts it.
fn restarts(rec: &ContainerRecord, code: i64) -> bool {
    !rec.manually_stopped && policy_restarts(rec, code)
}

/// Whether the policy of a container (record `rec`) that exited with `code` asks for a
/// restart, stopped by hand or not (as Docker's restart manager decides at daemon start:
/// only `unless-stopped` heeds a manual stop there).
fn policy_restarts(rec: &ContainerRecord, code: i64) -> bool {
    let policy = &rec.host_config.restart_policy;
    let max = policy.maximum_retry_count;
    let count = rec.restart_count;
    match policy.name.as_str() {
        "always" => true,
        "unless-stopped" => !rec.manually_stopped,
        "on-failure" => code != 0 && (max == 0 || count < max),
        _ => false,
    }
}

/// Whether berthd starts the stopped container (record `rec`) when it starts, as dockerd
/// does: one started before whose policy asks for it.
pub(super) fn starts_with_daemon(rec: &ContainerRecord) -> bool {
    rec.state.started_at != super::ZERO_TIME && policy_restarts(rec, rec.state.exit_code)
}

/// AutoRemove: the container leaves the store (its name is free, `wait?condition=removed`
/// answers) at once; then its rootfs (mounted at `root`) is detached, and that, its rw layer
/// and folders go in the background.
async fn remove_detached(
    ctx: &Ctx,
    c: &Arc<Container>,
    root: &std::path::Path,
) -> Result<(), crate::error::ServiceError> {
    let anon = crate::volumes::mounts::anonymous_volumes(&ctx.volumes, c);
    forget(ctx, c);
    let record = ctx.containers.dir(&c.id);
    let detached = super::teardown::detach_blocking(root.to_path_buf()).await;
    super::teardown::purge(ctx, c, detached, record);
    remove_volumes(ctx, anon);
    Ok(())
}

/// Removes a stopped container; with `volumes` also its anonymous volumes no other
/// container uses (`docker rm -v`, `--rm`).
pub async fn remove_with_volumes(
    ctx: &Ctx,
    c: &Arc<Container>,
    volumes: bool,
) -> Result<(), crate::error::ServiceError> {
    let anon = if volumes {
        crate::volumes::mounts::anonymous_volumes(&ctx.volumes, c)
    } else {
        Vec::new()
    };
    remove_container(ctx, c).await?;
    remove_volumes(ctx, anon);
    Ok(())
}

/// Removes the anonymous volumes `anon` of a removed container that no other container uses.
fn remove_volumes(ctx: &Ctx, anon: Vec<String>) {
    for name in anon {
        if crate::volumes::mounts::users(&ctx.containers, &name).is_empty()
            && ctx.volumes.remove(&name, &[]).is_ok()
        {
            let mut a = BTreeMap::new();
            a.insert("driver".to_string(), "local".to_string());
            ctx.events.publish("volume", "destroy", &name, a);
        }
    }
}

async fn remove_container(ctx: &Ctx, c: &Arc<Container>) -> Result<(), crate::error::ServiceError> {
    super::prestart::cancel(ctx, c).await;
    // Its processes and cgroups are gone when `rm` answers (the monitor's clean-up); its
    // files follow in the background.
    c.monitor_gone().await;
    let record = super::teardown::bury(ctx, &c.id).map_err(|e| {
        crate::error::ServiceError::internal(format!("removing container {}: {e}", c.id))
    })?;
    let detached = super::teardown::take_detached(c);
    forget(ctx, c);
    super::teardown::purge(ctx, c, detached, record);
    Ok(())
}

/// The container leaves the store: its name is free, `destroy` is announced and
/// `wait?condition=removed` answers.
fn forget(ctx: &Ctx, c: &Arc<Container>) {
    ctx.containers.forget(&c.id);
    ctx.events.publish("container", "destroy", &c.id, attrs(c));
    c.events.send_modify(|l| {
        l.removed = true;
        l.exiting = false;
    });
}

/// After a daemon start: re-attach to live monitors, record exits that happened meanwhile,
/// restart containers whose policy says so (stopped ones too, as dockerd: `always` even
/// after a manual stop, `unless-stopped` unless stopped by hand, `on-failure` after a
/// failure within its retries).
pub async fn restore(ctx: &Ctx) {
    super::teardown::purge_buried(ctx);
    let mut live = Vec::new();
    for c in ctx.containers.all() {
        if c.view(|r| r.state.restarting) {
            // berthd stopped during a restart policy's back-off: exited, as it was.
            c.update(|r| r.state.cancel_restart());
            let _ = ctx.containers.save(&c);
        }
        if !c.running() {
            if c.view(|r| auto_remove(r) && r.state.status() == "exited") {
                // Exited, but berthd stopped before removing it (see `teardown`).
                let _ = remove_with_volumes(ctx, &c, true).await;
                continue;
            }
            super::prestart::orphan(ctx, &c).await;
            let _ = super::start::prepare_dirs(ctx, &c.id);
            if c.view(starts_with_daemon) {
                let (ctx, c) = (ctx.clone(), c.clone());
                tokio::spawn(async move {
                    // Link targets started the same way come first, as with dockerd.
                    super::links::await_targets(&ctx, &c).await;
                    if let Err(e) = super::start::start(&ctx, &c).await {
                        tracing::warn!("starting {} (restart policy): {}", c.id, e.to_string());
                    }
                });
            }
            continue;
        }
        // The running ones all at once: a thousand monitors answer in parallel.
        live.push(tokio::spawn(reattach(ctx.clone(), c)));
    }
    let n = live.len();
    for t in live {
        let _ = t.await;
    }
    if n > 0 {
        tracing::info!("{n} container(s) found running at start-up");
    }
}

/// A container recorded running when berthd starts: followed again if its monitor answers
/// (one connection both tells that and waits for the exit), else its exit is recorded.
async fn reattach(ctx: Ctx, c: Arc<Container>) {
    let sock = ctx.containers.monitor_sock(&c.id);
    if let Some(waiting) = wait_request(&sock).await {
        tracing::debug!("re-attached to running container {}", c.id);
        c.events.send_modify(|l| l.running = true);
        watch_with(ctx.clone(), c.clone(), Some(waiting));
        super::health::resume(&ctx, &c);
    } else {
        let sdir = ctx.containers.state_dir(&c.id);
        let info =
            monitor_client::exit_record(&sdir).unwrap_or_else(|| ExitRecord::vanished(137, ""));
        tracing::info!("container {} exited while the daemon was down", c.id);
        on_exit(&ctx, &c, &info).await;
    }
}
