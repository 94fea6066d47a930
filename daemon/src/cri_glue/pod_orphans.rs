//! The start-up sweep of CRI pods that a berthd crash left without a record. RunPodSandbox
//! makes a pod's run-time folder (`<exec-root>/cri/pods/<id>/`), pins its namespaces there,
//! spawns its init, notes and makes its cgroup, and only then writes its record; a berthd
//! killed in between leaves an init, pins and a cgroup that no record names, which kubelet
//! never learnt of and so never stops. At start, before the CRI is served, every such folder
//! of THIS daemon's exec root is undone: its init ended, its pins released, its noted cgroup
//! removed, the folder removed.
//!
//! Only this daemon's own state is touched. The folders are under its exec root (another
//! daemon has another), and their names are random 256-bit pod IDs. An init is found by a
//! scan of `/proc` and ended only when, with a pidfd of it open, its command line is exactly
//! the one berthd gives the init of that pod ID (`berth-monitor pod-init --ready-fd 1 --pod
//! <id>`), it is PID 1 of a PID namespace of its own, and (when the folder pins a PID
//! namespace) that namespace is the pinned one: a PID reused by any other process, or a
//! process that only copies the command line, is left alone.

use super::{pod_cgroup, pod_init, pod_ns};
use berth_runtime::cgroups::Hierarchy;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

/// The longest `/proc/<pid>/cmdline` or `status` read (an init's is far shorter).
const MAX_PROC_FILE: u64 = 8192;

/// Undoes every pod folder under `run` whose pod ID is not in `known` (the IDs of the pod
/// records, readable or not). Blocking; meant for start-up, before any pod is made.
pub fn sweep(run: &Path, known: &BTreeSet<String>) {
    let Ok(rd) = std::fs::read_dir(run) else {
        return;
    };
    let orphans: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| is_pod_id(id) && !known.contains(id))
        .collect();
    if orphans.is_empty() {
        return;
    }
    let inits = inits();
    for id in orphans {
        let dir = run.join(&id);
        tracing::warn!("pod {id}: no record (berthd died while making it); undoing it");
        for &(pid, _) in inits.iter().filter(|(_, of)| *of == id) {
            pod_init::end_if(pid, || is_init_of(pid, &id, &dir));
        }
        discard(&dir, &pod_cgroup::noted(&dir, &id).unwrap_or_default());
    }
}

/// Releases the pins in pod folder `dir`, removes the pod's cgroup `cgroup` (empty: none)
/// and the folder, once the pod's init (if any) has ended; what could not be removed is
/// logged. Blocking.
pub fn discard(dir: &Path, cgroup: &str) {
    pod_ns::release(dir);
    if let Err(e) = pod_cgroup::remove(Hierarchy::detect(), cgroup) {
        tracing::warn!("removing the pod cgroup {cgroup}: {e}");
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("removing {}: {e}", dir.display())
        }
        _ => {}
    }
}

/// Whether `s` has the shape of a pod ID (64 lowercase hex digits).
fn is_pod_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A `/proc/<pid>/<file>`, at most [`MAX_PROC_FILE`] bytes of it.
fn proc_file(pid: i32, file: &str) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/{file}"))
        .ok()?
        .take(MAX_PROC_FILE)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// The pod ID process `pid`'s command line is a pod init's for, if it is one.
fn init_cmdline_of(pid: i32) -> Option<String> {
    let raw = proc_file(pid, "cmdline")?;
    let args: Vec<&[u8]> = raw.strip_suffix(&[0])?.split(|b| *b == 0).collect();
    let id = std::str::from_utf8(args.last()?).ok()?;
    let want = pod_init::argv(id);
    (args.len() == want.len() && args.iter().zip(want).all(|(a, w)| *a == w.as_bytes()))
        .then(|| id.to_string())
}

/// Whether `pid` is PID 1 of a PID namespace below the host's (`NSpid:` of its status).
fn is_ns_init(pid: i32) -> bool {
    let Some(status) = proc_file(pid, "status") else {
        return false;
    };
    String::from_utf8_lossy(&status)
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| v.split_whitespace().collect::<Vec<_>>())
        .is_some_and(|ids| ids.len() >= 2 && ids.last() == Some(&"1"))
}

/// Whether `pid` is the init of pod `id`, whose folder is `dir` (see the module's doc).
fn is_init_of(pid: i32, id: &str, dir: &Path) -> bool {
    init_cmdline_of(pid).as_deref() == Some(id)
        && is_ns_init(pid)
        && (!pod_ns::pinned(dir, pod_init::KIND) || pod_init::alive(dir, pid))
}

/// The host's processes whose command line is a pod init's, with the pod ID it names.
fn inits() -> Vec<(i32, String)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid > 1)
        .filter_map(|pid| Some((pid, init_cmdline_of(pid)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ids_are_64_lowercase_hex_digits() {
        assert!(is_pod_id(&"a1".repeat(32)));
        assert!(!is_pod_id(&"A1".repeat(32)));
        assert!(!is_pod_id("abc"));
        assert!(!is_pod_id(&format!("{}/", "a".repeat(63))));
    }

    #[test]
    fn this_process_is_no_pod_init() {
        let me = i32::try_from(std::process::id()).expect("pid");
        assert_eq!(init_cmdline_of(me), None);
        assert!(!is_init_of(me, &"a".repeat(64), Path::new("/nonexistent")));
    }
}
