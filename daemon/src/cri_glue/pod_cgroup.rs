//! A CRI pod's own cgroup, the one its init ([`super::pod_init`]) lives in: as containerd does
//! for its sandbox (pause) container with the cgroupfs driver, `<linux.cgroup_parent>/<pod
//! id>`, beside the pod's containers' `<parent>/<container id>`; with no parent, under berth's
//! default root (`berth/<pod id>`), as a container without one
//! ([`crate::containers::cgroup_parent`]). The path is resolved once at RunPodSandbox and kept
//! in the pod's record, so a berthd restarted after a crash still removes it; it is made
//! before the init is moved in (missing parent folders too, v1 or v2) and removed at
//! StopPodSandbox once the init has ended (whatever is still in it is killed first), leaving
//! the parent, which kubelet owns. The path is also noted in the pod's run-time folder before
//! the cgroup is made ([`note`]), so the start-up sweep ([`super::pod_orphans`]) finds the
//! cgroup of a pod whose record a crash kept from being written. Like containerd's sandbox
//! container (`WithDefaultSandboxShares`), the cgroup gets the least CPU share, `cpu.shares` 2
//! on v1 (`cpu.weight` 1 on v2, runc's conversion of 2 shares): the init only reaps.

use berth_runtime::cgroups::{Cgroup, Hierarchy, Limits};
use berth_runtime::RuntimeError;
use std::path::Path;

/// The file in a pod's run-time folder that names its cgroup.
const NOTE: &str = "cgroup";

/// The longest note read back: a checked parent, a `/` and a pod ID.
const MAX_NOTE: u64 = crate::containers::cgroup_parent::MAX_LEN as u64 + 1 + 64;

/// The cgroup of pod `id` whose `linux.cgroup_parent` is `parent` (checked: a bad parent is
/// refused as for a container), without a leading `/`.
pub fn path(parent: &str, id: &str) -> Result<String, crate::error::ServiceError> {
    Ok(format!(
        "{}/{id}",
        crate::containers::cgroup_parent::check(parent)?
    ))
}

/// Notes cgroup `path` in the pod's run-time folder `dir`.
pub fn note(dir: &Path, path: &str) -> Result<(), RuntimeError> {
    std::fs::write(dir.join(NOTE), path).map_err(|source| RuntimeError::Sys {
        context: format!("noting the pod's cgroup in {}", dir.display()),
        source,
    })
}

/// The cgroup noted in `dir` for pod `id`, if the note is one [`path`] gives for that pod.
pub fn noted(dir: &Path, id: &str) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(dir.join(NOTE))
        .ok()?
        .take(MAX_NOTE)
        .read_to_string(&mut s)
        .ok()?;
    let (parent, leaf) = s.rsplit_once('/')?;
    (leaf == id && path(parent, id).ok()? == s).then_some(s)
}

/// A sandbox's CPU share, as containerd's: 2 (the kernel's least on v1).
fn least_cpu() -> Limits {
    Limits {
        cpu_shares: 2,
        ..Limits::default()
    }
}

/// Makes cgroup `path` in `hierarchy`, with the least CPU share, and moves process `pid` (the pod init) into it.
pub fn place(hierarchy: Hierarchy, path: &str, pid: i32) -> Result<(), RuntimeError> {
    let cg = Cgroup::new(hierarchy, path);
    cg.create()?;
    if let Err(e) = cg.apply(&least_cpu()).and_then(|()| cg.add(pid)) {
        let _ = cg.remove();
        return Err(e);
    }
    Ok(())
}

/// Removes cgroup `path` in `hierarchy` (nothing when it is gone already), killing what is
/// still in it; empty `path` (a pod without an init, or recorded before pods had a cgroup):
/// nothing.
pub fn remove(hierarchy: Hierarchy, path: &str) -> Result<(), RuntimeError> {
    if path.is_empty() {
        return Ok(());
    }
    Cgroup::new(hierarchy, path).remove()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A cgroup2-shaped tree: a root offering the controllers, as `/sys/fs/cgroup` does.
    fn v2_root(dir: &Path) -> Hierarchy {
        std::fs::write(
            dir.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .expect("cgroup.controllers");
        Hierarchy::V2(dir.to_path_buf())
    }

    #[test]
    fn the_path_is_the_parent_and_the_pod_id() {
        assert_eq!(
            path("/kubepods/besteffort/pod1", "abc").expect("ok"),
            "kubepods/besteffort/pod1/abc"
        );
        assert_eq!(path("", "abc").expect("ok"), "berth/abc");
        assert!(path("/a/../../etc", "abc").is_err());
    }

    #[test]
    fn v2_the_init_is_placed_under_the_parent_with_weight_1_and_the_leaf_removed() {
        let t = tempfile::tempdir().expect("tempdir");
        let h = v2_root(t.path());
        let p = path("/kubepods/pod1", "abc").expect("ok");
        place(h.clone(), &p, 4242).expect("placed");
        let leaf = t.path().join("kubepods/pod1/abc");
        assert_eq!(
            std::fs::read_to_string(leaf.join("cgroup.procs")).expect("procs"),
            "4242"
        );
        // containerd's sandbox share: 2 shares, weight 1.
        assert_eq!(
            std::fs::read_to_string(leaf.join("cpu.weight")).expect("cpu.weight"),
            "1"
        );
        // Controllers enabled down the path, as for a container.
        assert!(
            std::fs::read_to_string(t.path().join("cgroup.subtree_control"))
                .expect("subtree_control")
                .contains("+memory")
        );
        // The fake tree's files are not removed by rmdir as cgroupfs's are.
        for f in ["cgroup.procs", "cpu.weight"] {
            std::fs::remove_file(leaf.join(f)).expect("rm");
        }
        remove(h.clone(), &p).expect("removed");
        assert!(!leaf.exists());
        assert!(t.path().join("kubepods/pod1").is_dir(), "the parent stays");
        // Gone already, or never made: nothing to do.
        remove(h.clone(), &p).expect("idempotent");
        remove(h, "").expect("no cgroup");
    }

    #[test]
    fn a_note_is_read_back_only_as_that_pods_cgroup() {
        let t = tempfile::tempdir().expect("tempdir");
        let id = "ab".repeat(32);
        assert_eq!(noted(t.path(), &id), None);
        let p = path("/kubepods/pod1", &id).expect("ok");
        note(t.path(), &p).expect("noted");
        assert_eq!(noted(t.path(), &id), Some(p));
        // Another pod's, or one no pod could have.
        assert_eq!(noted(t.path(), &"cd".repeat(32)), None);
        for bad in [
            format!("a/../../{id}"),
            format!("/kubepods/{id}"),
            id.clone(),
        ] {
            std::fs::write(t.path().join(NOTE), bad).expect("write");
            assert_eq!(noted(t.path(), &id), None);
        }
    }

    #[test]
    fn v1_every_hierarchy_gets_the_init_and_cpu_the_least_share() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut m = std::collections::BTreeMap::new();
        for c in ["memory", "pids", "cpu"] {
            std::fs::create_dir(t.path().join(c)).expect("mkdir");
            m.insert(c.to_string(), t.path().join(c));
        }
        let p = path("", "abc").expect("ok");
        place(Hierarchy::V1(m), &p, 7).expect("placed");
        for c in ["memory", "pids", "cpu"] {
            let procs = t.path().join(c).join("berth/abc/cgroup.procs");
            assert_eq!(std::fs::read_to_string(procs).expect("procs"), "7");
        }
        let shares = t.path().join("cpu/berth/abc/cpu.shares");
        assert_eq!(std::fs::read_to_string(shares).expect("shares"), "2");
    }
}
