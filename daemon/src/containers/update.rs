//! Updating a container's resources (`docker update`): new memory, swap, CPU, cpuset and pids limits
//! and restart policy, merged into the container's HostConfig as Docker merges them (a zero
//! value leaves a field as it was), written to its cgroup at once when it runs, and saved.

use super::{exit, lock, prestart, validate, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::state::Ctx;
use berth_api::types::container::HostConfig;
use berth_runtime::cgroups::Limits;
use std::sync::Arc;

/// The CFS quota and period of a HostConfig: from `NanoCpus` when set, else `CpuQuota` and
/// `CpuPeriod` (default 100 ms).
pub fn cpu_quota_period(hc: &HostConfig) -> (i64, u64) {
    if hc.nano_cpus > 0 {
        return (hc.nano_cpus / 10_000, 100_000);
    }
    let period = u64::try_from(hc.cpu_period).ok().filter(|p| *p > 0);
    (hc.cpu_quota, period.unwrap_or(100_000))
}

/// The swap limit Docker records for `--memory` without `--memory-swap`: twice the memory.
fn effective_swap(hc: &HostConfig) -> i64 {
    let (mem, swap) = (hc.memory, hc.memory_swap);
    if swap == 0 && mem > 0 {
        mem * 2
    } else {
        swap
    }
}

/// Docker's refusals of an update against the container's current settings.
fn conflicts(cur: &HostConfig, u: &HostConfig) -> Option<&'static str> {
    if u.nano_cpus != 0 && (cur.cpu_quota != 0 || cur.cpu_period != 0) && u.cpu_quota == 0 {
        return Some("Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set");
    }
    if u.cpu_quota != 0 && cur.nano_cpus != 0 && u.nano_cpus == 0 {
        return Some(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
        );
    }
    if u.cpu_period != 0 && cur.nano_cpus != 0 && u.nano_cpus == 0 {
        return Some(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
        );
    }
    let swap = effective_swap(cur);
    if u.memory != 0 && swap > 0 && u.memory > swap && u.memory_swap == 0 {
        return Some("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
    }
    let policy = u.restart_policy.name.as_str();
    if !matches!(policy, "" | "no") && cur.auto_remove {
        return Some(
            "Restart policy cannot be updated because AutoRemove is enabled for the container",
        );
    }
    None
}

/// `cur` with the non-zero fields of `u` set.
fn merge(cur: &mut HostConfig, u: &HostConfig) {
    let old_swap = effective_swap(cur);
    for (slot, v) in [
        (&mut cur.memory, u.memory),
        (&mut cur.memory_swap, u.memory_swap),
        (&mut cur.nano_cpus, u.nano_cpus),
        (&mut cur.cpu_shares, u.cpu_shares),
        (&mut cur.cpu_quota, u.cpu_quota),
        (&mut cur.cpu_period, u.cpu_period),
    ] {
        if v != 0 {
            *slot = v;
        }
    }
    // Docker records the swap limit (twice the memory unless given) and keeps it when only the
    // memory changes.
    if u.memory != 0 && u.memory_swap == 0 && cur.memory_swap == 0 {
        cur.memory_swap = if old_swap > 0 { old_swap } else { u.memory * 2 };
    }
    if let Some(p) = u.pids_limit {
        cur.pids_limit = Some(p);
    }
    for (slot, v) in [
        (&mut cur.cpuset_cpus, &u.cpuset_cpus),
        (&mut cur.cpuset_mems, &u.cpuset_mems),
    ] {
        if !v.is_empty() {
            *slot = v.clone();
        }
    }
    if !u.restart_policy.name.is_empty() {
        cur.restart_policy = u.restart_policy.clone();
    }
}

/// The cgroup limits of a HostConfig, for a live update (fields not set stay as they are;
/// a pids limit of 0 or less lifts it).
fn limits(hc: &HostConfig, pids_changed: bool) -> Limits {
    let (cpu_quota, cpu_period) = cpu_quota_period(hc);
    let pids = hc.pids_limit.unwrap_or(0);
    Limits {
        memory: hc.memory,
        memory_swap: effective_swap(hc),
        cpu_quota,
        cpu_period,
        cpu_shares: u64::try_from(hc.cpu_shares).unwrap_or(0),
        pids: match (pids_changed, pids) {
            (true, p) if p <= 0 => -1,
            (_, p) => p.max(0),
        },
        cpuset_cpus: hc.cpuset_cpus.clone(),
        cpuset_mems: hc.cpuset_mems.clone(),
        devices: Vec::new(),
    }
}

fn apply_live(c: &Container, hc: &HostConfig, pids_changed: bool) -> ServiceResult<()> {
    let cg = super::cgroup(c);
    match cg.apply(&limits(hc, pids_changed)) {
        Ok(()) => Ok(()),
        // The monitor removes the cgroup once the init has exited, before berthd records the
        // exit: the container is stopping, and gets the new limits at its next start.
        Err(_) if cg.dirs().iter().any(|d| !d.exists()) => Ok(()),
        Err(e) => Err(ServiceError::internal(format!(
            "Cannot update container {}: {e}",
            c.id
        ))),
    }
}

/// Merges `u` into `c`'s HostConfig, applies it to its cgroups when it runs, and saves it.
pub async fn update(ctx: &Ctx, c: &Arc<Container>, u: &HostConfig) -> ServiceResult<()> {
    let _op = lock::op(c).await?;
    let mut hc = c.view(|r| r.host_config.clone());
    if let Some(msg) = conflicts(&hc, u) {
        return Err(ServiceError::conflict(format!(
            "Cannot update container {}: {msg}",
            c.id
        )));
    }
    merge(&mut hc, u);
    validate::check_host_config(&hc)?;
    if c.running() {
        let (hc2, c2) = (hc.clone(), c.clone());
        let pids_changed = u.pids_limit.is_some();
        let applied =
            tokio::task::spawn_blocking(move || apply_live(&c2, &hc2, pids_changed)).await?;
        // A container that exited meanwhile gets the new limits at its next start, as a
        // stopped one does.
        if applied.is_err() && c.running() {
            return applied;
        }
    } else {
        // A container prepared ahead of its start has its cgroups already: start afresh.
        prestart::cancel(ctx, c).await;
    }
    c.update(|r| r.host_config = hc);
    ctx.containers.save(c)?;
    ctx.events
        .publish("container", "update", &c.id, exit::attrs(c));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn hc(v: Value) -> HostConfig {
        serde_json::from_value(v).expect("host config")
    }

    #[test]
    fn merges_as_docker() {
        let mut cur = hc(json!({"Memory": 64 << 20, "MemorySwap": 0, "PidsLimit": 20}));
        assert_eq!(
            conflicts(&cur, &hc(json!({"Memory": 256 << 20}))),
            Some("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
        );
        let u = hc(json!({"Memory": 100 << 20, "NanoCpus": 500_000_000, "PidsLimit": 0}));
        assert_eq!(conflicts(&cur, &u), None);
        merge(&mut cur, &u);
        assert_eq!(cur.memory, 100 << 20);
        assert_eq!(cur.nano_cpus, 500_000_000);
        assert_eq!(cpu_quota_period(&cur), (50_000, 100_000));
        let l = limits(&cur, true);
        assert_eq!((l.memory_swap, l.pids), (128 << 20, -1));
        assert!(conflicts(&cur, &hc(json!({"CpuQuota": 1000}))).is_some());
    }
}
