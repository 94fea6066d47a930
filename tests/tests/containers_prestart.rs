//! A created container is prepared ahead of its start (`daemon/src/containers/prestart.rs`):
//! its monitor and waiting init exist from the create on, yet it stays `created` to clients;
//! removal, `update`, `cp`, berthd's stop, a crash and the expiry all take the preparation
//! down again, leaving nothing behind; the budget bounds how many are prepared; the monitor
//! berthd keeps spawned ahead ends with it; and the fast start that follows never loses an
//! attach that arrived just before it.

use berth_tests::procs::spare_monitors;
use berth_tests::TestDaemon;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Polls `f` for up to `secs` seconds.
fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a monitor serves the container `id` (its socket answers).
fn prepared(d: &TestDaemon, id: &str) -> bool {
    let sock = d
        .exec_root()
        .join("containers")
        .join(&id[..24])
        .join("monitor.sock");
    std::os::unix::net::UnixStream::connect(sock).is_ok()
}

fn create(d: &TestDaemon, args: &[&str]) -> String {
    let mut all = vec!["create"];
    all.extend_from_slice(args);
    d.docker(&all).ok().trim().to_string()
}

fn inspect(d: &TestDaemon, id: &str) -> Value {
    let out = d.docker(&["inspect", id]);
    let v: Value = serde_json::from_str(out.ok()).expect("inspect JSON");
    v[0].clone()
}

/// Nothing of container `id` is left on the host but its record.
fn nothing_running(d: &TestDaemon, id: &str) {
    eventually("the preparation's monitor is gone", 10, || {
        !prepared(d, id) && d.monitor_pids().is_empty()
    });
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/pids/berth/{id}")).exists(),
        "cgroup of {id} removed"
    );
    // The rootfs is unmounted once the monitor is gone, in berthd's own time.
    let root = d.dir().display().to_string();
    eventually(&format!("no mount of {id} left"), 10, || {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        !mounts
            .lines()
            .any(|l| l.contains(&root) && l.contains(&id[..12]))
    });
}

#[test]
fn a_created_container_is_prepared_but_stays_created_and_removal_takes_it_down() {
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let id = create(&d, &["--name", "early", "busybox", "echo", "hello"]);
    eventually("a monitor serves the created container", 10, || {
        prepared(&d, &id)
    });
    let c = inspect(&d, &id);
    assert_eq!(c["State"]["Status"], "created");
    assert_eq!(c["State"]["Pid"], 0);
    assert!(d
        .docker(&["top", "early"])
        .stderr
        .contains("is not running"));
    assert_eq!(d.docker(&["start", "-a", "early"]).ok(), "hello\n");
    assert_eq!(inspect(&d, &id)["State"]["ExitCode"], 0);
    // Started once, a container is not prepared again: the next start does the whole work.
    assert_eq!(d.docker(&["start", "-a", "early"]).ok(), "hello\n");
    d.docker(&["rm", "early"]).ok();

    let id = create(&d, &["--name", "never", "busybox", "true"]);
    eventually("prepared", 10, || prepared(&d, &id));
    d.docker(&["rm", "never"]).ok();
    nothing_running(&d, &id);
    // `rm` answers once the processes are gone; the folders go right after, in the background.
    let state = d.exec_root().join("containers").join(&id[..24]);
    eventually("the state folder is removed", 10, || !state.exists());
}

#[test]
fn update_and_cp_before_the_start_are_honoured() {
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let id = create(&d, &["--name", "upd", "busybox", "sleep", "300"]);
    eventually("prepared", 10, || prepared(&d, &id));
    d.docker(&["update", "--memory", "64m", "--memory-swap", "128m", "upd"])
        .ok();
    d.docker(&["start", "upd"]).ok();
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"
    ))
    .unwrap_or_default();
    assert_eq!(limit.trim(), "67108864");
    d.docker(&["rm", "-f", "upd"]).ok();

    let id = create(&d, &["--name", "cpc", "busybox", "cat", "/etc/greeting"]);
    eventually("prepared", 10, || prepared(&d, &id));
    let src = d.dir().join("greeting");
    std::fs::write(&src, "from cp\n").expect("write");
    d.docker(&["cp", &src.display().to_string(), "cpc:/etc/greeting"])
        .ok();
    assert_eq!(d.docker(&["start", "-a", "cpc"]).ok(), "from cp\n");
}

#[test]
fn a_stop_or_a_crash_of_berthd_leaves_no_preparation_behind() {
    let mut d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let id = create(&d, &["--name", "kil", "busybox", "echo", "after"]);
    eventually("prepared", 10, || prepared(&d, &id));
    d.kill9();
    // Its monitor takes it down by itself (berthd's pidfd, monitor/PROTOCOL.md "Lifetime");
    // a restarted berthd would otherwise do it (`prestart::orphan`).
    nothing_running(&d, &id);
    d.restart();
    nothing_running(&d, &id);
    assert_eq!(inspect(&d, &id)["State"]["Status"], "created");
    assert_eq!(d.docker(&["start", "-a", "kil"]).ok(), "after\n");

    let id = create(&d, &["busybox", "true"]);
    eventually("prepared", 10, || prepared(&d, &id));
    d.stop();
    nothing_running(&d, &id);
}

#[test]
fn the_monitor_spawned_ahead_ends_with_its_berthd() {
    let mut d = TestDaemon::builder().storage_driver("overlay2").start();
    let pid = d.pid().expect("berthd runs");
    // Read once, inside the wait: a second look may catch berthd's descriptors changing.
    let mut spare = 0;
    eventually(
        "berthd keeps a monitor spawned ahead",
        10,
        || match spare_monitors(pid)[..] {
            [one] => {
                spare = one;
                true
            }
            _ => false,
        },
    );
    d.kill9();
    eventually("the spare monitor ends with its berthd", 10, || {
        !std::path::Path::new(&format!("/proc/{spare}")).exists()
    });
}

#[test]
fn the_budget_bounds_preparations_and_they_expire() {
    let d = TestDaemon::builder()
        .storage_driver("overlay2")
        .config_json(json!({"prestart": 1}))
        .start();
    d.import_busybox();
    let a = create(&d, &["busybox", "true"]);
    eventually("the first is prepared", 10, || prepared(&d, &a));
    let b = create(&d, &["busybox", "true"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!prepared(&d, &b), "the budget (1) is used up");
    // Not started within 10 s: taken down, and the budget is free again.
    eventually("the preparation expires", 20, || !prepared(&d, &a));
    nothing_running(&d, &a);
    let c = create(&d, &["busybox", "echo", "third"]);
    eventually("the next create is prepared", 10, || prepared(&d, &c));
    assert_eq!(d.docker(&["start", "-a", &c]).ok(), "third\n");
    assert_eq!(d.docker(&["start", "-a", &a]).ok(), "");
    assert_eq!(inspect(&d, &a)["State"]["ExitCode"], 0);
}

#[test]
fn prestart_can_be_turned_off() {
    let d = TestDaemon::builder()
        .storage_driver("overlay2")
        .config_json(json!({"prestart": 0}))
        .start();
    d.import_busybox();
    let id = create(&d, &["busybox", "echo", "cold"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!prepared(&d, &id));
    assert_eq!(d.docker(&["start", "-a", &id]).ok(), "cold\n");
}

#[test]
fn runs_back_to_back_never_lose_their_attach() {
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    for i in 0..40 {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            &format!("run {i}"),
        ]);
        assert_eq!(out.ok(), format!("run {i}\n"));
    }
}
