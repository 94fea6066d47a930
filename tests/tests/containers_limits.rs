//! Resource limits end to end through berthd (issue 4): `docker run --memory --pids-limit
//! --cpus` land in the container's cgroup files (cgroup v1 on this machine; the v2 path is
//! proven by `runtime/src/cgroups/tests.rs` and `runtime_cgroup2.rs`), a fork bomb stays
//! under the pids limit and the container is removed cleanly, and a memory hog is OOM-killed
//! with `State.OOMKilled` true and exit code 137.

use berth_tests::TestDaemon;
use std::path::{Path, PathBuf};

/// The v1 hierarchy root of `controller`, when this host has cgroup v1 controllers.
fn v1(controller: &str) -> Option<PathBuf> {
    let p = Path::new("/sys/fs/cgroup").join(controller);
    p.join("cgroup.procs").exists().then_some(p)
}

/// The container's cgroup folder for `controller` in berthd's layout (`berth/<id>`).
fn cgroup(controller: &str, id: &str) -> Option<PathBuf> {
    v1(controller).map(|r| r.join("berth").join(id))
}

/// One cgroup file of the container, trimmed.
#[track_caller]
fn read(controller: &str, id: &str, file: &str) -> String {
    let p = cgroup(controller, id).unwrap_or_default().join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A daemon with busybox, or `None` (with a message) on a host without cgroup v1 memory.
fn daemon() -> Option<TestDaemon> {
    if v1("memory").is_none() {
        eprintln!("SKIP: no cgroup v1 memory controller; the v2 path is tested on a cgroup2 tree");
        return None;
    }
    let d = TestDaemon::start();
    d.import_busybox();
    Some(d)
}

fn full_id(d: &TestDaemon, name: &str) -> String {
    d.docker(&["inspect", "-f", "{{.Id}}", name])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn limits_land_in_the_cgroup_and_a_fork_bomb_is_contained() {
    let Some(d) = daemon() else { return };
    d.docker(&[
        "run",
        "--detach",
        "--name=lim",
        "--network=none",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let id = full_id(&d, "lim");
    assert_eq!(read("memory", &id, "memory.limit_in_bytes"), "67108864");
    if cgroup("memory", &id).is_some_and(|p| p.join("memory.memsw.limit_in_bytes").exists()) {
        // Docker's default swap allowance: as much again as the memory limit.
        assert_eq!(
            read("memory", &id, "memory.memsw.limit_in_bytes"),
            "134217728"
        );
    }
    assert_eq!(read("pids", &id, "pids.max"), "20");
    assert_eq!(read("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", &id, "cpu.cfs_period_us"), "100000");
    let hc = d
        .docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}",
            "lim",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(hc, "67108864 20 500000000");
    // The limits as the container sees them.
    let inside = d
        .docker(&[
            "exec",
            "lim",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/pids/pids.max",
        ])
        .ok()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(inside, "67108864 20");

    // A fork bomb in the container: forks fail at the limit, the host is unaffected.
    let bomb = d.docker(&[
        "exec",
        "lim",
        "sh",
        "-c",
        "for i in $(seq 100); do sleep 60 & done; wait",
    ]);
    assert_ne!(bomb.status, 0, "the bomb hit the limit: {bomb:?}");
    let current: u32 = read("pids", &id, "pids.current").parse().unwrap_or(999);
    assert!(
        (10..=20).contains(&current),
        "{current} tasks in the container"
    );
    let events = read("pids", &id, "pids.events");
    assert!(
        events
            .strip_prefix("max ")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0),
        "forks were refused: {events}"
    );
    assert!(
        std::process::Command::new("true")
            .status()
            .is_ok_and(|s| s.success()),
        "the host can still fork"
    );
    d.docker(&["rm", "-f", "lim"]).ok();
    for c in ["pids", "cpu", "memory"] {
        // The memory folder goes a moment later (berthd's reaper, once nothing starts).
        let t = std::time::Instant::now();
        while cgroup(c, &id).is_some_and(|p| p.exists())
            && t.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            !cgroup(c, &id).is_some_and(|p| p.exists()),
            "{c} cgroup of the bombed container removed"
        );
    }
    assert!(d.docker(&["ps", "-aq"]).ok().trim().is_empty());
}

#[test]
fn memory_hog_is_oom_killed_and_inspect_says_so() {
    let Some(d) = daemon() else { return };
    // `run --memory 64m` of `script`: (docker's exit code, OOMKilled, ExitCode, Status).
    let run = |name: &str, script: &str| {
        let args = [
            "run",
            "--name",
            name,
            "--network",
            "none",
            "--memory",
            "64m",
        ];
        let mut args = args.to_vec();
        args.extend(["busybox", "sh", "-c", script]);
        let status = d.docker(&args).status;
        let fmt = "{{.State.OOMKilled}} {{.State.ExitCode}} {{.State.Status}}";
        let state = d
            .docker(&["inspect", "-f", fmt, name])
            .ok()
            .trim()
            .to_string();
        (status, state)
    };
    // busybox tail keeps a line-less input in memory: it grows until the kernel kills it.
    let (status, state) = run("hog", "head -c 400m /dev/zero | tail");
    assert_eq!((status, state.as_str()), (137, "true 137 exited"));
    // A container that stays under its limit is not flagged.
    let (status, state) = run("fine", "head -c 1m /dev/zero | tail > /dev/null");
    assert_eq!((status, state.as_str()), (0, "false 0 exited"));
    d.docker(&["rm", "hog", "fine"]).ok();
}
