//! `crictl logs -f` against berthd's CRI: crictl follows the CRI-format file at the path the
//! container's status names, so it must see lines written after it started, in order, stdout
//! and stderr apart, and end by itself once the container has exited. Skipped, with a
//! message, without crictl.

use berth_tests::{Crictl, TestDaemon};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A hang guard for each wait, not a timing assertion.
const WAIT: Duration = Duration::from_secs(60);

#[test]
fn logs_follow_sees_new_lines_and_ends_when_the_container_exits() {
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();
    let pod = json!({
        "metadata": {"name": "follow", "namespace": "default", "uid": "uid-follow", "attempt": 0},
        "log_directory": d.dir().join("pod-logs"),
    });
    let pod_cfg = d.dir().join("pod.json");
    std::fs::write(&pod_cfg, pod.to_string()).expect("write pod config");
    let pod_cfg = pod_cfg.display().to_string();
    // It prints one line, waits for /tmp/go (made by an exec below), prints two more, ends.
    let ctr = json!({
        "metadata": {"name": "talker"},
        "image": {"image": "busybox"},
        "command": ["sh", "-c",
            "echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo two; echo err >&2; echo three"],
        "log_path": "talker/0.log",
    });
    let ctr_cfg = d.dir().join("ctr.json");
    std::fs::write(&ctr_cfg, ctr.to_string()).expect("write container config");
    let p = c.ok(&["runp", &pod_cfg]).trim().to_string();
    let id = c
        .ok(&["create", &p, &ctr_cfg.display().to_string(), &pod_cfg])
        .trim()
        .to_string();
    c.ok(&["start", &id]);

    let mut follow = c
        .command(&["logs", "-f", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn crictl logs -f");
    let (tx, rx) = mpsc::channel();
    let stdout = follow.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(WAIT);
    // Only now the container may go on: what follows was written after crictl started.
    c.ok(&["exec", "-s", &id, "touch", "/tmp/go"]);
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(WAIT) {
        rest.push(line);
        if rest.len() == 2 {
            break;
        }
    }
    // crictl ends on its own once the container has exited.
    let deadline = Instant::now() + WAIT;
    let ended = loop {
        match follow.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => break None,
        }
    };
    if ended.is_none() {
        follow.kill().ok();
        follow.wait().ok();
    }
    reader.join().ok();
    c.run(&["rmp", "-f", &p]);

    assert_eq!(first.as_deref(), Ok("one"), "the line written before");
    assert_eq!(
        rest,
        ["two", "three"],
        "stdout lines written after, in order"
    );
    assert!(
        ended.is_some_and(|s| s.success()),
        "crictl logs -f ended with the container: {ended:?}"
    );
}
