//! The monitor binary with the native runtime, driven over its socket as berthd does:
//! output in the log and on attach, exit codes, start errors, pause/resume, survival of its
//! parent, and the OOM flag.

mod runtime_support;

use runtime_support::*;
use serde_json::json;

#[test]
fn echo_appears_in_log_and_exit_code_is_recorded() {
    let c = Ctr::new("echo");
    let (exit, out, err) = c.run(&c.opts(&["sh", "-c", "echo hello; echo oops >&2; exit 3"]));
    assert_eq!(exit["exit_code"], 3, "{exit}");
    assert_eq!(exit["oom_killed"], false);
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    let ex: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.state.join("exit.json")).expect("exit.json"))
            .expect("json");
    assert_eq!(ex["exit_code"], 3);
    assert!(!c.state.join("monitor.sock").exists());
}
