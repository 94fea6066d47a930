//! The cgroup v2 code against a real cgroup2 filesystem mounted in a temporary folder. On a
//! cgroup v1 host the controllers stay bound to v1, so `cgroup.controllers` is empty: the test
//! then proves creation, moving a process in, freezing and removal (which need no controller)
//! and reports that limits were not checked. On a v2-capable mount it also checks limits.

use berth_runtime::cgroups::{Cgroup, Hierarchy, Limits};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

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
    device_filter(&cg);
    cg.remove().expect("remove");
    let _ = child.wait();
    assert!(!dir.exists());
    let _ = std::fs::remove_dir(root.join("berth-test"));
}

/// Docker's device rules as a BPF program on the real cgroup2 folder: a process moved in may
/// open /dev/null but not /dev/kmsg (1:11), which the rules do not list.
fn device_filter(cg: &Cgroup) {
    let spec = berth_runtime::spec::build_json(&berth_runtime::spec::SpecOptions {
        rootfs: "/nonexistent".into(),
        ..Default::default()
    })
    .expect("spec");
    let limits = Limits::from_resources(&spec["linux"]["resources"]);
    if let Err(e) = cg.apply(&limits) {
        eprintln!("cgroup device programs unavailable here ({e}): device filter not checked");
        return;
    }
    let mut child = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            "read x; (exec 3</dev/null) && echo null ok; (exec 3</dev/kmsg) 2>/dev/null && echo kmsg ok || echo kmsg denied",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    cg.add(child.id() as i32).expect("add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("go");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let _ = child.wait();
    assert_eq!(out, "null ok\nkmsg denied\n");
}
