//! `docker exec` details beyond the lifecycle test (issue 4): the stream ends when the exec'd
//! process exits, even when a background child keeps its stdout open (as Docker's does), with
//! the output it wrote and its exit code, with and without a TTY.

use berth_tests::TestDaemon;

#[test]
fn exec_ends_with_its_process_not_its_background_children() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.sleeper("ex");
    let script = "sleep 120 & echo started; echo oops >&2; exit 3";
    let t = std::time::Instant::now();
    let out = d.docker(&["exec", "ex", "sh", "-c", script]);
    assert_eq!(out.status, 3, "{out:?}");
    assert_eq!(out.stdout, "started\n");
    assert_eq!(out.stderr, "oops\n");
    // The background child lives on in the container. (With a TTY it gets the terminal's
    // SIGHUP when the session leader exits, as under Docker.)
    let ps = d
        .docker(&["exec", "ex", "ps", "-o", "args"])
        .ok()
        .to_string();
    assert_eq!(ps.matches("sleep 120").count(), 1, "{ps}");
    let tty = d.docker(&[
        "exec",
        "-t",
        "ex",
        "sh",
        "-c",
        "sleep 120 & echo started; exit 4",
    ]);
    assert_eq!(tty.status, 4, "{tty:?}");
    assert_eq!(tty.stdout, "started\r\n");
    // Not a timing assertion on speed: only that nobody waited for the 120 s sleeps.
    assert!(
        t.elapsed() < std::time::Duration::from_secs(100),
        "exec waited for its background children"
    );
    // Everything a process wrote before it exited arrives.
    let big = d.docker(&["exec", "ex", "head", "-c", "3000000", "/dev/zero"]);
    assert_eq!(big.ok().len(), 3_000_000);
    d.docker(&["rm", "-f", "ex"]).ok();
}
