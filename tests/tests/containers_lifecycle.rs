//! Container lifecycle through the stock docker CLI and docker-py (issue 4): exit codes,
//! detached containers, logs, exec, top, stop timing semantics, isolation seen from inside,
//! and clean-up after `rm -f` of 50 running containers (mounts, cgroups, monitors, exec-root
//! state). The first three run twice: on the native runtime and on the OCI backend with
//! Debian's runc. Surviving `kill -9` of berthd is `containers_restore.rs`.

use berth_tests::TestDaemon;
use serde_json::json;
use std::time::{Duration, Instant};

/// Where Debian installs runc (CI installs it).
const RUNC: &str = "/usr/sbin/runc";

/// A daemon whose containers run on `runtime` (`native` or `runc`), busybox imported; `None`
/// when that runtime is not installed here.
fn daemon_on(runtime: &str) -> Option<TestDaemon> {
    if runtime == "runc" && !std::path::Path::new(RUNC).exists() {
        eprintln!("{RUNC} not installed: skipped");
        return None;
    }
    let d = TestDaemon::builder()
        .config_json(json!({"default-runtime": runtime}))
        .start();
    d.import_busybox();
    Some(d)
}

#[test]
fn run_exit_codes_and_output() {
    run_exit_codes_and_output_on("native");
}

#[test]
fn run_exit_codes_and_output_with_runc() {
    run_exit_codes_and_output_on("runc");
}

fn run_exit_codes_and_output_on(runtime: &str) {
    let Some(d) = daemon_on(runtime) else {
        return;
    };
    assert_eq!(
        d.docker(&["run", "--rm", "busybox", "echo", "hello"]).ok(),
        "hello\n"
    );
    assert_eq!(
        d.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"])
            .status,
        3
    );
    let cidfile = d.dir().join("missing.cid");
    let cid = cidfile.to_string_lossy().into_owned();
    let missing = d.docker(&["run", "--rm", "--cidfile", &cid, "busybox", "nope"]);
    assert_eq!(missing.status, 127, "{missing:?}");
    // A start that failed leaves no memory cgroup behind (the runtime leaves it to berthd
    // only for containers whose exit berthd hears of).
    let id = std::fs::read_to_string(&cidfile).expect("cidfile");
    let t0 = Instant::now();
    let left = |id: &str| {
        ["/sys/fs/cgroup/memory/berth", "/sys/fs/cgroup/berth"]
            .iter()
            .any(|h| std::path::Path::new(h).join(id.trim()).exists())
    };
    while left(&id) && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!left(&id), "memory cgroup of {id} left");
    assert!(
        missing.stderr.contains("executable file not found"),
        "{}",
        missing.stderr
    );
    let notexec = d.docker(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(notexec.status, 126, "{notexec:?}");
    // Executable but not a program: the exec itself fails after the start, as with Docker
    // and runc the container says why on its stderr and exits with 1.
    let bad = d.dir().join("not-a-program");
    std::fs::write(&bad, b"\x00\x01garbage").expect("writing the file");
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mount = format!("{}:/bad", bad.display());
    let late = d.docker(&["run", "--rm", "-v", &mount, "busybox", "/bad"]);
    assert_eq!(late.status, 1, "{late:?}");
    assert!(
        late.stderr.contains("exec /bad: exec format error"),
        "{late:?}"
    );
    let py = d.python("print(c.containers.run('busybox', 'echo hi', remove=True))");
    assert_eq!(py.ok().trim(), "b'hi\\n'");
    assert!(
        d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty(),
        "--rm removed them"
    );
}

#[test]
fn detached_logs_exec_top_stop() {
    detached_logs_exec_top_stop_on("native");
}

#[test]
fn detached_logs_exec_top_stop_with_runc() {
    detached_logs_exec_top_stop_on("runc");
}

fn detached_logs_exec_top_stop_on(runtime: &str) {
    let Some(d) = daemon_on(runtime) else {
        return;
    };
    let id = d
        .docker(&["run", "-d", "--name", "sl", "busybox", "sleep", "1000"])
        .ok()
        .trim()
        .to_string();
    // The OCI backend keeps runc's state under the monitor's folder; the native one has none.
    let oci_state = d
        .exec_root()
        .join("containers")
        .join(&id[..24.min(id.len())])
        .join("oci");
    assert_eq!(
        oci_state.exists(),
        runtime == "runc",
        "{}",
        oci_state.display()
    );
    assert!(d.docker(&["ps"]).ok().contains("sl"));
    let ps = d.docker(&["exec", "sl", "ps"]).ok().to_string();
    let first = ps.lines().nth(1).unwrap_or("");
    assert!(
        first.trim_start().starts_with('1') && first.contains("sleep 1000"),
        "PID 1 is sleep: {ps}"
    );
    assert!(d.docker(&["top", "sl"]).ok().contains("sleep 1000"));
    assert_eq!(d.docker(&["exec", "sl", "sh", "-c", "exit 4"]).status, 4);
    // berthd and its monitors run SCHED_BATCH; the container's processes, its init and what
    // `exec` starts, get the normal policy (0) back.
    let policies = d
        .docker(&[
            "exec",
            "sl",
            "cut",
            "-d",
            " ",
            "-f",
            "41",
            "/proc/1/stat",
            "/proc/self/stat",
        ])
        .ok()
        .to_string();
    assert_eq!(policies, "0\n0\n", "SCHED_OTHER in the container");
    // sleep ignores TERM as PID 1: stop waits -t seconds, then kills.
    let t = Instant::now();
    d.docker(&["stop", "-t", "1", "sl"]).ok();
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "stop waited for the timeout"
    );
    d.docker(&["rm", "sl"]).ok();
    // A process that handles TERM stops at once; its output is in the logs.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "tr",
        "busybox",
        "sh",
        "-c",
        "trap 'echo bye; exit 0' TERM; echo started; while true; do sleep 0.1; done",
    ])
    .ok();
    for _ in 0..50 {
        if d.docker(&["logs", "tr"]).ok().contains("started") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    d.docker(&["stop", "tr"]).ok();
    let logs = d.docker(&["logs", "tr"]).ok().to_string();
    assert!(logs.contains("started") && logs.contains("bye"), "{logs}");
    let status = d
        .docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "tr",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(status, "exited 0");
    d.docker(&["rm", "tr"]).ok();
}

#[test]
fn isolation_seen_from_inside() {
    isolation_seen_from_inside_on("native");
}

#[test]
fn isolation_seen_from_inside_with_runc() {
    isolation_seen_from_inside_on("runc");
}

fn isolation_seen_from_inside_on(runtime: &str) {
    let Some(d) = daemon_on(runtime) else {
        return;
    };
    let out = d
        .docker(&["run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status; ls /proc/self/fd | wc -l; ps | wc -l; cat /proc/kcore | wc -c; mount -t tmpfs none /mnt 2>&1 >/dev/null || echo cannot-mount; echo x > /tmp/m.ko; insmod /tmp/m.ko 2>&1; echo h > /proc/sys/kernel/hostname 2>/dev/null || echo cannot-sysctl"])
        .ok()
        .to_string();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "CapEff:\t00000000a80425fb".trim(), "{out}");
    assert_eq!(lines[1], "4", "0, 1, 2 and the one ls opened: {out}");
    assert!(
        lines[2].parse::<u32>().unwrap_or(99) <= 4,
        "only the container's processes: {out}"
    );
    assert_eq!(lines[3], "0", "/proc/kcore is masked: {out}");
    assert!(out.contains("cannot-mount"), "{out}");
    assert!(
        out.contains("not permitted"),
        "module loading refused: {out}"
    );
    assert!(
        out.contains("cannot-sysctl"),
        "/proc/sys is read-only: {out}"
    );
}

#[test]
fn rm_f_of_many_leaves_nothing() {
    let d = TestDaemon::start();
    d.import_busybox();
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(
            d.docker(&["run", "-d", "--network", "none", "busybox", "sleep", "300"])
                .ok()
                .trim()
                .to_string(),
        );
    }
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    d.docker(&args).ok();
    assert!(d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = d.dir().display().to_string();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&root) && ids.iter().any(|i| l.contains(&i[..12]))),
        "no container mounts left"
    );
    // The memory cgroups go once no container has started for a moment (berthd's reaper).
    let gone = || {
        ids.iter()
            .all(|id| !std::path::Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists())
    };
    let t = std::time::Instant::now();
    while !gone() && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(gone(), "cgroups of the removed containers left");
    for id in &ids {
        assert!(
            !std::path::Path::new(&format!("/sys/fs/cgroup/pids/berth/{id}")).exists(),
            "pids cgroup of {id} removed"
        );
    }
    let monitors = d.monitor_pids().len();
    assert_eq!(monitors, 0, "no monitor left");
    // Their files go in the background (`containers/teardown.rs`).
    let left = || -> Vec<String> {
        std::fs::read_dir(d.exec_root().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| ids.iter().any(|i| i.starts_with(n.as_str())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let t = std::time::Instant::now();
    while !left().is_empty() && t.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(left().is_empty(), "exec-root state left: {:?}", left());
}

#[test]
fn init_runs_the_command_under_docker_init() {
    let d = TestDaemon::start();
    d.import_busybox();
    let ps = d
        .docker(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,args"])
        .ok()
        .to_string();
    let pid1 = ps.lines().nth(1).unwrap_or("").trim().to_string();
    assert!(
        pid1.starts_with("1 ") && pid1.contains("/sbin/docker-init -- ps"),
        "PID 1 is the init: {ps}"
    );
    assert_eq!(
        d.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"])
            .status,
        7,
        "the init passes the command's exit code on"
    );
    // The init forwards TERM to a shell that would ignore it as PID 1.
    d.docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        "in",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 3' TERM; while true; do sleep 0.1; done",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    d.docker(&["stop", "-t", "5", "in"]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "TERM reached the shell"
    );
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "in"])
            .ok()
            .trim(),
        "3"
    );
}

#[test]
fn bad_create_requests_get_dockers_errors_and_make_nothing() {
    let d = TestDaemon::start();
    d.import_busybox();
    for (args, text) in [
        (
            &["--restart", "sometimes"][..],
            "invalid restart policy 'sometimes'",
        ),
        (
            &["--restart", "always:3"][..],
            "maximum retry count cannot be used with restart policy 'always'",
        ),
        (&["--cpus", "-1"][..], "Range of CPUs is from 0.01 to "),
        (&["-m", "1m"][..], "Minimum memory limit allowed is 6MB"),
        (
            &["-m", "10m", "--memory-swap", "5m"][..],
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
    ] {
        let mut full = vec!["run"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["busybox", "true"]);
        let out = d.docker(&full);
        assert_eq!(out.status, 125, "{args:?}: {out:?}");
        assert!(out.stderr.contains(text), "{args:?}: {}", out.stderr);
    }
    let (status, _, body) = d.request(
        "POST",
        "/containers/create",
        Some(r#"{"Image": "busybox", "HostConfig": {"Memory": "lots"}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("HostConfig.Memory"), "{body}");
    // Go's decoder rules: a string command is a one-word command, null is the zero value.
    let (status, _, body) = d.request(
        "POST",
        "/containers/create",
        Some(r#"{"Image": "busybox", "Cmd": "true", "Env": null, "HostConfig": {"Binds": null}}"#),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        d.docker(&["ps", "-a", "-q"]).ok().lines().count(),
        1,
        "only the good request made a container"
    );
}

#[test]
fn network_none_has_a_working_loopback_only() {
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "ls /sys/class/net; ping -c1 -W2 127.0.0.1 >/dev/null && echo lo-ok",
        ])
        .ok()
        .to_string();
    assert_eq!(out, "lo\nlo-ok\n");
}
