//! The cgroup v2 code against a real cgroup2 filesystem mounted in a temporary folder. On a
//! cgroup v1 host the controllers stay bound to v1, so `cgroup.controllers` is empty: the test
//! then proves creation, moving a process in, freezing and removal (which need no controller)
//! and reports that limits were not checked. On a v2-capable mount it also checks limits.

use berth_runtime::cgroups::{Cgroup, Hierarchy, Limits};
use std::process::Command;

struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: umount2 with a valid path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn real_cgroup2_mount() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("cg2");
    std::fs::create_dir(&root).expect("mkdir");
    let ok = Command::new("mount")
        .args(["-t", "cgroup2", "none"])
        .arg(&root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("cannot mount cgroup2 here: skipped");
        return;
    }
    let _m = Mounted(root.clone());
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let id = format!("berth-test/cg2-{}", std::process::id());
    let cg = Cgroup::new(Hierarchy::V2(root.clone()), &id);
    cg.create().expect("create");
    let dir = root.join(&id);
    assert!(dir.join("cgroup.procs").exists(), "a real cgroup folder");
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    let limits = Limits {
        memory: if has("memory") { 64 << 20 } else { 0 },
        pids: if has("pids") { 20 } else { 0 },
        ..Default::default()
    };
    cg.apply(&limits).expect("apply");
    if has("memory") {
        let m = std::fs::read_to_string(dir.join("memory.max")).expect("memory.max");
        assert_eq!(m.trim(), "67108864");
    } else {
        eprintln!("cgroup2 has no controllers here (bound to v1): limits not checked");
    }
    let mut child = Command::new("/bin/busybox")
        .args(["sleep", "100"])
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    cg.add(pid).expect("add");
    assert_eq!(cg.pids(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(own.contains(&format!("0::/{id}")), "{own}");
    if dir.join("cgroup.freeze").exists() {
        cg.freeze(true).expect("freeze");
        assert!(cg.is_frozen());
        let ev = std::fs::read_to_string(dir.join("cgroup.events")).expect("events");
        assert!(ev.contains("frozen 1"), "{ev}");
        cg.freeze(false).expect("thaw");
        assert!(!cg.is_frozen());
    }
    let s = cg.stats();
    assert!(s.system_cpu_ns > 0);
    cg.remove().expect("remove");
    let _ = child.wait();
    assert!(!dir.exists());
    let _ = std::fs::remove_dir(root.join("berth-test"));
}
