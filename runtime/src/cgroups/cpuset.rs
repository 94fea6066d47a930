//! The cgroup v1 cpuset of a container. A container that asks for no CPUs or memory nodes
//! (`--cpuset-cpus`/`--cpuset-mems`) gets no cpuset folder of its own: its tasks join its
//! parent's (`berth/`, or the cgroup parent's), which has the same CPUs. Each write of a new
//! cpuset's `cpuset.cpus` and `cpuset.mems` has the kernel check it against every sibling
//! (`validate_change`), and a host's containers are siblings: two walks of every running
//! container's cpuset on each start, and one more folder made and removed. A container asking
//! for a cpuset gets its folder at create, or at a live update ([`own_later`]), which moves
//! its tasks in.
//!
//! When the cpuset controller is mounted together with another one, the folder is that
//! controller's too and always made.

use super::{write, RuntimeError};
use std::fs;
use std::path::{Path, PathBuf};

/// Whether the cgroup v1 cpuset hierarchy mounted at `root` balances load across all its
/// CPUs at the top (the kernel's default): the system is then one scheduling domain, and a
/// container's cpuset's own `cpuset.sched_load_balance` changes no scheduling. While that
/// flag is set, though, the kernel rebuilds the scheduling domains — a walk of every cpuset
/// and of the tasks in them, under the global cgroup lock — when the cpuset gets its CPUs
/// and again when it is removed: per container, work that grows with the running containers
/// (and serialises `rm -f` of many). So a container's cpuset has it cleared, first.
fn top_balances(root: &Path) -> bool {
    fs::read_to_string(root.join("cpuset.sched_load_balance")).is_ok_and(|v| v.trim() == "1")
}

/// Makes the cpuset folder `dir` (in the hierarchy mounted at `root`) able to take tasks:
/// each empty `cpuset.cpus`/`cpuset.mems` from the first ancestor with CPUs down to `dir`
/// gets its parent's. `own`: `dir` is a container's own folder, whose load-balance flag is
/// cleared before it gets CPUs (see [`top_balances`]).
pub(super) fn prepare(root: &Path, dir: &Path, own: bool) -> Result<(), RuntimeError> {
    fs::create_dir_all(dir).map_err(RuntimeError::sys(format!(
        "creating cgroup {}",
        dir.display()
    )))?;
    let mut chain = Vec::new();
    let mut p = dir.to_path_buf();
    while let Some(parent) = p.parent() {
        chain.push(p.clone());
        let has_cpus = fs::read_to_string(parent.join("cpuset.cpus"))
            .map(|s| !s.trim().is_empty())
            .unwrap_or(false);
        if has_cpus || parent == root {
            break;
        }
        p = parent.to_path_buf();
    }
    let quiet = own && top_balances(root);
    for d in chain.iter().rev() {
        let Some(parent) = d.parent() else { continue };
        if quiet && d == dir {
            // Before the CPUs, so no rebuild happens.
            let _ = fs::write(d.join("cpuset.sched_load_balance"), "0");
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let cur = fs::read_to_string(d.join(f)).unwrap_or_default();
            if cur.trim().is_empty() {
                let v = fs::read_to_string(parent.join(f)).unwrap_or_default();
                let _ = fs::write(d.join(f), v.trim());
            }
        }
    }
    Ok(())
}

/// The folder the tasks of a cgroup whose own cpuset folder would be `dir` go into: `dir`
/// when it exists, else its parent.
pub(super) fn joined(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !dir.exists() => p.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// A live update asking for a cpuset of a container that runs in its parent's: makes `dir`
/// and moves `pids` (the container's tasks, read again by `pids` until none is left outside:
/// a fork meanwhile lands in the parent) into it.
pub(super) fn own_later(
    root: &Path,
    dir: &Path,
    pids: impl Fn() -> Vec<i32>,
) -> Result<(), RuntimeError> {
    prepare(root, dir, true)?;
    let procs = dir.join("cgroup.procs");
    for _ in 0..5 {
        let inside: Vec<i32> = fs::read_to_string(&procs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let outside: Vec<i32> = pids().into_iter().filter(|p| !inside.contains(p)).collect();
        if outside.is_empty() {
            return Ok(());
        }
        for p in outside {
            // A task that ended meanwhile (ESRCH) is no failure.
            match write(&procs, &p.to_string()) {
                Ok(()) => {}
                Err(_) if !Path::new(&format!("/proc/{p}")).exists() => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
