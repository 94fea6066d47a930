//! cgroups v1 and v2 behind one type (cgroupfs driver): create a container's cgroup, apply
//! limits, add processes, freeze/thaw, read stats and the OOM-kill counter, remove.
//!
//! The hierarchy roots are parameters ([`Hierarchy`]), so the v2 code is tested against a
//! cgroup2-shaped folder tree as well as against the real mounts.

use crate::RuntimeError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

mod cpuset;
mod devices;
pub(crate) mod probe;
mod stats;
pub use stats::{BlkioEntry, Stats};

/// A spec annotation (`"true"`) by which berthd takes over the removal of a container's
/// memory cgroup folder (v1; v2: its one folder): the runtime's delete leaves it. Its removal
/// has the kernel walk every superblock's lists under the global cgroup lock (see
/// [`Cgroup::memory_dir`]); berthd does it when no container is starting.
pub const DEFER_MEMORY_ANNOTATION: &str = "io.berth.cgroup.defer-memory";

/// Where the cgroup filesystems are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v1: controller name → mount point.
    V1(BTreeMap<String, PathBuf>),
    /// cgroup v2: the unified mount point.
    V2(PathBuf),
}

const V1_CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuacct", "pids", "freezer", "blkio", "cpuset", "devices",
];

impl Hierarchy {
    /// Detects the host's layout: from `/proc/self/cgroup` where the hierarchies are where
    /// they usually are ([`probe`]), else from `/proc/self/mountinfo`.
    pub fn detect() -> Hierarchy {
        match probe::host() {
            Some(probe::Found::V2) => Hierarchy::V2(PathBuf::from("/sys/fs/cgroup")),
            Some(probe::Found::V1(hierarchies)) => {
                let mut v1 = BTreeMap::new();
                for (dir, controllers) in hierarchies {
                    for c in controllers
                        .split(',')
                        .filter(|c| V1_CONTROLLERS.contains(c))
                    {
                        v1.entry(c.to_string())
                            .or_insert_with(|| Path::new("/sys/fs/cgroup").join(&dir));
                    }
                }
                Hierarchy::V1(v1)
            }
            None => Self::from_mount_table(),
        }
    }

    /// The host's layout from `/proc/self/mountinfo`.
    pub fn from_mount_table() -> Hierarchy {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for line in info.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split_whitespace().nth(4).unwrap_or("");
            let mut r = right.split_whitespace();
            let fstype = r.next().unwrap_or("");
            let _src = r.next();
            let opts = r.next().unwrap_or("");
            if fstype == "cgroup2" && mount_point == "/sys/fs/cgroup" {
                v2 = Some(PathBuf::from(mount_point));
            } else if fstype == "cgroup" {
                for o in opts.split(',') {
                    if V1_CONTROLLERS.contains(&o) {
                        v1.entry(o.to_string())
                            .or_insert_with(|| PathBuf::from(mount_point));
                    }
                }
            }
        }
        match v2 {
            Some(p) if v1.is_empty() => Hierarchy::V2(p),
            _ => Hierarchy::V1(v1),
        }
    }
}

/// The cgroup path (under each hierarchy's root) of container `id` whose spec names none:
/// `berth/<id>` (berthd names `<parent>/<id>` in every spec it writes).
pub fn default_path(id: &str) -> String {
    format!("berth/{id}")
}

/// `"1"` or `"2"`, for `info`.
pub fn version() -> &'static str {
    match Hierarchy::detect() {
        Hierarchy::V2(_) => "2",
        Hierarchy::V1(_) => "1",
    }
}

/// Limits to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes; 0 = none.
    pub memory: i64,
    /// memory+swap bytes; 0 = none, -1 = unlimited.
    pub memory_swap: i64,
    /// CFS quota µs; 0 = none.
    pub cpu_quota: i64,
    /// CFS period µs.
    pub cpu_period: u64,
    /// Shares; 0 = default.
    pub cpu_shares: u64,
    /// Max pids; 0 = leave as is, negative = unlimited (`max`).
    pub pids: i64,
    /// CPUs allowed (`0-1,3`); empty = leave as is.
    pub cpuset_cpus: String,
    /// Memory nodes allowed; empty = leave as is.
    pub cpuset_mems: String,
    /// Device access rules in v1 `devices.allow`/`devices.deny` syntax, in order:
    /// `(allow, "c 1:3 rwm")`. Empty = leave the device controller alone.
    pub devices: Vec<(bool, String)>,
}

fn device_rule(d: &Value) -> (bool, String) {
    let num = |k: &str| {
        d[k].as_i64()
            .filter(|n| *n >= 0)
            .map(|n| n.to_string())
            .unwrap_or_else(|| "*".into())
    };
    let kind = d["type"].as_str().unwrap_or("a");
    let access = d["access"].as_str().unwrap_or("rwm");
    let rule = if kind == "a" {
        "a *:* rwm".to_string()
    } else {
        format!("{kind} {}:{} {access}", num("major"), num("minor"))
    };
    (d["allow"].as_bool().unwrap_or(false), rule)
}

impl Limits {
    /// Reads the limits of an OCI spec's `linux.resources` (JSON).
    pub fn from_resources(r: &Value) -> Limits {
        Limits {
            memory: r
                .pointer("/memory/limit")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            memory_swap: r
                .pointer("/memory/swap")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            cpu_quota: r.pointer("/cpu/quota").and_then(Value::as_i64).unwrap_or(0),
            cpu_period: r
                .pointer("/cpu/period")
                .and_then(Value::as_u64)
                .unwrap_or(100_000),
            cpu_shares: r
                .pointer("/cpu/shares")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            pids: r
                .pointer("/pids/limit")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            cpuset_cpus: r
                .pointer("/cpu/cpus")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            cpuset_mems: r
                .pointer("/cpu/mems")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            devices: r["devices"]
                .as_array()
                .map(|a| a.iter().map(device_rule).collect())
                .unwrap_or_default(),
        }
    }
}

/// One container's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    hierarchy: Hierarchy,
    path: String,
}

pub(crate) fn write(p: &Path, v: &str) -> Result<(), RuntimeError> {
    fs::write(p, v).map_err(RuntimeError::sys(format!(
        "writing {v:?} to {}",
        p.display()
    )))
}

/// Writes the cpuset of `l` (the files have the same names in v1 and v2).
fn cpuset(dir: &Path, l: &Limits) -> Result<(), RuntimeError> {
    for (file, set) in [
        ("cpuset.cpus", &l.cpuset_cpus),
        ("cpuset.mems", &l.cpuset_mems),
    ] {
        if !set.is_empty() {
            write(&dir.join(file), set)?;
        }
    }
    Ok(())
}

fn pids_max(n: i64) -> String {
    if n < 0 {
        "max".into()
    } else {
        n.to_string()
    }
}

fn read_i64(p: &Path) -> i64 {
    fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(i64::MAX)
}

pub(crate) fn read_u64(p: &Path) -> u64 {
    fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn keyed(p: &Path, key: &str) -> u64 {
    fs::read_to_string(p)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

impl Cgroup {
    /// The cgroup `path` (e.g. `berth/<id>`) in `hierarchy`.
    pub fn new(hierarchy: Hierarchy, path: &str) -> Cgroup {
        Cgroup {
            hierarchy,
            path: path.trim_matches('/').to_string(),
        }
    }

    /// Folders making up this cgroup (one per v1 controller, or the v2 folder); on v1 the
    /// cpuset one only when the cgroup has it (see `cpuset`).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut v = self.all_dirs();
        if let Some(cs) = self.cpuset_apart().filter(|cs| !cs.exists()) {
            v.retain(|d| *d != cs);
        }
        v
    }

    /// The folders a task of this cgroup goes into: [`Cgroup::dirs`], on v1 with the parent's
    /// cpuset folder when the cgroup has none of its own.
    pub fn task_dirs(&self) -> Vec<PathBuf> {
        let mut v = self.all_dirs();
        if let Some(cs) = self.cpuset_apart() {
            let joined = cpuset::joined(&cs);
            for d in v.iter_mut().filter(|d| **d == cs) {
                *d = joined.clone();
            }
        }
        v
    }

    /// The container's own v1 cpuset folder when the cpuset controller has a hierarchy of
    /// its own (not mounted with another controller), so the cgroup may go without it.
    fn cpuset_apart(&self) -> Option<PathBuf> {
        let Hierarchy::V1(m) = &self.hierarchy else {
            return None;
        };
        let root = m.get("cpuset")?;
        let shared = m.iter().any(|(k, r)| k != "cpuset" && r == root);
        (!shared).then(|| root.join(&self.path))
    }

    /// Every folder the cgroup may have, one per v1 hierarchy, or the v2 folder.
    fn all_dirs(&self) -> Vec<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V2(root) => vec![root.join(&self.path)],
            Hierarchy::V1(m) => {
                let mut v: Vec<PathBuf> = m.values().map(|r| r.join(&self.path)).collect();
                v.sort();
                v.dedup();
                v
            }
        }
    }

    /// [`Cgroup::dirs`] with the memory controller's last: its removal has the kernel move
    /// the cgroup's kernel-memory lists to the parent, a walk of every superblock's lists
    /// (so of every running container's mounts) under the global cgroup lock, which every
    /// folder removed after it waits behind.
    fn removal_order(&self) -> Vec<PathBuf> {
        let mut dirs = self.all_dirs();
        if let Some(m) = self.v1("memory") {
            dirs.sort_by_key(|d| *d == m);
        }
        dirs
    }

    fn v1(&self, ctrl: &str) -> Option<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V1(m) => m.get(ctrl).map(|r| r.join(&self.path)),
            Hierarchy::V2(_) => None,
        }
    }

    /// The mount point of the v1 hierarchy of `ctrl`.
    fn hierarchy_root(&self, ctrl: &str) -> Option<&Path> {
        match &self.hierarchy {
            Hierarchy::V1(m) => m.get(ctrl).map(PathBuf::as_path),
            Hierarchy::V2(_) => None,
        }
    }

    /// Creates the cgroup (and enables v2 controllers down the path).
    pub fn create(&self) -> Result<(), RuntimeError> {
        self.create_with(true)
    }

    /// Creates the cgroup; `own_cpuset` false: on v1 without a cpuset folder of its own, its
    /// tasks joining the parent's (made ready for them), unless the cpuset controller shares
    /// its hierarchy (see `cpuset`).
    pub fn create_with(&self, own_cpuset: bool) -> Result<(), RuntimeError> {
        if let Hierarchy::V2(root) = &self.hierarchy {
            let mut cur = root.clone();
            for part in self.path.split('/') {
                let avail = fs::read_to_string(cur.join("cgroup.controllers")).unwrap_or_default();
                let wanted: Vec<String> = ["memory", "cpu", "cpuset", "pids", "io"]
                    .iter()
                    .filter(|c| avail.split_whitespace().any(|a| a == **c))
                    .map(|c| format!("+{c}"))
                    .collect();
                if !wanted.is_empty() {
                    let _ = fs::write(cur.join("cgroup.subtree_control"), wanted.join(" "));
                }
                cur = cur.join(part);
                fs::create_dir_all(&cur).map_err(RuntimeError::sys(format!(
                    "creating cgroup {}",
                    cur.display()
                )))?;
            }
            return Ok(());
        }
        let skip = self.cpuset_apart().filter(|_| !own_cpuset);
        for d in self.all_dirs() {
            if skip.as_ref() == Some(&d) {
                continue;
            }
            fs::create_dir_all(&d).map_err(RuntimeError::sys(format!(
                "creating cgroup {}",
                d.display()
            )))?;
        }
        // cpuset needs its parents' cpus/mems copied down before tasks can join.
        if let (Some(cs), Some(root)) = (self.v1("cpuset"), self.hierarchy_root("cpuset")) {
            match skip.as_ref().and_then(|s| s.parent()) {
                Some(parent) => cpuset::prepare(root, parent, false)?,
                None => cpuset::prepare(root, &cs, true)?,
            }
        }
        Ok(())
    }

    /// Applies `l`.
    pub fn apply(&self, l: &Limits) -> Result<(), RuntimeError> {
        match &self.hierarchy {
            Hierarchy::V2(root) => {
                let d = root.join(&self.path);
                if l.memory > 0 {
                    write(&d.join("memory.max"), &l.memory.to_string())?;
                    if l.memory_swap == -1 {
                        let _ = fs::write(d.join("memory.swap.max"), "max");
                    } else if l.memory_swap > 0 {
                        let _ = fs::write(
                            d.join("memory.swap.max"),
                            (l.memory_swap - l.memory).max(0).to_string(),
                        );
                    }
                }
                if l.cpu_quota > 0 {
                    write(
                        &d.join("cpu.max"),
                        &format!("{} {}", l.cpu_quota, l.cpu_period),
                    )?;
                }
                if l.cpu_shares > 0 {
                    let weight = 1 + ((l.cpu_shares.max(2) - 2) * 9999) / 262_142;
                    write(&d.join("cpu.weight"), &weight.to_string())?;
                }
                if l.pids != 0 {
                    write(&d.join("pids.max"), &pids_max(l.pids))?;
                }
                cpuset(&d, l)?;
                if !l.devices.is_empty() {
                    devices::apply(&d, &l.devices).map_err(RuntimeError::sys(format!(
                        "attaching the device filter to {}",
                        d.display()
                    )))?;
                }
            }
            Hierarchy::V1(_) => {
                if let Some(m) = self.v1("memory") {
                    if l.memory > 0 {
                        // memory.limit_in_bytes may never exceed memsw: raise memsw first
                        // when growing (a live update), lower it last when shrinking.
                        let memsw = m.join("memory.memsw.limit_in_bytes");
                        let swap = memsw.exists() && l.memory_swap != 0;
                        let grow = swap && (l.memory_swap < 0 || l.memory_swap > read_i64(&memsw));
                        if grow {
                            let _ = fs::write(&memsw, l.memory_swap.to_string());
                        }
                        write(&m.join("memory.limit_in_bytes"), &l.memory.to_string())?;
                        if swap && !grow {
                            let _ = fs::write(&memsw, l.memory_swap.to_string());
                        }
                    }
                }
                if let Some(c) = self.v1("cpu") {
                    if l.cpu_quota > 0 {
                        write(&c.join("cpu.cfs_period_us"), &l.cpu_period.to_string())?;
                        write(&c.join("cpu.cfs_quota_us"), &l.cpu_quota.to_string())?;
                    }
                    if l.cpu_shares > 0 {
                        write(&c.join("cpu.shares"), &l.cpu_shares.to_string())?;
                    }
                }
                if let Some(c) = self.v1("cpuset") {
                    let asked = !l.cpuset_cpus.is_empty() || !l.cpuset_mems.is_empty();
                    if asked && !c.exists() {
                        if let Some(root) = self.hierarchy_root("cpuset") {
                            cpuset::own_later(root, &c, || self.pids())?;
                        }
                    }
                    if asked {
                        cpuset(&c, l)?;
                    }
                }
                if let Some(p) = self.v1("pids") {
                    if l.pids != 0 {
                        write(&p.join("pids.max"), &pids_max(l.pids))?;
                    }
                }
                if let Some(d) = self.v1("devices") {
                    for (allow, rule) in &l.devices {
                        let file = if *allow {
                            "devices.allow"
                        } else {
                            "devices.deny"
                        };
                        write(&d.join(file), rule)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup.
    pub fn add(&self, pid: i32) -> Result<(), RuntimeError> {
        for d in self.task_dirs() {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The PIDs in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let d = match &self.hierarchy {
            Hierarchy::V2(r) => r.join(&self.path),
            Hierarchy::V1(_) => self
                .v1("pids")
                .or_else(|| self.v1("memory"))
                .unwrap_or_default(),
        };
        fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Freezes (true) or thaws (false).
    pub fn freeze(&self, frozen: bool) -> Result<(), RuntimeError> {
        match &self.hierarchy {
            Hierarchy::V2(r) => {
                let d = r.join(&self.path);
                write(&d.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                // The kernel reports completion as `frozen 1`/`frozen 0` in cgroup.events.
                let want = if frozen { 1 } else { 0 };
                for _ in 0..1000 {
                    if !d.join("cgroup.events").exists()
                        || keyed(&d.join("cgroup.events"), "frozen ") == want
                    {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Ok(())
            }
            Hierarchy::V1(_) => {
                let f = self
                    .v1("freezer")
                    .ok_or_else(|| RuntimeError::Invalid("no freezer cgroup controller".into()))?;
                write(
                    &f.join("freezer.state"),
                    if frozen { "FROZEN" } else { "THAWED" },
                )?;
                for _ in 0..1000 {
                    let s = fs::read_to_string(f.join("freezer.state")).unwrap_or_default();
                    if s.trim() == if frozen { "FROZEN" } else { "THAWED" } {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Ok(())
            }
        }
    }

    /// How many processes the kernel OOM-killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        match &self.hierarchy {
            Hierarchy::V2(r) => keyed(&r.join(&self.path).join("memory.events"), "oom_kill "),
            Hierarchy::V1(_) => self
                .v1("memory")
                .map(|m| keyed(&m.join("memory.oom_control"), "oom_kill "))
                .unwrap_or(0),
        }
    }

    /// Whether the container is frozen.
    pub fn is_frozen(&self) -> bool {
        match &self.hierarchy {
            Hierarchy::V2(r) => read_u64(&r.join(&self.path).join("cgroup.freeze")) == 1,
            Hierarchy::V1(_) => self
                .v1("freezer")
                .and_then(|f| fs::read_to_string(f.join("freezer.state")).ok())
                .is_some_and(|s| s.trim() != "THAWED"),
        }
    }

    /// Resource figures for `docker stats`.
    pub fn stats(&self) -> Stats {
        stats::read(self)
    }

    /// The folder of one v1 controller, or the v2 folder.
    pub(crate) fn controller_dir(&self, ctrl: &str) -> Option<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V2(r) => Some(r.join(&self.path)),
            Hierarchy::V1(_) => self.v1(ctrl),
        }
    }

    /// Whether this is a v2 cgroup.
    pub fn is_v2(&self) -> bool {
        matches!(self.hierarchy, Hierarchy::V2(_))
    }

    /// The folder holding the memory controller: v1's memory folder, or v2's one folder.
    /// Removing it has the kernel move the cgroup's kernel-memory lists to the parent, a
    /// walk of every superblock's lists (so of every running container's mounts) under the
    /// global cgroup lock, which mounts and cgroup changes meanwhile wait behind.
    pub fn memory_dir(&self) -> Option<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V2(root) => Some(root.join(&self.path)),
            Hierarchy::V1(_) => self.v1("memory"),
        }
    }

    /// [`Cgroup::remove`] but for [`Cgroup::memory_dir`], left in place (empty) for its
    /// owner to remove when it suits (see [`DEFER_MEMORY_ANNOTATION`]).
    pub fn remove_but_memory(&self) -> Result<(), RuntimeError> {
        self.remove_keeping(self.memory_dir())
    }

    /// Kills what is left and removes the cgroup folders.
    pub fn remove(&self) -> Result<(), RuntimeError> {
        self.remove_keeping(None)
    }

    fn remove_keeping(&self, keep: Option<PathBuf>) -> Result<(), RuntimeError> {
        // Usually nothing is left (the init's end ended its PID namespace): the folders go at
        // once, without reading `cgroup.procs`, which on a cgroup file system waits behind
        // every removal in progress on the host. A folder still holding a process refuses
        // (EBUSY), and the processes are killed first as below.
        let mut dirs = self.removal_order();
        dirs.retain(|d| Some(d) != keep.as_ref());
        let gone = |d: &PathBuf| match fs::remove_dir(d) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        // With no folder to try (v2's one kept), the processes are looked for instead.
        let nothing_to_try = dirs.is_empty();
        if dirs.iter().all(gone) && (!nothing_to_try || self.pids().is_empty()) {
            return Ok(());
        }
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: kill(2) with integer arguments.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut last = Ok(());
        for d in dirs {
            // Known gone without a `stat`, which on a cgroup file system waits behind every
            // removal in progress on the host (the kernfs lock).
            let mut gone = false;
            for _ in 0..50 {
                match fs::remove_dir(&d) {
                    Ok(()) => gone = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone = true,
                    Err(e) => {
                        last = Err(RuntimeError::Sys {
                            context: format!("removing cgroup {}", d.display()),
                            source: e,
                        });
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                }
                break;
            }
            if gone || !d.exists() {
                last = Ok(());
            }
        }
        last
    }
}

#[cfg(test)]
mod tests;
