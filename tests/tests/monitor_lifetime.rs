//! No monitor outlives its purpose (monitor/PROTOCOL.md "Lifetime"): when berthd ends — `kill -9`
//! or SIGTERM — the spare monitor it keeps spawned ahead and the monitors of containers that
//! were only prepared (created, init waiting, never started) end within 10 s and take their
//! container down (init killed, cgroups removed, rootfs unmounted), while the monitor of a
//! running container stays (live restore) and the restarted berthd still knows it running. A
//! preparation berthd can no longer reach is taken down by its monitor after 30 s.

use berth_tests::procs::spare_monitors;
use berth_tests::TestDaemon;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Polls `f` for up to `secs` seconds.
#[track_caller]
fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    // A zombie is gone for our purpose: it has no mounts, cgroup or descriptors left.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')))
}

/// The state folder of container `id`.
fn state_dir(d: &TestDaemon, id: &str) -> PathBuf {
    d.exec_root().join("containers").join(&id[..24])
}

/// Whether a monitor serves the container `id` (its socket answers).
fn served(d: &TestDaemon, id: &str) -> bool {
    std::os::unix::net::UnixStream::connect(state_dir(d, id).join("monitor.sock")).is_ok()
}

/// (monitor PID, init PID) of container `id`, from its `state.json`.
fn pids(d: &TestDaemon, id: &str) -> (i32, i32) {
    let s: Value = serde_json::from_slice(
        &std::fs::read(state_dir(d, id).join("state.json")).expect("state.json"),
    )
    .expect("state.json is JSON");
    let get = |k: &str| s[k].as_i64().expect("a pid") as i32;
    (get("monitor_pid"), get("pid"))
}

fn inspect(d: &TestDaemon, id: &str) -> Value {
    let v: Value = serde_json::from_str(d.docker(&["inspect", id]).ok()).expect("inspect JSON");
    v[0].clone()
}

/// Whether anything is mounted whose mount point is under `dir` and names `id`.
fn mounted(dir: &Path, id: &str) -> bool {
    let root = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .any(|m| m.starts_with(&root) && m.contains(&id[..12]))
}

/// A cgroup of container `id` in any v1 hierarchy (or the v2 tree).
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let direct = Path::new(base).join("berth").join(id);
        if direct.exists() {
            found.push(direct);
        }
        for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
            let p = e.path().join("berth").join(id);
            if p.exists() {
                found.push(p);
            }
        }
    }
    found
}

/// What one scenario sets up: a running container, two prepared ones (native and runc), the
/// spare monitor.
struct Scene {
    running: String,
    run_pids: (i32, i32),
    prepared: Vec<(String, (i32, i32))>,
    spare: i32,
}

fn set_up(d: &TestDaemon, tag: &str) -> Scene {
    let prepared: Vec<String> = (0..2)
        .map(|i| {
            // One through the native runtime, one through runc.
            let runtime = if i == 0 { "native" } else { "runc" };
            d.docker(&[
                "create",
                "--runtime",
                runtime,
                "--name",
                &format!("{tag}-prep{i}"),
                "busybox",
                "echo",
                "late",
            ])
            .ok()
            .trim()
            .to_string()
        })
        .collect();
    // Started last: berthd spawns its next spare monitor 100 ms after a start (preparations
    // use it up without replacing it).
    let running = d
        .docker(&[
            "run",
            "-d",
            "--name",
            &format!("{tag}-run"),
            "busybox",
            "sleep",
            "600",
        ])
        .ok()
        .trim()
        .to_string();
    for id in &prepared {
        eventually("the created container is prepared", 10, || served(d, id));
        assert_eq!(inspect(d, id)["State"]["Status"], "created");
    }
    let daemon = d.pid().expect("berthd runs");
    // Read once and kept: the spare is found through the pipe berthd holds to it, which a
    // second look may catch while berthd's descriptor table changes.
    let mut spare = 0;
    eventually(
        "berthd keeps a monitor spawned ahead",
        10,
        || match spare_monitors(daemon)[..] {
            [one] => {
                spare = one;
                true
            }
            _ => false,
        },
    );
    let scene = Scene {
        run_pids: pids(d, &running),
        prepared: prepared
            .iter()
            .map(|id| (id.clone(), pids(d, id)))
            .collect(),
        spare,
        running,
    };
    assert!(alive(scene.spare));
    for (id, (m, i)) in &scene.prepared {
        assert!(alive(*m) && alive(*i), "monitor and init of {id}");
        assert!(mounted(d.dir(), id), "the rootfs of {id} is mounted");
        assert!(!cgroups_of(id).is_empty(), "{id} has its cgroups");
    }
    scene
}

/// Within 10 s of berthd's end: the spare and the prepared monitors are gone and have taken
/// their containers down; the running container and its monitor are untouched.
fn check_after_end(d: &TestDaemon, s: &Scene) {
    eventually("the spare monitor ends with berthd", 10, || !alive(s.spare));
    for (id, (monitor, init)) in &s.prepared {
        eventually(&format!("the monitor of prepared {id} ends"), 10, || {
            !alive(*monitor) && !alive(*init)
        });
        eventually(&format!("the rootfs of {id} is unmounted"), 10, || {
            !mounted(d.dir(), id)
        });
        eventually(&format!("the cgroups of {id} are removed"), 10, || {
            cgroups_of(id).is_empty()
        });
        assert!(!served(d, id), "no socket answers for {id}");
    }
    let (monitor, init) = s.run_pids;
    assert!(alive(monitor), "the running container's monitor stays");
    assert!(alive(init), "the running container stays");
    assert!(mounted(d.dir(), &s.running), "its rootfs stays mounted");
    assert!(served(d, &s.running), "its monitor still answers");
}

/// After the restart: the running container is known and running; the prepared ones are
/// `created` and start normally.
fn check_after_restart(d: &TestDaemon, s: &Scene) {
    let c = inspect(d, &s.running);
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["Pid"], s.run_pids.1);
    assert_eq!(d.docker(&["exec", &s.running, "echo", "in"]).ok(), "in\n");
    for (id, _) in &s.prepared {
        assert_eq!(inspect(d, id)["State"]["Status"], "created");
        assert_eq!(d.docker(&["start", "-a", id]).ok(), "late\n");
    }
    d.docker(&["version"]).ok();
}

#[test]
fn after_kill9_only_the_monitors_of_started_containers_stay() {
    let mut d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let s = set_up(&d, "k");
    d.kill9();
    check_after_end(&d, &s);
    d.restart();
    check_after_restart(&d, &s);
    d.docker(&["rm", "-f", &s.running]).ok();
}

#[test]
fn after_sigterm_only_the_monitors_of_started_containers_stay() {
    let mut d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let s = set_up(&d, "t");
    // The running container's monitor blocks SIGCHLD (read through a signalfd) and nothing
    // else: not the mask of the berthd thread that spawned it, which blocks every signal.
    let (monitor, _) = pids(&d, &s.running);
    let status = std::fs::read_to_string(format!("/proc/{monitor}/status")).expect("status");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .expect("SigBlk");
    assert_eq!(
        mask & !(1 << (libc::SIGCHLD - 1)),
        0,
        "monitor blocks {mask:x}"
    );
    assert_eq!(d.stop(), Some(0), "berthd exits by itself on SIGTERM");
    check_after_end(&d, &s);
    d.restart();
    check_after_restart(&d, &s);
    d.docker(&["rm", "-f", &s.running]).ok();
}

#[test]
fn prepared_monitors_end_even_when_the_daemon_folders_are_gone() {
    let mut d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let s = set_up(&d, "g");
    // The preparations' state folders lose every file the monitors were started from; the
    // monitors must not need them to tell that berthd is gone.
    for (id, _) in &s.prepared {
        for f in ["monitor.json", "state.json"] {
            std::fs::remove_file(state_dir(&d, id).join(f)).expect("remove");
        }
    }
    d.kill9();
    check_after_end(&d, &s);
}

#[test]
fn a_preparation_berthd_lost_track_of_is_taken_down_by_its_monitor() {
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let id = d
        .docker(&["create", "--name", "lost", "busybox", "echo", "found"])
        .ok()
        .trim()
        .to_string();
    eventually("the created container is prepared", 10, || served(&d, &id));
    let (monitor, init) = pids(&d, &id);
    // berthd can no longer reach the monitor (as when its exec root was deleted under it):
    // its own expiry (10 s) cannot take the preparation down; the monitor's limit (30 s) does.
    std::fs::remove_file(state_dir(&d, &id).join("monitor.sock")).expect("remove socket");
    eventually("the monitor ends by itself", 45, || {
        !alive(monitor) && !alive(init)
    });
    eventually("its cgroups are removed", 10, || cgroups_of(&id).is_empty());
    eventually("its rootfs is unmounted", 10, || !mounted(d.dir(), &id));
    assert_eq!(d.docker(&["start", "-a", "lost"]).ok(), "found\n");
    d.docker(&["version"]).ok();
}
