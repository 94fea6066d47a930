//! `HostConfig.CgroupParent` against berthd: `docker run --cgroup-parent /<p>` puts the
//! container's cgroup at `/<p>/<id>` (as dockerd with the cgroupfs driver), which `stats`,
//! `update` and `top` read and `rm` removes, leaving the parent; a bad parent is refused; a CRI
//! pod's `linux.cgroup_parent` is its containers' parent, and its init's cgroup is
//! `<parent>/<pod id>` (containerd's sandbox container's place, with its least CPU share),
//! removed at stop, also after a berthd crash, or by the next berthd's start-up when the crash
//! came before the pod's record was written (another daemon's pods and look-alike processes
//! untouched). Each test removes the parent folders it made, even on failure (a guard dropped
//! after the daemon).

use berth_tests::{Crictl, TestDaemon};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A unique top-level parent, whose folders (in every hierarchy) are removed at drop,
/// deepest first.
struct Parent(String);

impl Parent {
    fn new() -> Parent {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Parent(format!("berth-test-{}-{nanos:x}", std::process::id()))
    }

    /// The hierarchies' roots (v1 controllers, or the v2 mount).
    fn roots() -> Vec<PathBuf> {
        let base = Path::new("/sys/fs/cgroup");
        if base.join("cgroup.controllers").exists() {
            return vec![base.to_path_buf()];
        }
        std::fs::read_dir(base)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.join("cgroup.procs").exists())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn rmdir_tree(d: &Path) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    // A container left running by a failed test (its monitor outlives berthd).
    let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill(2) with a pid read from a cgroup this test made; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    for _ in 0..50 {
        if std::fs::remove_dir(d).is_ok() || !d.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for r in Parent::roots() {
            rmdir_tree(&r.join(&self.0));
        }
    }
}

/// The cgroup path of `pid` in the memory hierarchy (v1) or the unified one (v2).
fn cgroup_of(pid: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/pid/cgroup");
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            (ctrls.split(',').any(|c| c == "memory") || ctrls.is_empty()).then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no memory cgroup in {text}"))
}

/// File `v1` of controller `ctrl`'s folder `rel` (v1), or file `v2` of `rel` (v2), trimmed.
fn cgroup_file(ctrl: &str, rel: &str, v1: &str, v2: &str) -> String {
    let v1 = format!("/sys/fs/cgroup/{ctrl}/{rel}/{v1}");
    let v2 = format!("/sys/fs/cgroup/{rel}/{v2}");
    std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap_or_else(|e| panic!("{v1}: {e}"))
        .trim()
        .to_string()
}

/// The memory limit of cgroup `rel`.
fn memory_limit(rel: &str) -> String {
    cgroup_file("memory", rel, "memory.limit_in_bytes", "memory.max")
}

/// The CPU share of cgroup `rel`: `cpu.shares` (v1) or `cpu.weight` (v2).
fn cpu_share(rel: &str) -> String {
    cgroup_file("cpu", rel, "cpu.shares", "cpu.weight")
}

fn memory_dir(rel: &str) -> PathBuf {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/memory/{rel}"));
    match Path::new("/sys/fs/cgroup/memory").exists() {
        true => v1,
        false => PathBuf::from(format!("/sys/fs/cgroup/{rel}")),
    }
}

#[test]
fn docker_run_cgroup_parent_places_stats_updates_and_removes() {
    let parent = Parent::new();
    let d = TestDaemon::start();
    d.import_busybox();
    let p = format!("/{}", parent.0);
    let id = d
        .docker(&[
            "run",
            "-d",
            "--memory",
            "64m",
            "--cgroup-parent",
            &p,
            "busybox",
            "sleep",
            "1000",
        ])
        .ok()
        .trim()
        .to_string();
    let pid = d.container_pid(&id);
    assert_eq!(cgroup_of(&pid), format!("{p}/{id}"));
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.HostConfig.CgroupParent}}", &id])
            .ok()
            .trim(),
        p
    );
    let rel = format!("{}/{id}", parent.0);
    assert_eq!(memory_limit(&rel), (64u64 << 20).to_string());
    // Stats read that cgroup: its limit, not the host's memory.
    let mem = d
        .docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &id])
        .ok()
        .to_string();
    assert!(mem.contains("/ 64MiB"), "{mem}");
    d.docker(&["update", "--memory", "96m", &id]).ok();
    assert_eq!(memory_limit(&rel), (96u64 << 20).to_string());
    let top = d.docker(&["top", &id]).ok().to_string();
    assert!(top.contains("sleep 1000"), "{top}");
    // A restart comes back in the same place.
    d.docker(&["restart", "-t", "0", &id]).ok();
    let pid = d.container_pid(&id);
    assert_eq!(cgroup_of(&pid), format!("{p}/{id}"));
    // `rm` removes the container's cgroup and leaves the parent.
    d.docker(&["rm", "-f", &id]).ok();
    assert!(!memory_dir(&rel).exists(), "{rel} left behind");
    assert!(memory_dir(&parent.0).is_dir());
    // Without a leading `/`, the same place.
    let id = d
        .docker(&[
            "run",
            "-d",
            "--cgroup-parent",
            &parent.0,
            "busybox",
            "sleep",
            "1000",
        ])
        .ok()
        .trim()
        .to_string();
    let pid = d.container_pid(&id);
    assert_eq!(cgroup_of(&pid), format!("{p}/{id}"));
    d.docker(&["rm", "-f", &id]).ok();
    // On runc (the OCI backend) too, when Debian's runc is installed.
    if Path::new("/usr/sbin/runc").exists() {
        let id = d
            .docker(&[
                "run",
                "-d",
                "--runtime",
                "runc",
                "--cgroup-parent",
                &p,
                "busybox",
                "sleep",
                "1000",
            ])
            .ok()
            .trim()
            .to_string();
        let pid = d.container_pid(&id);
        assert_eq!(cgroup_of(&pid), format!("{p}/{id}"));
        d.docker(&["rm", "-f", &id]).ok();
        assert!(!memory_dir(&format!("{}/{id}", parent.0)).exists());
    }
    // A parent climbing out of the hierarchy is refused before anything is made.
    let bad = d.docker(&[
        "create",
        "--cgroup-parent",
        "/a/../../etc",
        "busybox",
        "true",
    ]);
    assert!(!bad.success(), "{bad:?}");
    assert!(bad.stderr.contains("invalid cgroup parent"), "{bad:?}");
}

#[test]
fn a_cri_pods_cgroup_parent_holds_its_containers() {
    let parent = Parent::new();
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();
    let pod_parent = format!("/{}/besteffort/poduid-cg", parent.0);
    let write = |name: &str, v: &serde_json::Value| {
        let p = d.dir().join(name);
        std::fs::write(&p, v.to_string()).expect("write config");
        p.display().to_string()
    };
    let pod_cfg = write(
        "pod.json",
        &json!({
            "metadata": {"name": "cg", "namespace": "default", "uid": "uid-cg", "attempt": 0},
            "log_directory": d.dir().join("pod-logs"),
            "linux": {"cgroup_parent": pod_parent}
        }),
    );
    let ctr = write(
        "ctr.json",
        &json!({
            "metadata": {"name": "main"},
            "image": {"image": "busybox"},
            "command": ["sleep", "1000"],
            "log_path": "main/0.log"
        }),
    );
    let pod = c.ok(&["runp", &pod_cfg]).trim().to_string();
    let id = c.ok(&["create", &pod, &ctr, &pod_cfg]).trim().to_string();
    c.ok(&["start", &id]);
    let pid = d.container_pid(&id);
    assert_eq!(cgroup_of(&pid), format!("{pod_parent}/{id}"));
    c.ok(&["stopp", &pod]);
    c.ok(&["rmp", &pod]);
    let rel = format!("{}/{id}", pod_parent.trim_start_matches('/'));
    assert!(!memory_dir(&rel).exists(), "{rel} left behind");
    // kubelet's pod cgroup is its own: left in place.
    assert!(memory_dir(pod_parent.trim_start_matches('/')).is_dir());
    // A pod whose parent climbs out is refused.
    let bad_cfg = write(
        "bad.json",
        &json!({
            "metadata": {"name": "bad", "namespace": "default", "uid": "uid-bad", "attempt": 0},
            "linux": {"cgroup_parent": "/../x"}
        }),
    );
    let bad = c.run(&["runp", &bad_cfg]);
    assert!(
        !bad.success() && bad.stderr.contains("invalid cgroup parent"),
        "{bad:?}"
    );
}

/// The pod init's PID and cgroup path from the pod's record.
fn pod_init(d: &TestDaemon, pod: &str) -> (String, String) {
    let v = berth_tests::pod_record(d, pod);
    let pid = v["initPid"].as_i64().unwrap_or(0);
    assert!(pid > 1, "no init in {v}");
    (
        pid.to_string(),
        v["cgroup"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn a_cri_pods_init_has_its_own_cgroup_under_the_parent() {
    let parent = Parent::new();
    let mut d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();
    let pod_parent = format!("/{}/burstable/poduid-init", parent.0);
    let dir = d.dir().to_path_buf();
    let write = |name: &str, v: &serde_json::Value| {
        let p = dir.join(name);
        std::fs::write(&p, v.to_string()).expect("write config");
        p.display().to_string()
    };
    let pod_cfg = write(
        "pod.json",
        &json!({
            "metadata": {"name": "cgi", "namespace": "default", "uid": "uid-cgi", "attempt": 0},
            "log_directory": dir.join("pod-logs"),
            "linux": {"cgroup_parent": pod_parent}
        }),
    );
    let ctr = write(
        "ctr.json",
        &json!({
            "metadata": {"name": "main"},
            "image": {"image": "busybox"},
            "command": ["sleep", "1000"],
            "log_path": "main/0.log"
        }),
    );
    let pod = c.ok(&["runp", &pod_cfg]).trim().to_string();
    let (init, recorded) = pod_init(&d, &pod);
    let pod_cg = format!("{pod_parent}/{pod}");
    assert_eq!(cgroup_of(&init), pod_cg);
    assert_eq!(format!("/{recorded}"), pod_cg);
    // containerd's sandbox share: 2 (v1), weight 1 (v2).
    let least = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "1"
    } else {
        "2"
    };
    assert_eq!(cpu_share(&recorded), least);
    // Its containers are its siblings, as containerd's are the pause container's.
    let id = c.ok(&["create", &pod, &ctr, &pod_cfg]).trim().to_string();
    c.ok(&["start", &id]);
    let pid = d.container_pid(&id);
    assert_eq!(cgroup_of(&pid), format!("{pod_parent}/{id}"));
    assert_ne!(
        cpu_share(&format!("{pod_parent}/{id}")),
        least,
        "a container's is the default"
    );
    // berthd dies: the init lives on in its cgroup, and the restarted berthd still removes it.
    d.kill9();
    d.restart();
    assert_eq!(cgroup_of(&init), pod_cg);
    let ready = c.json(&["pods", "-o", "json", "--id", &pod]);
    assert_eq!(ready["items"][0]["state"], "SANDBOX_READY", "{ready}");
    c.ok(&["stopp", &pod]);
    let rel = pod_cg.trim_start_matches('/');
    assert!(!memory_dir(rel).exists(), "{rel} left behind at stop");
    // Ended (a zombie at most: after the crash its parent is the host's init).
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
    assert!(
        status.is_empty() || status.contains("\nState:\tZ"),
        "init left: {status}"
    );
    assert!(memory_dir(pod_parent.trim_start_matches('/')).is_dir());
    c.ok(&["stopp", &pod]);
    c.ok(&["rmp", &pod]);

    // No parent: berth's default root, as a container's; RemovePodSandbox alone removes it.
    let plain_cfg = write(
        "plain.json",
        &json!({
            "metadata": {"name": "plain", "namespace": "default", "uid": "uid-plain", "attempt": 0},
            "log_directory": dir.join("pod-logs")
        }),
    );
    let pod = c.ok(&["runp", &plain_cfg]).trim().to_string();
    let (init, _) = pod_init(&d, &pod);
    assert_eq!(cgroup_of(&init), format!("/berth/{pod}"));
    c.ok(&["rmp", "-f", &pod]);
    assert!(!memory_dir(&format!("berth/{pod}")).exists());
}

/// dockerd (cgroupfs driver) places a container with the same parent at the same path, shows
/// the parent as given, and keeps the parent folder at `rm`. Skipped without dockerd.
#[test]
fn dockerd_places_it_alike() {
    let parent = Parent::new();
    let d = TestDaemon::start();
    let Some(real) = berth_tests::RealEngine::start() else {
        return;
    };
    real.load_busybox_of(&d);
    let p = format!("/{}", parent.0);
    let id = real
        .ok(&[
            "run",
            "-d",
            "--cgroup-parent",
            &p,
            "busybox",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let pid = real
        .ok(&["inspect", "-f", "{{.State.Pid}}", &id])
        .trim()
        .to_string();
    let theirs = cgroup_of(&pid);
    let shown = real
        .ok(&["inspect", "-f", "{{.HostConfig.CgroupParent}}", &id])
        .trim()
        .to_string();
    // dockerd takes `..` (it cleans the path, so this one would be `/etc/<id>`); berth
    // refuses it: the parent is client input.
    let (created, out, _) = real.docker(&[
        "create",
        "--cgroup-parent",
        "/a/../../etc",
        "busybox",
        "true",
    ]);
    eprintln!("dockerd: cgroup {theirs}, shown {shown:?}, a '..' parent taken: {created}");
    if created {
        real.ok(&["rm", out.trim()]);
    }
    real.ok(&["rm", "-f", &id]);
    assert_eq!(theirs, format!("{p}/{id}"));
    assert_eq!(shown, p);
    assert!(memory_dir(&parent.0).is_dir());
}

/// Whether `pid` is gone (a zombie at most: after a crash its parent is the host's init).
fn gone(pid: &str) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.is_empty() || status.contains("\nState:\tZ")
}

/// A process that only copies a pod init's command line (`berth-monitor pod-init --ready-fd 1
/// --pod <id>`): bash running a script named `pod-init`. It is in its own process group,
/// killed at drop.
struct Decoy {
    child: std::process::Child,
    _script: tempfile::TempDir,
}

impl Decoy {
    fn new(pod: &str) -> Decoy {
        use std::os::unix::process::CommandExt;
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("pod-init"), "sleep 600\n").expect("script");
        let child = std::process::Command::new("bash")
            .arg0("berth-monitor")
            .args(["pod-init", "--ready-fd", "1", "--pod", pod])
            .current_dir(t.path())
            .process_group(0)
            .spawn()
            .expect("bash");
        Decoy { child, _script: t }
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) of the process group this test made; no memory is involved.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// berthd dies after making a pod's init, pins and cgroup but before writing its record (the
/// record removed after a `kill -9` is exactly that state): the restarted berthd ends that
/// init, releases the pins, removes the cgroup and the folder. A process that only copies the
/// init's command line, and a second daemon's pod, are left alone.
#[test]
fn a_pod_a_crash_left_without_record_is_undone_at_start() {
    let parent = Parent::new();
    let mut a = TestDaemon::start();
    let b = TestDaemon::start();
    let (Some(ca), Some(cb)) = (Crictl::for_daemon(&a), Crictl::for_daemon(&b)) else {
        return;
    };
    let pod_cfg = |d: &TestDaemon, name: &str| {
        let p = d.dir().join(format!("{name}.json"));
        let cfg = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "attempt": 0},
            "log_directory": d.dir().join("pod-logs"),
            "linux": {"cgroup_parent": format!("/{}/{name}", parent.0)}
        });
        std::fs::write(&p, cfg.to_string()).expect("write config");
        p.display().to_string()
    };
    let lost = ca.ok(&["runp", &pod_cfg(&a, "lost")]).trim().to_string();
    let kept = cb.ok(&["runp", &pod_cfg(&b, "kept")]).trim().to_string();
    let (lost_init, lost_cg) = pod_init(&a, &lost);
    let (kept_init, kept_cg) = pod_init(&b, &kept);
    let lost_dir = a.exec_root().join("cri/pods").join(&lost);
    assert!(memory_dir(&lost_cg).is_dir());

    a.kill9();
    std::fs::remove_file(a.data_root().join(format!("cri/pods/{lost}.json"))).expect("rm record");
    let decoy = Decoy::new(&lost);
    // The decoy has exec'd bash with its command line before berthd looks.
    let decoy_pid = decoy.child.id().to_string();
    let like = format!("berth-monitor\0pod-init\0--ready-fd\01\0--pod\0{lost}\0");
    let mut cmd = Vec::new();
    for _ in 0..100 {
        cmd = std::fs::read(format!("/proc/{decoy_pid}/cmdline")).unwrap_or_default();
        if cmd == like.as_bytes() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(String::from_utf8_lossy(&cmd), like);
    let init_cmd = std::fs::read(format!("/proc/{lost_init}/cmdline")).expect("init cmdline");
    assert_eq!(
        String::from_utf8_lossy(&init_cmd),
        like,
        "the decoy's is the init's"
    );
    a.restart();
    // The CRI is served once the pod store is open (and the sweep done): after /_ping.
    for _ in 0..100 {
        if ca.run(&["pods", "-q"]).success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    assert!(
        gone(&lost_init),
        "the orphaned init {lost_init} still runs; berthd:\n{}",
        a.log()
    );
    assert!(!lost_dir.exists(), "{} left", lost_dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&lost), "a pin of {lost} left:\n{mounts}");
    assert!(!memory_dir(&lost_cg).exists(), "cgroup {lost_cg} left");
    assert!(
        memory_dir(&format!("{}/lost", parent.0)).is_dir(),
        "the parent stays"
    );
    let pods = ca.json(&["pods", "-o", "json"]);
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(0), "{pods}");
    assert!(!gone(&decoy_pid), "the decoy {decoy_pid} was killed");
    drop(decoy);

    // The other daemon's pod is untouched.
    assert!(!gone(&kept_init));
    assert!(memory_dir(&kept_cg).is_dir());
    let ready = cb.json(&["pods", "-o", "json", "--id", &kept]);
    assert_eq!(ready["items"][0]["state"], "SANDBOX_READY", "{ready}");
    cb.ok(&["rmp", "-f", &kept]);
    assert!(gone(&kept_init));
}
