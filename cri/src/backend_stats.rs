//! What the CRI's stats, resource-update and log-reopen calls need from the engine: a
//! container's or a pod's usage read at one instant (cumulative counters only — rates such as
//! `usage_nano_cores` are derived here from two samples), new Linux resources for a container,
//! and the reopening of its CRI log. Plain records, no gRPC types, like [`crate::backend`].

use crate::backend::FsUsage;
use crate::error::CriResult;
use std::future::Future;

/// Memory figures of a cgroup, bytes (page faults: counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryFigures {
    /// Usage less the inactive file cache (what kubelet evicts on).
    pub working_set: u64,
    /// Everything charged, cache included.
    pub usage: u64,
    /// Anonymous memory and swap cache.
    pub rss: u64,
    /// Minor and major page faults.
    pub page_faults: u64,
    /// Major page faults.
    pub major_page_faults: u64,
    /// The limit less the working set; none without a limit.
    pub available: Option<u64>,
}

/// A running container's (or a pod's) cgroup figures at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupFigures {
    /// When they were read, ns since the epoch.
    pub timestamp: i64,
    /// CPU time used since the cgroup was made, ns (all cores).
    pub cpu_ns: u64,
    /// Memory.
    pub memory: MemoryFigures,
    /// Processes (tasks) in it.
    pub processes: u64,
}

/// A container's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    /// Its cgroup's figures; none when it does not run.
    pub cgroup: Option<CgroupFigures>,
    /// Its writable layer; none when the storage driver has no separate one.
    pub writable_layer: Option<FsUsage>,
}

/// One network interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceFigures {
    /// Its name (`eth0`).
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

/// A pod's usage: its containers' cgroups added up, and its network namespace's interfaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsage {
    /// The sum of its running containers' figures; none when none runs.
    pub cgroup: Option<CgroupFigures>,
    /// Its interfaces but loopback, the default one (`eth0`, else the first) first; empty
    /// for a pod on the host's network.
    pub interfaces: Vec<InterfaceFigures>,
    /// When the interfaces were read, ns since the epoch.
    pub network_timestamp: i64,
}

/// Linux resources of a container, as `CreateContainer` and `UpdateContainerResources` give
/// them (0 or empty: not specified).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CFS period, µs.
    pub cpu_period: i64,
    /// CFS quota, µs.
    pub cpu_quota: i64,
    /// CPU shares.
    pub cpu_shares: i64,
    /// Memory limit, bytes.
    pub memory_limit: i64,
    /// Memory + swap limit, bytes.
    pub memory_swap_limit: i64,
    /// CPUs allowed (`0-1`).
    pub cpuset_cpus: String,
    /// Memory nodes allowed.
    pub cpuset_mems: String,
    /// OOM score adjustment.
    pub oom_score_adj: i64,
    /// Pids limit (from the unified map's `pids.max`; none: not specified, -1: `max`).
    pub pids_limit: Option<i64>,
}

/// The engine's side of stats, resource updates and log reopening.
pub trait ResourceBackend: Send + Sync + 'static {
    /// The usage of the container `id` (an ID it answered to `container`).
    fn container_usage(&self, id: &str) -> impl Future<Output = CriResult<ContainerUsage>> + Send;
    /// The usage of the pod `id`.
    fn pod_usage(&self, id: &str) -> impl Future<Output = CriResult<PodUsage>> + Send;
    /// Sets new resources on a container (running: at once, else at its next start).
    fn update_resources(
        &self,
        id: &str,
        r: Resources,
    ) -> impl Future<Output = CriResult<()>> + Send;
    /// Has the running container's monitor reopen its CRI log file at its path (after
    /// kubelet moved it away to rotate it); FailedPrecondition when it does not run.
    fn reopen_log(&self, id: &str) -> impl Future<Output = CriResult<()>> + Send;
}
