//! berthd killed with SIGKILL while containers run, then started again (issue 4's acceptance):
//! five running containers still run under the same processes and `docker ps` lists them,
//! `logs -f` follows their new output, exec/stop/kill/wait control them again, a container
//! that exited meanwhile shows its exit code, and a `--restart always` container that died
//! meanwhile is restarted.

use berth_tests::TestDaemon;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A hang guard for things that happen in the background, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

const KEEPERS: [&str; 5] = ["keep0", "keep1", "keep2", "keep3", "keep4"];

fn inspect(d: &TestDaemon, fmt: &str, name: &str) -> String {
    d.docker(&["inspect", "-f", fmt, name])
        .ok()
        .trim()
        .to_string()
}

/// `docker run -d --name NAME [flags...] busybox sh -c SCRIPT`; returns the init's host pid.
fn run(d: &TestDaemon, name: &str, flags: &[&str], script: &str) -> i32 {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(flags);
    args.extend(["busybox", "sh", "-c", script]);
    d.docker(&args).ok();
    inspect(d, "{{.State.Pid}}", name).parse().unwrap_or(0)
}

/// Waits until process `pid` is gone (or a zombie).
fn wait_gone(pid: i32) {
    let deadline = Instant::now() + PATIENCE;
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(Instant::now() < deadline, "process {pid} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn containers_survive_kill_9_of_berthd() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let ticker = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";
    let pids: Vec<i32> = KEEPERS.iter().map(|n| run(&d, n, &[], ticker)).collect();
    assert!(pids.iter().all(|p| *p > 0), "{pids:?}");
    // Two that end while berthd is away: wait on their `go` file so neither can exit early.
    let quits = run(
        &d,
        "quits",
        &[],
        "while [ ! -e /go ]; do sleep 0.05; done; exit 9",
    );
    let always = run(
        &d,
        "always",
        &["--restart", "always"],
        "while [ ! -e /go ]; do sleep 0.05; done; exit 1",
    );

    d.kill9();
    for name in ["quits", "always"] {
        let pid = if name == "quits" { quits } else { always };
        std::fs::write(format!("/proc/{pid}/root/go"), "").expect("writing /go");
    }
    wait_gone(quits);
    wait_gone(always);
    d.restart();

    // The five still run, under the same processes (re-attached, not restarted).
    let listed = d.docker(&["ps", "--format", "{{.Names}}"]).ok().to_string();
    for (name, pid) in KEEPERS.iter().zip(&pids) {
        assert!(listed.lines().any(|l| l == *name), "{name} in ps: {listed}");
        assert_eq!(
            inspect(
                &d,
                "{{.State.Status}} {{.State.Pid}} {{.RestartCount}}",
                name
            ),
            format!("running {pid} 0")
        );
    }
    // The one that exited meanwhile shows its exit code and when it finished.
    assert_eq!(
        inspect(&d, "{{.State.Status}} {{.State.ExitCode}}", "quits"),
        "exited 9"
    );
    assert!(!inspect(&d, "{{.State.FinishedAt}}", "quits").starts_with("0001"));
    // The --restart always one is restarted.
    let deadline = Instant::now() + PATIENCE;
    while inspect(&d, "{{.RestartCount}}", "always") == "0" {
        assert!(Instant::now() < deadline, "always was not restarted");
        std::thread::sleep(Duration::from_millis(100));
    }

    // logs -f follows new output.
    let follow = d.docker_lines(&["logs", "-f", "--tail", "0", "keep0"]);
    let line = follow.next(PATIENCE);
    drop(follow);
    assert!(
        line.as_deref().is_some_and(|l| l.starts_with("tick ")),
        "{line:?}"
    );

    // They are under control again: exec, stop (sh ignores TERM as PID 1), kill, wait.
    assert_eq!(d.docker(&["exec", "keep1", "echo", "in"]).ok(), "in\n");
    d.docker(&["stop", "-t", "1", "keep2"]).ok();
    assert_eq!(
        inspect(&d, "{{.State.Status}} {{.State.ExitCode}}", "keep2"),
        "exited 137"
    );
    let waiter = d
        .docker_cmd(&["wait", "keep3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker wait");
    d.docker(&["kill", "keep3"]).ok();
    let waited = waiter.wait_with_output().expect("wait output");
    assert_eq!(String::from_utf8_lossy(&waited.stdout), "137\n");
    let mut all = vec!["rm", "-f", "quits", "always"];
    all.extend(KEEPERS);
    d.docker(&all).ok();
    for pid in pids {
        wait_gone(pid);
    }
}
