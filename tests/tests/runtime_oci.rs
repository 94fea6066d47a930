//! The OCI backend with Debian's runc, through the monitor: the same lifecycle as the native
//! runtime (output, exit codes, exec errors, tty over the console socket, pause/resume, kill,
//! exec, OOM flag, Docker's capability set).

mod runtime_support;

use runtime_support::*;
use serde_json::{json, Value};

const RUNC: &str = "/usr/sbin/runc";

fn runc() -> Option<Value> {
    std::path::Path::new(RUNC)
        .exists()
        .then(|| json!({"kind": "oci", "path": RUNC, "args": []}))
}

#[test]
fn runc_runs_echo_with_docker_defaults() {
    let Some(rt) = runc() else {
        eprintln!("runc not installed: skipped");
        return;
    };
    let c = Ctr::new("ociecho");
    let o = c.opts(&["sh", "-c", "echo hello; echo oops >&2; hostname; grep CapEff /proc/self/status; ls /proc/self/fd | tr '\\n' ' '; echo; grep Seccomp: /proc/self/status; unshare -U true 2>/dev/null || echo userns denied; exit 3"]);
    let (exit, out, err) = c.run_with(&o, rt);
    assert_eq!(exit["exit_code"], 3, "{exit} {err}");
    assert_eq!(err, "oops\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello");
    assert_eq!(lines[1], "testhost");
    assert_eq!(lines[2], "CapEff:\t00000000a80425fb");
    assert_eq!(lines[3].trim(), "0 1 2 3");
    assert_eq!(
        lines[4], "Seccomp:\t2",
        "runc applies the profile from the spec"
    );
    assert_eq!(lines[5], "userns denied");
    assert!(!c.state.join("monitor.sock").exists());
    assert!(!std::path::Path::new("/sys/fs/cgroup/memory")
        .join(c.cgroup_path())
        .exists());
}

#[test]
fn runc_missing_command_is_reported_at_create() {
    let Some(rt) = runc() else { return };
    let c = Ctr::new("ocinf");
    c.write_spec(&c.opts(&["nope"]));
    c.write_monitor_json(rt, false, false);
    let ready = c.spawn();
    assert_eq!(ready["ok"], false, "{ready}");
    assert_eq!(ready["exit_code"], 127, "{ready}");
    assert_eq!(
        ready["error"],
        "exec: \"nope\": executable file not found in $PATH"
    );
}

#[test]
fn runc_tty_pause_resume_kill() {
    let Some(rt) = runc() else { return };
    let c = Ctr::new("ocitty");
    let mut o = c.opts(&[
        "sh",
        "-c",
        "tty; stty size; trap 'echo bye; exit 9' TERM; echo armed; while true; do sleep 0.05; done",
    ]);
    o.tty = true;
    c.write_spec(&o);
    c.write_monitor_json(rt, true, false);
    let ready = c.spawn();
    assert_eq!(ready["ok"], true, "{ready}");
    let (mut att, r) = c.connect(json!({"cmd": "attach", "stdout": true, "stderr": true}));
    assert_eq!(r["ok"], true);
    let (waiter, _) = c.connect_wait();
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    // PID 1 drops SIGTERM until its trap is set: signal only once it said so.
    c.wait_for_log("armed");
    assert_eq!(c.cmd(json!({"cmd": "pause"}))["ok"], true);
    assert_eq!(c.cmd(json!({"cmd": "state"}))["status"], "paused");
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer").join(c.cgroup_path());
    assert_eq!(
        std::fs::read_to_string(freezer.join("freezer.state"))
            .map(|s| s.trim().to_string())
            .ok(),
        Some("FROZEN".to_string())
    );
    assert_eq!(c.cmd(json!({"cmd": "resume"}))["ok"], true);
    assert_eq!(c.cmd(json!({"cmd": "kill", "signal": 15}))["ok"], true);
    let exit = finish_wait(waiter);
    assert_eq!(exit["exit_code"], 9, "{exit}");
    let (out, _) = read_frames(&mut att);
    assert!(
        out.contains("/dev/pts/0") || out.contains("/dev/console"),
        "{out:?}"
    );
    assert!(out.contains("30 100\r\n"), "{out:?}");
    assert!(out.contains("bye\r\n"), "{out:?}");
}

#[test]
fn runc_exec_and_oom() {
    let Some(rt) = runc() else { return };
    let c = Ctr::new("ociex");
    c.write_spec(&c.opts(&["sleep", "1000"]));
    c.write_monitor_json(rt.clone(), false, false);
    let ready = c.spawn();
    assert_eq!(ready["ok"], true, "{ready}");
    assert_eq!(c.cmd(json!({"cmd": "start"}))["ok"], true);
    let spec =
        berth_runtime::spec::build_json(&c.opts(&["sh", "-c", "cat /proc/1/cmdline; exit 4"]))
            .expect("spec");
    let path = c.state.join("exec-1.json");
    std::fs::write(&path, spec["process"].to_string()).expect("w");
    let out = std::process::Command::new(monitor_bin())
        .args(["exec", "--pid", &ready["pid"].to_string(), "--spec"])
        .arg(&path)
        .output()
        .expect("exec");
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sleep\u{0}1000\u{0}");
    let (waiter, _) = c.connect_wait();
    assert_eq!(
        c.cmd(json!({"cmd": "kill", "signal": 9, "all": true}))["ok"],
        true
    );
    assert_eq!(finish_wait(waiter)["exit_code"], 137);

    let c = Ctr::new("ocioom");
    let mut o = c.opts(&["tail", "/dev/zero"]);
    o.memory = 32 << 20;
    o.memory_swap = 32 << 20;
    let (exit, _, _) = c.run_with(&o, rt);
    assert_eq!(exit["oom_killed"], true, "{exit}");
    assert_eq!(exit["exit_code"], 137, "{exit}");
}
