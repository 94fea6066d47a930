//! The monitor binary with the native runtime, driven over its socket as berthd does:
//! output in the log and on attach, exit codes and start errors, tty and stdin, pause/resume,
//! survival of its parent, re-opened `wait`, and `berth-monitor exec`.

mod runtime_support;

use runtime_support::*;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn echo_appears_in_log_and_exit_code_is_recorded() {
    let c = Ctr::new("echo");
    let (exit, out, err) = c.run(&c.opts(&["sh", "-c", "echo hello; echo oops >&2; exit 3"]));
    assert_eq!(exit["exit_code"], 3, "{exit}");
    assert_eq!(exit["oom_killed"], false);
    assert_eq!(exit["error"], "");
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    let ex: Value =
        serde_json::from_slice(&std::fs::read(c.state.join("exit.json")).expect("exit.json"))
            .expect("json");
    assert_eq!(ex["exit_code"], 3);
    assert!(ex["finished_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(!c.state.join("monitor.sock").exists());
    let log = std::fs::read_to_string(&c.log).expect("log");
    let first: Value = serde_json::from_str(log.lines().next().expect("line")).expect("json");
    let time = first["time"].as_str().expect("time");
    assert_eq!(time.len(), "2026-11-28T06:00:00.123456789Z".len(), "{time}");
    let st: Value =
        serde_json::from_slice(&std::fs::read(c.state.join("state.json")).expect("state.json"))
            .expect("json");
    assert!(st["pid"].as_i64().unwrap_or(0) > 0 && st["monitor_pid"].as_i64().unwrap_or(0) > 0);
}

#[test]
fn attach_gets_framed_output_and_stdin() {
    let c = Ctr::new("att");
    let o = c.opts(&["sh", "-c", "read line; echo got $line; echo err >&2"]);
    c.write_spec(&o);
    c.write_monitor_json(json!({"kind": "native"}), false, true);
    assert_eq!(c.spawn()["ok"], true);
    let (mut att, r) =
        c.connect(json!({"cmd": "attach", "stdin": true, "stdout": true, "stderr": true}));
    assert_eq!(r["ok"], true);
    let (waiter, _) = c.connect_wait();
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    att.write_all(b"world\n").expect("stdin");
    att.shutdown(std::net::Shutdown::Write).expect("half-close");
    let (out, err) = read_frames(&mut att);
    assert_eq!(out, "got world\n");
    assert_eq!(err, "err\n");
    assert_eq!(finish_wait(waiter)["exit_code"], 0);
    assert_eq!(c.log_text("stdout"), "got world\n");
}

#[test]
fn tty_output_is_one_stream_with_crlf() {
    let c = Ctr::new("tty");
    let mut o = c.opts(&["sh", "-c", "tty; stty size; echo hi"]);
    o.tty = true;
    let (exit, out, err) = c.run(&o);
    assert_eq!(exit["exit_code"], 0, "{exit}");
    assert_eq!(err, "");
    assert!(out.contains("hi\r\n"), "{out:?}");
    assert!(out.contains("30 100"), "{out:?}");
    assert!(
        out.starts_with("/dev/pts/0\r\n"),
        "the pty lives in the container: {out:?}"
    );
}

#[test]
fn missing_command_is_127_and_not_executable_is_126() {
    let c = Ctr::new("nf");
    c.write_spec(&c.opts(&["nope"]));
    c.write_monitor_json(json!({"kind": "native"}), false, false);
    assert_eq!(c.spawn()["ok"], true);
    start_fails(
        &c,
        127,
        "exec: \"nope\": executable file not found in $PATH",
    );

    let c = Ctr::new("nx");
    c.write_spec(&c.opts(&["/etc/notexec"]));
    c.write_monitor_json(json!({"kind": "native"}), false, false);
    assert_eq!(c.spawn()["ok"], true);
    start_fails(&c, 126, "exec: \"/etc/notexec\": permission denied");
}

/// Starts `c`, whose command cannot run. The init looks the command up before it reports
/// itself set up, so it may have failed before `start` arrives (the monitor then finishes
/// without reading it and may be gone: no reply) or not (the reply says why); either way
/// `exit.json` has Docker's code and text.
fn start_fails(c: &Ctr, code: i64, msg: &str) {
    let start = c.cmd_or_eof(json!({"cmd": "start"}));
    assert_ne!(start["ok"], true, "{start}");
    if start["ok"] == false {
        assert_eq!(start["exit_code"], code, "{start}");
        assert_eq!(start["error"], msg, "{start}");
    }
    let exit = c.exit_record();
    assert_eq!(exit["exit_code"], code, "{exit}");
    assert_eq!(exit["error"], msg, "{exit}");
}

/// The native runtime reports readiness before the init has finished setting up (its cgroup
/// placement and mounts overlap berthd's network join): a set-up failure shows at `start`,
/// and the monitor still records the exit and goes away.
#[test]
fn set_up_failure_shows_at_start() {
    let c = Ctr::new("su");
    let mut o = c.opts(&["true"]);
    o.mounts.push(berth_runtime::spec::MountSpec {
        destination: "/missing".into(),
        kind: "bind".into(),
        source: "/nonexistent-berth-source".into(),
        options: vec!["rbind".into()],
    });
    c.write_spec(&o);
    c.write_monitor_json(json!({"kind": "native"}), false, false);
    assert_eq!(c.spawn()["ok"], true);
    // The init may fail before `start` arrives (the monitor then finishes without reading
    // it, and may be gone already) or while `start` waits for it; either way `exit.json`
    // tells why.
    let start = c.cmd_or_eof(json!({"cmd": "start"}));
    assert_ne!(start["ok"], true, "{start}");
    let exit = c.exit_record();
    assert_ne!(exit["exit_code"], 0);
    let err = exit["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("container init failed") && err.contains("/nonexistent-berth-source"),
        "{exit}"
    );
}

#[test]
fn bad_user_fails_at_spec_time_like_docker() {
    let c = Ctr::new("usr");
    let mut o = c.opts(&["id"]);
    o.user = "nope".into();
    let e = berth_runtime::spec::build_json(&o).expect_err("unknown user");
    assert_eq!(
        e.to_string(),
        "unable to find user nope: no matching entries in passwd file"
    );
}

#[test]
fn pause_resume_and_kill() {
    let c = Ctr::new("pz");
    c.write_spec(&c.opts(&["sleep", "1000"]));
    c.write_monitor_json(json!({"kind": "native"}), false, false);
    assert_eq!(c.spawn()["ok"], true);
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer").join(c.cgroup_path());
    assert_eq!(c.cmd(json!({"cmd": "pause"}))["ok"], true);
    assert_eq!(c.cmd(json!({"cmd": "state"}))["status"], "paused");
    if freezer.exists() {
        let s = std::fs::read_to_string(freezer.join("freezer.state")).expect("state");
        assert_eq!(s.trim(), "FROZEN");
    }
    assert_eq!(c.cmd(json!({"cmd": "resume"}))["ok"], true);
    assert_eq!(c.cmd(json!({"cmd": "state"}))["status"], "running");
    if freezer.exists() {
        let s = std::fs::read_to_string(freezer.join("freezer.state")).expect("state");
        assert_eq!(s.trim(), "THAWED");
    }
    // SIGKILL works on a paused container (the monitor thaws it).
    assert_eq!(c.cmd(json!({"cmd": "pause"}))["ok"], true);
    let (waiter, _) = c.connect_wait();
    assert_eq!(c.cmd(json!({"cmd": "kill", "signal": 9}))["ok"], true);
    assert_eq!(finish_wait(waiter)["exit_code"], 137);
    assert!(!freezer.exists(), "cgroup removed at exit");
}

#[test]
fn monitor_survives_its_parent_and_wait_works_after_reconnect() {
    let c = Ctr::new("surv");
    // The shell is PID 1 of its namespace: until its `trap` runs, SIGTERM (default action)
    // is dropped by the kernel, so the test waits for "ready" before it signals.
    c.write_spec(&c.opts(&[
        "sh",
        "-c",
        "trap 'exit 7' TERM; echo ready; while true; do sleep 0.05; done",
    ]));
    c.write_monitor_json(json!({"kind": "native"}), false, false);
    // berthd stand-in: a shell that runs the monitor and stays; killed with SIGKILL below.
    let (r, w) = pipe();
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "\"$0\" \"$1\" --ready-fd 3; exec sleep 1000"])
        .arg(monitor_bin())
        .arg(&c.state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: dup2 between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut parent = cmd.spawn().expect("spawn");
    drop(w);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(r), &mut line).expect("ready");
    let ready: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(ready["ok"], true);
    let monitor = ready["monitor_pid"].as_i64().expect("monitor pid") as i32;
    // A wait connection that dies with "berthd".
    let (w1, _) = c.connect_wait();
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    parent.kill().expect("kill parent");
    let _ = parent.wait();
    drop(w1);
    assert!(alive(monitor), "monitor outlives its parent");
    let ppid = std::fs::read_to_string(format!("/proc/{monitor}/stat")).expect("stat");
    let ppid: i32 = ppid
        .rsplit(") ")
        .next()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("ppid");
    assert_ne!(ppid, parent.id() as i32);
    assert_eq!(c.cmd(json!({"cmd": "state"}))["ok"], true);
    let (w2, _) = c.connect_wait();
    c.wait_for_log("ready");
    assert_eq!(c.cmd(json!({"cmd": "kill", "signal": 15}))["ok"], true);
    assert_eq!(finish_wait(w2)["exit_code"], 7);
}

/// The process object berthd would write for `docker exec`.
fn exec_spec(c: &Ctr, args: &[&str]) -> std::path::PathBuf {
    let spec = berth_runtime::spec::build_json(&c.opts(args)).expect("spec");
    let mut p = spec["process"].clone();
    p["cgroup_path"] = json!(c.cgroup_path());
    p["seccomp"] = spec["linux"]["seccomp"].clone();
    let path = c.state.join("exec-1.json");
    std::fs::write(&path, p.to_string()).expect("exec spec");
    path
}

#[test]
fn exec_joins_the_container() {
    let c = Ctr::new("ex");
    c.write_spec(&c.opts(&["sleep", "1000"]));
    c.write_monitor_json(json!({"kind": "native"}), false, false);
    let ready = c.spawn();
    let pid = ready["pid"].as_i64().expect("pid");
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    let spec = exec_spec(
        &c,
        &[
            "sh",
            "-c",
            "cat /proc/1/cmdline; echo; hostname; grep Seccomp: /proc/self/status; ls /proc/self/fd; exit 5",
        ],
    );
    let out = Command::new(monitor_bin())
        .args(["exec", "--pid", &pid.to_string(), "--spec"])
        .arg(&spec)
        .output()
        .expect("exec");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("sleep\u{0}1000\u{0}"));
    assert_eq!(lines.next(), Some("testhost"));
    assert_eq!(lines.next(), Some("Seccomp:\t2"), "the container's filter");
    let fds: Vec<&str> = lines.collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "only stdio (and ls's own) open");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(cg.contains(&c.cgroup_path()));

    let spec = exec_spec(&c, &["nope"]);
    let out = Command::new(monitor_bin())
        .args(["exec", "--pid", &pid.to_string(), "--spec"])
        .arg(&spec)
        .output()
        .expect("exec");
    // As dockerd's exec: 126 for any command that cannot start, its text on the exec's
    // stdout (PROTOCOL.md "exec").
    assert_eq!(out.status.code(), Some(126));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("exec: \"nope\": executable file not found in $PATH"),
        "{out:?}"
    );
}

#[test]
fn monitor_mounts_an_overlay_rootfs_and_unmounts_it() {
    let c = Ctr::new("ovl");
    // The busybox tree becomes the lower layer; bundle/rootfs starts empty.
    let lower = c.tmp.path().join("lower");
    std::fs::rename(&c.rootfs, &lower).expect("move rootfs");
    std::fs::create_dir(&c.rootfs).expect("mkdir rootfs");
    let (upper, work) = (c.tmp.path().join("upper"), c.tmp.path().join("work"));
    std::fs::create_dir(&upper).expect("upper");
    std::fs::create_dir(&work).expect("work");
    let mounts = json!([{
        "fstype": "overlay",
        "source": "overlay",
        "options": [
            format!("lowerdir={}", lower.display()),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ],
    }]);
    c.write_spec(&c.opts(&["sh", "-c", "echo written > /hello; cat /hello"]));
    c.write_monitor_json_with(json!({"kind": "native"}), false, false, mounts);
    assert_eq!(c.spawn()["ok"], true);
    let (waiter, _) = c.connect_wait();
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    assert_eq!(finish_wait(waiter)["exit_code"], 0);
    assert_eq!(c.log_text("stdout"), "written\n");
    assert_eq!(
        std::fs::read_to_string(upper.join("hello")).expect("upper"),
        "written\n"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&c.rootfs.display().to_string()),
        "rootfs unmounted at exit"
    );
}

/// The monitor drops its code pages, RELRO's clean pages and its dead stack once idle after
/// `start` (100 ms), and again 1 s after later output or commands: it still logs, attaches,
/// answers and records the exit afterwards.
#[test]
fn monitor_keeps_working_after_dropping_its_pages_when_idle() {
    let c = Ctr::new("idle");
    let o = c.opts(&[
        "sh",
        "-c",
        "sleep 0.4; echo late; read x; echo got $x; exit 4",
    ]);
    c.write_spec(&o);
    c.write_monitor_json(json!({"kind": "native"}), false, true);
    assert_eq!(c.spawn()["ok"], true);
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    // Output after the first drop, then idle past the second.
    c.wait_for_log("late");
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert_eq!(c.cmd(json!({"cmd": "state"}))["status"], "running");
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let (waiter, _) = c.connect_wait();
    let (mut att, r) =
        c.connect(json!({"cmd": "attach", "stdin": true, "stdout": true, "stderr": true}));
    assert_eq!(r["ok"], true);
    att.write_all(b"y\n").expect("stdin");
    att.shutdown(std::net::Shutdown::Write).expect("half-close");
    let (out, _) = read_frames(&mut att);
    assert_eq!(out, "got y\n");
    assert_eq!(finish_wait(waiter)["exit_code"], 4);
    assert_eq!(c.log_text("stdout"), "late\ngot y\n");
}

/// Reports the monitor's memory (VmRSS and Pss) while it supervises a sleeping container; run
/// with `BERTH_TEST_MONITOR=target/release/berth-monitor -- --nocapture` to see the release
/// figures. Only a sanity bound is asserted.
#[test]
fn monitor_memory_footprint() {
    let c = Ctr::new("rss");
    c.write_spec(&c.opts(&["sleep", "1000"]));
    c.write_monitor_json(json!({"kind": "native"}), false, false);
    let ready = c.spawn();
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    let mon = ready["monitor_pid"].as_i64().expect("monitor pid");
    let status = std::fs::read_to_string(format!("/proc/{mon}/status")).expect("status");
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    let rollup = std::fs::read_to_string(format!("/proc/{mon}/smaps_rollup")).unwrap_or_default();
    let pss: Vec<String> = rollup
        .lines()
        .filter(|l| l.starts_with("Pss:") || l.starts_with("Private_"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let pss = pss.join(", ");
    eprintln!(
        "berth-monitor {}: VmRSS {rss_kb} kB, {pss}",
        monitor_bin().display()
    );
    if std::env::var_os("BERTH_TEST_SMAPS").is_some() {
        let smaps = std::fs::read_to_string(format!("/proc/{mon}/smaps")).unwrap_or_default();
        let mut name = String::new();
        for l in smaps.lines() {
            if l.contains('-') && l.split_whitespace().count() >= 5 && !l.contains(':')
                || l.split_whitespace()
                    .nth(1)
                    .is_some_and(|p| p.len() == 4 && (p.starts_with('r') || p.starts_with('-')))
            {
                name = l.to_string();
            } else if let Some(v) = l.strip_prefix("Rss:") {
                if v.trim() != "0 kB" {
                    eprintln!("{v:>10}  {name}");
                }
            }
        }
        eprintln!("{status}");
    }
    assert!(rss_kb < 16 * 1024, "monitor RSS {rss_kb} kB");
}

#[test]
fn network_namespace_new_joined_and_host() {
    let a = Ctr::new("netA");
    a.write_spec(&a.opts(&["sleep", "1000"]));
    a.write_monitor_json(json!({"kind": "native"}), false, false);
    let ready = a.spawn();
    assert_eq!(a.cmd(json!({"cmd": "start"}))["ok"], true);
    let pid = ready["pid"].as_i64().expect("pid");
    let ns_of = |p: &str| std::fs::read_link(p).expect("ns").display().to_string();
    let a_ns = ns_of(&format!("/proc/{pid}/ns/net"));
    let host_ns = ns_of("/proc/self/ns/net");
    assert_ne!(a_ns, host_ns, "a new network namespace");

    let b = Ctr::new("netB");
    let mut o = b.opts(&["readlink", "/proc/self/ns/net"]);
    o.netns = berth_runtime::spec::NetNs::Path(format!("/proc/{pid}/ns/net"));
    let (exit, out, _) = b.run(&o);
    assert_eq!(exit["exit_code"], 0);
    assert_eq!(out.trim(), a_ns, "joined the other container's namespace");

    let h = Ctr::new("netH");
    let mut o = h.opts(&["readlink", "/proc/self/ns/net"]);
    o.netns = berth_runtime::spec::NetNs::Host;
    let (_, out, _) = h.run(&o);
    assert_eq!(out.trim(), host_ns, "host network");
}

#[test]
fn pid_ipc_uts_namespaces_shared_and_host() {
    let a = Ctr::new("nsA");
    a.write_spec(&a.opts(&["sleep", "1000"]));
    a.write_monitor_json(json!({"kind": "native"}), false, false);
    let ready = a.spawn();
    assert_eq!(a.cmd(json!({"cmd": "start"}))["ok"], true);
    let pid = ready["pid"].as_i64().expect("pid");

    let b = Ctr::new("nsB");
    let mut o = b.opts(&[
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; readlink /proc/self/ns/ipc; hostname",
    ]);
    o.pid_ns = berth_runtime::spec::NsMode::Path(format!("/proc/{pid}/ns/pid"));
    o.ipc_ns = berth_runtime::spec::NsMode::Path(format!("/proc/{pid}/ns/ipc"));
    let (exit, out, err) = b.run(&o);
    assert_eq!(exit["exit_code"], 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "sleep\u{0}1000\u{0}",
        "sees the other container's pid 1"
    );
    let a_ipc = std::fs::read_link(format!("/proc/{pid}/ns/ipc")).expect("ipc");
    assert_eq!(lines[1], a_ipc.display().to_string());
    assert_eq!(lines[2], "testhost");

    let h = Ctr::new("nsH");
    let mut o = h.opts(&["sh", "-c", "hostname; ls -d /proc/[0-9]* | wc -l"]);
    o.pid_ns = berth_runtime::spec::NsMode::Host;
    o.uts_ns = berth_runtime::spec::NsMode::Host;
    let (exit, out, err) = h.run(&o);
    assert_eq!(exit["exit_code"], 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(lines[0], host.trim(), "host uts: hostname untouched");
    let n: usize = lines[1].trim().parse().expect("count");
    assert!(
        n > 10,
        "host pid namespace shows the host's processes ({n})"
    );
}

/// Prints how long spawn → ready → start → exit of `true` takes through the monitor (the
/// runtime's share of `docker run`'s latency). Nothing is asserted about time.
#[test]
fn monitor_run_latency_report() {
    let mut times = Vec::new();
    for _ in 0..5 {
        let c = Ctr::new("lat");
        let o = c.opts(&["true"]);
        c.write_spec(&o);
        c.write_monitor_json(json!({"kind": "native"}), false, false);
        let t = std::time::Instant::now();
        assert_eq!(c.spawn()["ok"], true);
        let (waiter, _) = c.connect_wait();
        assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
        assert_eq!(finish_wait(waiter)["exit_code"], 0);
        times.push(t.elapsed());
    }
    times.sort();
    eprintln!(
        "berth-monitor {}: run `true` median {:?} (min {:?})",
        monitor_bin().display(),
        times[2],
        times[0]
    );
}

#[test]
fn interactive_tty_shell_with_stdin_and_resize() {
    let c = Ctr::new("itty");
    let mut o = c.opts(&["sh"]);
    o.tty = true;
    c.write_spec(&o);
    c.write_monitor_json(json!({"kind": "native"}), true, true);
    assert_eq!(c.spawn()["ok"], true);
    let (mut att, r) =
        c.connect(json!({"cmd": "attach", "stdin": true, "stdout": true, "stderr": true}));
    assert_eq!(r["ok"], true);
    let (waiter, _) = c.connect_wait();
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    assert_eq!(
        c.cmd(json!({"cmd": "resize", "h": 44, "w": 132}))["ok"],
        true
    );
    att.write_all(b"echo $((6*7)); stty size; exit 5\n")
        .expect("stdin");
    assert_eq!(finish_wait(waiter)["exit_code"], 5);
    let (out, err) = read_frames(&mut att);
    assert_eq!(err, "", "a tty has one stream");
    assert!(out.contains("42\r\n"), "{out:?}");
    assert!(out.contains("44 132\r\n"), "{out:?}");
}
