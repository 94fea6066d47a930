//! The stats calls of the `RuntimeService` — `ContainerStats`, `ListContainerStats`,
//! `PodSandboxStats`, `ListPodSandboxStats` — over a [`ResourceBackend`]'s cumulative figures,
//! filtered by ID, pod and labels; and the CRI's Linux resources read into [`Resources`] for
//! `CreateContainer` and `UpdateContainerResources`.
//!
//! `usage_nano_cores` is a rate: as containerd does, each answer remembers the CPU time it
//! read for the container or pod, and the next answer divides the CPU time used since by the
//! time elapsed (the first answer has none).

use crate::backend::{ContainerBackend, ContainerInfo, FsUsage, PodBackend, PodInfo};
use crate::backend_stats::{
    CgroupFigures, ContainerUsage, InterfaceFigures, PodUsage, ResourceBackend, Resources,
};
use crate::error::{CriError, CriResult};
use crate::pods::selected;
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::sync::Mutex;

/// The most samples kept (one per container or pod); past it the oldest go.
const MAX_SAMPLES: usize = 4096;

/// The last CPU reading of each container and pod, for `usage_nano_cores`.
#[derive(Default)]
pub struct Samples {
    last: Mutex<HashMap<String, (i64, u64)>>,
}

impl Samples {
    /// Records `(timestamp, cpu_ns)` for `id` and answers the rate since the previous
    /// reading, core-ns per second (none for the first, or when time did not move on).
    pub fn rate(&self, id: &str, timestamp: i64, cpu_ns: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let prev = last.insert(id.to_string(), (timestamp, cpu_ns));
        if last.len() > MAX_SAMPLES {
            if let Some(oldest) = last.iter().min_by_key(|(_, v)| v.0).map(|(k, _)| k.clone()) {
                last.remove(&oldest);
            }
        }
        let (t0, c0) = prev?;
        let dt = u64::try_from(timestamp.checked_sub(t0)?)
            .ok()
            .filter(|d| *d > 0)?;
        let used = cpu_ns.checked_sub(c0)?;
        Some((u128::from(used) * 1_000_000_000 / u128::from(dt)).min(u128::from(u64::MAX)) as u64)
    }
}

fn value(v: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value: v })
}

fn hash(m: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// CPU, memory and process figures in the CRI's shape.
fn figures(
    s: &Samples,
    id: &str,
    f: &CgroupFigures,
) -> (cri::CpuUsage, cri::MemoryUsage, cri::ProcessUsage) {
    let m = &f.memory;
    (
        cri::CpuUsage {
            timestamp: f.timestamp,
            usage_core_nano_seconds: value(f.cpu_ns),
            usage_nano_cores: s.rate(id, f.timestamp, f.cpu_ns).and_then(value),
        },
        cri::MemoryUsage {
            timestamp: f.timestamp,
            working_set_bytes: value(m.working_set),
            available_bytes: m.available.and_then(value),
            usage_bytes: value(m.usage),
            rss_bytes: value(m.rss),
            page_faults: value(m.page_faults),
            major_page_faults: value(m.major_page_faults),
        },
        cri::ProcessUsage {
            timestamp: f.timestamp,
            process_count: value(f.processes),
        },
    )
}

fn writable_layer(u: &FsUsage) -> cri::FilesystemUsage {
    cri::FilesystemUsage {
        timestamp: crate::now_nanos(),
        fs_id: Some(cri::FilesystemIdentifier {
            mountpoint: u.mountpoint.clone(),
        }),
        used_bytes: value(u.used_bytes),
        inodes_used: value(u.inodes_used),
    }
}

/// One container's stats.
fn container_stats(s: &Samples, c: &ContainerInfo, u: &ContainerUsage) -> cri::ContainerStats {
    let (cpu, memory) = match &u.cgroup {
        Some(f) => {
            let (cpu, mem, _) = figures(s, &c.id, f);
            (Some(cpu), Some(mem))
        }
        None => (None, None),
    };
    cri::ContainerStats {
        attributes: Some(cri::ContainerAttributes {
            id: c.id.clone(),
            metadata: Some(crate::containers::metadata(c)),
            labels: hash(&c.spec.labels),
            annotations: hash(&c.spec.annotations),
        }),
        cpu,
        memory,
        writable_layer: u.writable_layer.as_ref().map(writable_layer),
        swap: None,
    }
}

/// `ContainerStats`: NotFound for an unknown container.
pub async fn container<B: ContainerBackend + ResourceBackend>(
    b: &B,
    s: &Samples,
    id: &str,
) -> CriResult<cri::ContainerStats> {
    let c = b
        .container(id)
        .await?
        .ok_or_else(|| CriError::NotFound(format!("container {id} not found")))?;
    let u = b.container_usage(&c.id).await?;
    Ok(container_stats(s, &c, &u))
}

/// The stats of every container `keep` selects.
async fn containers_where<B: ContainerBackend + ResourceBackend>(
    b: &B,
    s: &Samples,
    keep: impl Fn(&ContainerInfo) -> bool,
) -> CriResult<Vec<cri::ContainerStats>> {
    let mut out = Vec::new();
    for c in b.list_containers().await?.iter().filter(|c| keep(c)) {
        match b.container_usage(&c.id).await {
            Ok(u) => out.push(container_stats(s, c, &u)),
            // Removed meanwhile.
            Err(CriError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// `ListContainerStats`, filtered by ID, pod (each a prefix) and labels.
pub async fn list_containers<B: ContainerBackend + ResourceBackend>(
    b: &B,
    s: &Samples,
    filter: Option<cri::ContainerStatsFilter>,
) -> CriResult<Vec<cri::ContainerStats>> {
    let f = filter.unwrap_or_default();
    containers_where(b, s, |c| {
        c.id.starts_with(&f.id)
            && c.spec.pod_id.starts_with(&f.pod_sandbox_id)
            && selected(&c.spec.labels, &f.label_selector)
    })
    .await
}

fn interface(i: &InterfaceFigures) -> cri::NetworkInterfaceUsage {
    cri::NetworkInterfaceUsage {
        name: i.name.clone(),
        rx_bytes: value(i.rx_bytes),
        rx_errors: value(i.rx_errors),
        tx_bytes: value(i.tx_bytes),
        tx_errors: value(i.tx_errors),
    }
}

fn network(u: &PodUsage) -> Option<cri::NetworkUsage> {
    let (first, rest) = u.interfaces.split_first()?;
    Some(cri::NetworkUsage {
        timestamp: u.network_timestamp,
        default_interface: Some(interface(first)),
        interfaces: rest.iter().map(interface).collect(),
    })
}

/// One pod's stats, its containers' included.
async fn pod_stats<B: ContainerBackend + ResourceBackend>(
    b: &B,
    s: &Samples,
    p: &PodInfo,
) -> CriResult<cri::PodSandboxStats> {
    let u = b.pod_usage(&p.id).await?;
    let containers = containers_where(b, s, |c| c.spec.pod_id == p.id).await?;
    let (cpu, memory, process) = match &u.cgroup {
        Some(f) => {
            let (c, m, pr) = figures(s, &p.id, f);
            (Some(c), Some(m), Some(pr))
        }
        None => (None, None, None),
    };
    Ok(cri::PodSandboxStats {
        attributes: Some(cri::PodSandboxAttributes {
            id: p.id.clone(),
            metadata: Some(crate::pods::metadata(&p.spec)),
            labels: hash(&p.spec.labels),
            annotations: hash(&p.spec.annotations),
        }),
        linux: Some(cri::LinuxPodSandboxStats {
            cpu,
            memory,
            network: network(&u),
            process,
            containers,
        }),
        windows: None,
    })
}

/// `PodSandboxStats`: NotFound for an unknown pod.
pub async fn pod<B: PodBackend + ContainerBackend + ResourceBackend>(
    b: &B,
    s: &Samples,
    id: &str,
) -> CriResult<cri::PodSandboxStats> {
    let p = b
        .pod(id)
        .await?
        .ok_or_else(|| CriError::NotFound(format!("pod sandbox {id} not found")))?;
    pod_stats(b, s, &p).await
}

/// `ListPodSandboxStats`, filtered by ID (a prefix) and labels.
pub async fn list_pods<B: PodBackend + ContainerBackend + ResourceBackend>(
    b: &B,
    s: &Samples,
    filter: Option<cri::PodSandboxStatsFilter>,
) -> CriResult<Vec<cri::PodSandboxStats>> {
    let f = filter.unwrap_or_default();
    let mut out = Vec::new();
    for p in b.list_pods().await? {
        if !p.id.starts_with(&f.id) || !selected(&p.spec.labels, &f.label_selector) {
            continue;
        }
        match pod_stats(b, s, &p).await {
            Ok(st) => out.push(st),
            Err(CriError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The resources of the CRI's Linux resources (none given: none specified); the unified
/// map's `pids.max` (a number or `max`) is the pids limit, other unified keys are refused.
pub fn resources(r: Option<&cri::LinuxContainerResources>) -> CriResult<Resources> {
    let Some(r) = r else {
        return Ok(Resources::default());
    };
    let mut pids_limit = None;
    for (k, v) in &r.unified {
        match k.as_str() {
            "pids.max" if v.trim() == "max" => pids_limit = Some(-1),
            "pids.max" => {
                pids_limit = Some(v.trim().parse::<i64>().map_err(|_| {
                    CriError::InvalidArgument(format!("unified pids.max {v:?} is not a number"))
                })?)
            }
            other => {
                return Err(CriError::InvalidArgument(format!(
                    "unified resource {other:?} is not supported by berth (only pids.max)"
                )))
            }
        }
    }
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(CriError::InvalidArgument(format!(
            "oom_score_adj {} is not within -1000 and 1000",
            r.oom_score_adj
        )));
    }
    if !r.hugepage_limits.is_empty() {
        return Err(CriError::InvalidArgument(
            "hugepage limits are not supported by berth".into(),
        ));
    }
    Ok(Resources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        memory_limit: r.memory_limit_in_bytes,
        memory_swap_limit: r.memory_swap_limit_in_bytes,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        oom_score_adj: r.oom_score_adj,
        pids_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_cores_from_two_samples() {
        let s = Samples::default();
        assert_eq!(s.rate("a", 1_000_000_000, 500), None);
        // Half a core over two seconds.
        assert_eq!(s.rate("a", 3_000_000_000, 1_000_000_500), Some(500_000_000));
        // A counter that went back (a restarted container) gives none.
        assert_eq!(s.rate("a", 4_000_000_000, 10), None);
        assert_eq!(s.rate("b", 4_000_000_000, 10), None);
    }

    #[test]
    fn unified_pids_and_refusals() {
        let mut r = cri::LinuxContainerResources {
            cpu_quota: 50_000,
            memory_limit_in_bytes: 64 << 20,
            ..Default::default()
        };
        r.unified.insert("pids.max".into(), "max".into());
        let got = resources(Some(&r)).expect("resources");
        assert_eq!(
            (got.cpu_quota, got.memory_limit, got.pids_limit),
            (50_000, 64 << 20, Some(-1))
        );
        r.unified.insert("pids.max".into(), "42".into());
        assert_eq!(resources(Some(&r)).expect("r").pids_limit, Some(42));
        r.unified.insert("io.weight".into(), "100".into());
        assert!(resources(Some(&r)).is_err());
        assert_eq!(resources(None).expect("none"), Resources::default());
    }
}
