//! A berthd that must refuse to start: exit status 1, one line on stderr, and no data root
//! written (the start-up checks run before anything touches disk).

use crate::TestDaemon;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A generous bound for berthd to give up — a hang guard, not a timing.
const PATIENCE: Duration = Duration::from_secs(120);

/// Starts berthd (`target/debug/berthd`) with `config` plus private folders, expects it to
/// fail, and checks the one-line message (which must contain each of `words`) and that the
/// data root was not created. Returns the line.
pub fn berthd_refuses(config: Value, words: &[&str]) -> String {
    let tmp = tempfile::Builder::new()
        .prefix("berth-plugins-")
        .tempdir()
        .expect("tmp");
    let t = tmp.path();
    let mut full = json!({
        "data-root": t.join("root"),
        "exec-root": t.join("exec"),
        "pidfile": t.join("berthd.pid"),
        "hosts": [format!("unix://{}", t.join("berth.sock").display())],
    });
    if let (Value::Object(m), Value::Object(extra)) = (&mut full, config) {
        m.extend(extra);
    }
    let file = t.join("daemon.json");
    std::fs::write(&file, full.to_string()).expect("write config");
    let stderr_path = t.join("stderr");
    let mut child = Command::new(TestDaemon::berthd_bin())
        .arg("--config-file")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn berthd (run `cargo build --workspace` first)");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berthd did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "exit status; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    for w in words {
        assert!(lines[0].contains(w), "{w:?} in {:?}", lines[0]);
    }
    assert!(!t.join("root").exists(), "the data root stays untouched");
    lines[0].to_string()
}
