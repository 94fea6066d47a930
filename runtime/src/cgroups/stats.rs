//! Reading a cgroup's resource usage for `docker stats`: CPU (total, per CPU, user/system and
//! the host's total from `/proc/stat`), memory (usage, limit, peak, `memory.stat`), pids and
//! block I/O, from v1 or v2 files.

use super::{read_u64, Cgroup};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// One block I/O counter (`8:0 Read 4096`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major.
    pub major: u64,
    /// Device minor.
    pub minor: u64,
    /// `read` or `write` (lowercase, as Docker reports for v2 and v1 alike).
    pub op: String,
    /// Bytes.
    pub value: u64,
}

/// A cgroup's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time of the cgroup, ns.
    pub cpu_total_ns: u64,
    /// Per CPU (v1 only; empty on v2).
    pub cpu_percpu_ns: Vec<u64>,
    /// User-mode CPU time, ns.
    pub cpu_user_ns: u64,
    /// Kernel-mode CPU time, ns.
    pub cpu_system_ns: u64,
    /// The host's total CPU time (all CPUs, all states) from `/proc/stat`, ns.
    pub system_cpu_ns: u64,
    /// Online CPUs.
    pub online_cpus: u32,
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Memory limit, bytes (`u64::MAX`-ish when unlimited).
    pub memory_limit: u64,
    /// Peak usage, bytes (0 if unknown).
    pub memory_max_usage: u64,
    /// `memory.stat` as key → value.
    pub memory_stats: BTreeMap<String, u64>,
    /// Inactive file cache (subtracted from usage by `docker stats`).
    pub inactive_file: u64,
    /// Processes/threads in the cgroup.
    pub pids_current: u64,
    /// pids limit (0 = none).
    pub pids_limit: u64,
    /// Bytes read/written per device.
    pub io_service_bytes: Vec<BlkioEntry>,
}

impl Stats {
    /// A `memory.stat` figure under its v1 name (`total_*`, the hierarchy's) or its v2 one.
    fn memory_stat(&self, v1: &str, v2: &str) -> u64 {
        self.memory_stats
            .get(v1)
            .or_else(|| self.memory_stats.get(v2))
            .copied()
            .unwrap_or(0)
    }

    /// Usage less the inactive file cache: the working set kubelet and cAdvisor report.
    pub fn working_set(&self) -> u64 {
        self.memory_usage.saturating_sub(self.inactive_file)
    }

    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub fn rss(&self) -> u64 {
        self.memory_stat("total_rss", "anon")
    }

    /// Page faults, minor and major (v1 `total_pgfault`, v2 `pgfault`).
    pub fn page_faults(&self) -> u64 {
        self.memory_stat("total_pgfault", "pgfault")
    }

    /// Major page faults (v1 `total_pgmajfault`, v2 `pgmajfault`).
    pub fn major_page_faults(&self) -> u64 {
        self.memory_stat("total_pgmajfault", "pgmajfault")
    }

    /// The memory limit when one is set (v1 shows none as a number near 2^63, v2 as `max`).
    pub fn memory_limit_set(&self) -> Option<u64> {
        Some(self.memory_limit).filter(|l| *l > 0 && *l < 1 << 62)
    }
}

fn kv_file(p: &Path) -> BTreeMap<String, u64> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn limit(p: &Path) -> u64 {
    match fs::read_to_string(p) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf with a valid name.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// The host's CPU time (first line of `/proc/stat`), ns, and the number of CPUs listed.
pub fn system_cpu() -> (u64, u32) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count() as u32;
    (ticks * (1_000_000_000 / clock_ticks()), cpus)
}

fn dev(s: &str) -> (u64, u64) {
    let (a, b) = s.split_once(':').unwrap_or(("0", "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// Reads the figures of `cg`.
pub(crate) fn read(cg: &Cgroup) -> Stats {
    let (system_cpu_ns, online_cpus) = system_cpu();
    let mut s = Stats {
        system_cpu_ns,
        online_cpus,
        ..Default::default()
    };
    if cg.is_v2() {
        let Some(d) = cg.controller_dir("") else {
            return s;
        };
        let cpu = kv_file(&d.join("cpu.stat"));
        s.cpu_total_ns = cpu.get("usage_usec").copied().unwrap_or(0) * 1000;
        s.cpu_user_ns = cpu.get("user_usec").copied().unwrap_or(0) * 1000;
        s.cpu_system_ns = cpu.get("system_usec").copied().unwrap_or(0) * 1000;
        s.memory_usage = read_u64(&d.join("memory.current"));
        s.memory_limit = limit(&d.join("memory.max"));
        s.memory_max_usage = read_u64(&d.join("memory.peak"));
        s.memory_stats = kv_file(&d.join("memory.stat"));
        s.inactive_file = s.memory_stats.get("inactive_file").copied().unwrap_or(0);
        s.pids_current = read_u64(&d.join("pids.current"));
        s.pids_limit = match limit(&d.join("pids.max")) {
            u64::MAX => 0,
            n => n,
        };
        for line in fs::read_to_string(d.join("io.stat"))
            .unwrap_or_default()
            .lines()
        {
            let mut f = line.split_whitespace();
            let (major, minor) = dev(f.next().unwrap_or(""));
            for kv in f {
                let (op, key) = match kv.split_once('=') {
                    Some(("rbytes", v)) => ("read", v),
                    Some(("wbytes", v)) => ("write", v),
                    _ => continue,
                };
                s.io_service_bytes.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value: key.parse().unwrap_or(0),
                });
            }
        }
        return s;
    }
    let ns_per_tick = 1_000_000_000 / clock_ticks();
    if let Some(c) = cg.controller_dir("cpuacct") {
        s.cpu_total_ns = read_u64(&c.join("cpuacct.usage"));
        s.cpu_percpu_ns = fs::read_to_string(c.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let st = kv_file(&c.join("cpuacct.stat"));
        s.cpu_user_ns = st.get("user").copied().unwrap_or(0) * ns_per_tick;
        s.cpu_system_ns = st.get("system").copied().unwrap_or(0) * ns_per_tick;
    }
    if let Some(m) = cg.controller_dir("memory") {
        s.memory_usage = read_u64(&m.join("memory.usage_in_bytes"));
        s.memory_limit = read_u64(&m.join("memory.limit_in_bytes"));
        s.memory_max_usage = read_u64(&m.join("memory.max_usage_in_bytes"));
        s.memory_stats = kv_file(&m.join("memory.stat"));
        s.inactive_file = s
            .memory_stats
            .get("total_inactive_file")
            .copied()
            .unwrap_or(0);
    }
    if let Some(p) = cg.controller_dir("pids") {
        s.pids_current = read_u64(&p.join("pids.current"));
        s.pids_limit = match limit(&p.join("pids.max")) {
            u64::MAX => 0,
            n => n,
        };
    }
    if let Some(b) = cg.controller_dir("blkio") {
        for line in fs::read_to_string(b.join("blkio.throttle.io_service_bytes"))
            .unwrap_or_default()
            .lines()
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 3 && (f[1] == "Read" || f[1] == "Write") {
                let (major, minor) = dev(f[0]);
                s.io_service_bytes.push(BlkioEntry {
                    major,
                    minor,
                    op: f[1].to_ascii_lowercase(),
                    value: f[2].parse().unwrap_or(0),
                });
            }
        }
    }
    s
}
