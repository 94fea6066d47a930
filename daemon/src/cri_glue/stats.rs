//! The CRI's stats, resource updates and log reopening over berthd's own parts: a container's
//! figures are its cgroup's (`berth_runtime::cgroups`, v1 or v2, the same reading as
//! `docker stats`) and its writable layer's (a bounded walk of the storage driver's upper
//! folder); a pod's are its running containers' added up, and the interfaces of its network
//! namespace (read by a thread that joins it). Resources go through the daemon's update
//! service (`docker update`), the log reopening through the container's monitor.

use super::{blocking, cri_error, Engine};
use crate::containers::{monitor_client, Container};
use berth_api::types::container::HostConfig;
use berth_cri::backend::FsUsage;
use berth_cri::backend_stats::{
    CgroupFigures, ContainerUsage, InterfaceFigures, MemoryFigures, PodUsage, ResourceBackend,
    Resources,
};
use berth_cri::{CriError, CriResult};
use berth_monitor_proto::{Command, Reply};
use berth_runtime::cgroups::Stats;

/// The most entries a writable layer's walk counts (kubelet asks every few seconds; a layer
/// holding more is reported with what was counted).
const MAX_LAYER_ENTRIES: u64 = 100_000;

/// A cgroup's figures in the CRI's terms, read at `timestamp`.
fn figures(s: &Stats, timestamp: i64) -> CgroupFigures {
    let working_set = s.working_set();
    CgroupFigures {
        timestamp,
        cpu_ns: s.cpu_total_ns,
        memory: MemoryFigures {
            working_set,
            usage: s.memory_usage,
            rss: s.rss(),
            page_faults: s.page_faults(),
            major_page_faults: s.major_page_faults(),
            available: s.memory_limit_set().map(|l| l.saturating_sub(working_set)),
        },
        processes: s.pids_current,
    }
}

/// Adds `b`'s figures to `a`'s (a pod's containers).
fn add(a: &mut CgroupFigures, b: &CgroupFigures) {
    a.timestamp = a.timestamp.max(b.timestamp);
    a.cpu_ns += b.cpu_ns;
    a.processes += b.processes;
    let (m, n) = (&mut a.memory, &b.memory);
    m.working_set += n.working_set;
    m.usage += n.usage;
    m.rss += n.rss;
    m.page_faults += n.page_faults;
    m.major_page_faults += n.major_page_faults;
    m.available = None;
}

/// The running container's cgroup figures (none when it does not run).
fn cgroup_figures(c: &Container) -> Option<CgroupFigures> {
    if !c.running() {
        return None;
    }
    let f = figures(
        &crate::containers::cgroup(c).stats(),
        berth_cri::now_nanos(),
    );
    // The cgroup went away with an exit meanwhile.
    c.running().then_some(f)
}

/// The container's writable layer: its upper folder, walked through descriptors, at most
/// [`MAX_LAYER_ENTRIES`] entries.
fn writable_layer(ctx: &crate::state::Ctx, id: &str) -> Option<FsUsage> {
    let dir = ctx.storage.diff_dir(id).ok()??;
    let (used_bytes, inodes_used, _complete) =
        berth_archive::diff::tree_usage_within(&dir, MAX_LAYER_ENTRIES);
    Some(FsUsage {
        mountpoint: super::images::storage_dir(ctx),
        used_bytes,
        inodes_used,
    })
}

/// The interfaces of the network namespace pinned at `ns`, the default one first.
fn interfaces(ns: &std::path::Path) -> Vec<InterfaceFigures> {
    let Ok(f) = std::fs::File::open(ns) else {
        return Vec::new();
    };
    let text =
        berth_core::netns::run_in(&f, || std::fs::read_to_string("/proc/thread-self/net/dev"))
            .unwrap_or_default();
    let mut all: Vec<InterfaceFigures> = berth_core::netns::dev_counters(&text)
        .into_iter()
        .map(|d| InterfaceFigures {
            name: d.name,
            rx_bytes: d.rx_bytes,
            rx_errors: d.rx_errors,
            tx_bytes: d.tx_bytes,
            tx_errors: d.tx_errors,
        })
        .collect();
    if let Some(i) = all.iter().position(|i| i.name == "eth0") {
        all[..=i].rotate_right(1);
    }
    all
}

/// The HostConfig a `docker update` of `r` carries (zero: unchanged). Without a swap limit the
/// swap limit is the memory limit — no swap — as containerd sets it.
fn update_body(r: &Resources) -> CriResult<HostConfig> {
    let swap = match (r.memory_limit, r.memory_swap_limit) {
        (m, 0) if m > 0 => m,
        (_, s) => s,
    };
    Ok(HostConfig {
        memory: r.memory_limit,
        memory_swap: swap,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        pids_limit: r.pids_limit,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        ..Default::default()
    })
}

/// The Docker create request's HostConfig members for `r` (set into `hc`).
pub(super) fn create_resources(r: &Resources, hc: &mut serde_json::Value) -> CriResult<()> {
    let u = update_body(r)?;
    hc["Memory"] = u.memory.into();
    hc["MemorySwap"] = u.memory_swap.into();
    hc["CpuPeriod"] = u.cpu_period.into();
    hc["CpuQuota"] = u.cpu_quota.into();
    hc["CpuShares"] = u.cpu_shares.into();
    hc["CpusetCpus"] = u.cpuset_cpus.into();
    hc["CpusetMems"] = u.cpuset_mems.into();
    hc["OomScoreAdj"] = r.oom_score_adj.into();
    if let Some(p) = r.pids_limit {
        hc["PidsLimit"] = p.into();
    }
    Ok(())
}

impl ResourceBackend for Engine {
    async fn container_usage(&self, id: &str) -> CriResult<ContainerUsage> {
        let c = self.pod_container(id)?;
        let ctx = self.ctx.clone();
        blocking(move || {
            Ok(ContainerUsage {
                cgroup: cgroup_figures(&c),
                writable_layer: writable_layer(&ctx, &c.id),
            })
        })
        .await
    }

    async fn pod_usage(&self, id: &str) -> CriResult<PodUsage> {
        let pod = self
            .pods
            .find(id)?
            .ok_or_else(|| CriError::NotFound(format!("pod sandbox {id} not found")))?;
        let containers = self.pod_containers(&pod.id);
        let net = (pod.ready && pod.own().net)
            .then(|| super::pod_ns::path(&self.pods.run_dir(&pod.id), "net"));
        blocking(move || {
            let mut total: Option<CgroupFigures> = None;
            for f in containers.iter().filter_map(|c| cgroup_figures(c)) {
                match total.as_mut() {
                    Some(t) => add(t, &f),
                    None => total = Some(f),
                }
            }
            let network_timestamp = berth_cri::now_nanos();
            Ok(PodUsage {
                cgroup: total,
                interfaces: net.as_deref().map(interfaces).unwrap_or_default(),
                network_timestamp,
            })
        })
        .await
    }

    async fn update_resources(&self, id: &str, r: Resources) -> CriResult<()> {
        let c = self.pod_container(id)?;
        let u = update_body(&r)?;
        crate::containers::update::update(&self.ctx, &c, &u)
            .await
            .map_err(cri_error)
    }

    async fn reopen_log(&self, id: &str) -> CriResult<()> {
        let c = self.pod_container(id)?;
        let not_running =
            || CriError::FailedPrecondition(format!("container {} is not running", c.id));
        if !c.running() {
            return Err(not_running());
        }
        let sock = self.ctx.containers.monitor_sock(&c.id);
        match monitor_client::call(&sock, Command::Reopen).await {
            Ok(Reply::Failure(f)) if c.running() => Err(CriError::Internal(f.error)),
            Ok(Reply::Failure(_)) | Err(_) => Err(not_running()),
            Ok(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_as_docker_update_and_create() {
        let r = Resources {
            memory_limit: 64 << 20,
            cpu_quota: 20_000,
            cpu_period: 100_000,
            pids_limit: Some(-1),
            oom_score_adj: 500,
            ..Default::default()
        };
        let u = update_body(&r).expect("update");
        assert_eq!((u.memory, u.memory_swap), (64 << 20, 64 << 20));
        assert_eq!((u.cpu_quota, u.pids_limit), (20_000, Some(-1)));
        let mut hc = serde_json::json!({});
        create_resources(&r, &mut hc).expect("create");
        assert_eq!(hc["OomScoreAdj"], 500);
        assert_eq!(hc["PidsLimit"], -1);
        let cpuset = Resources {
            cpuset_cpus: "0".into(),
            ..Default::default()
        };
        assert_eq!(update_body(&cpuset).expect("cpuset").cpuset_cpus, "0");
    }

    #[test]
    fn pod_figures_add_up() {
        let mut a = CgroupFigures {
            timestamp: 1,
            cpu_ns: 10,
            processes: 1,
            memory: MemoryFigures {
                usage: 100,
                available: Some(5),
                ..Default::default()
            },
        };
        let b = CgroupFigures {
            timestamp: 2,
            cpu_ns: 5,
            processes: 2,
            ..Default::default()
        };
        add(&mut a, &b);
        assert_eq!((a.timestamp, a.cpu_ns, a.processes), (2, 15, 3));
        assert_eq!((a.memory.usage, a.memory.available), (100, None));
    }
}
