//! The behaviour checks of the suite: lifecycle, exit codes, signals, stdio, TTY, exec and
//! limits (isolation is `isolation.rs`).

use crate::Suite;
use std::time::{Duration, Instant};

/// Polls `f` for up to ten seconds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The container's init PID on the host (it must be running).
#[track_caller]
pub fn host_pid(s: &Suite<'_>, id: &str) -> i32 {
    let pid: i32 = s.inspect(id, "{{.State.Pid}}").parse().unwrap_or(0);
    assert!(pid > 0, "[{}] {id} has no PID", s.runtime);
    pid
}

/// create → `created`; start → `running` with a live PID; pause and unpause; kill →
/// `exited`; rm → gone. An unknown runtime name is refused with Docker's text.
pub fn lifecycle(s: &Suite<'_>) {
    let rt = s.runtime;
    let id = s.ok(&[
        "create",
        "--runtime",
        rt,
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(s.inspect(&id, "{{.State.Status}}"), "created", "[{rt}]");
    assert_eq!(s.inspect(&id, "{{.HostConfig.Runtime}}"), rt);
    s.ok(&["start", &id]);
    assert_eq!(s.inspect(&id, "{{.State.Status}}"), "running", "[{rt}]");
    let pid = host_pid(s, &id);
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "[{rt}] the init {pid} is not alive"
    );
    s.ok(&["pause", &id]);
    assert_eq!(s.inspect(&id, "{{.State.Status}}"), "paused", "[{rt}]");
    s.ok(&["unpause", &id]);
    assert_eq!(s.inspect(&id, "{{.State.Status}}"), "running", "[{rt}]");
    s.ok(&["kill", &id]);
    assert_eq!(s.ok(&["wait", &id]), "137", "[{rt}]");
    assert_eq!(s.inspect(&id, "{{.State.Status}}"), "exited", "[{rt}]");
    s.ok(&["rm", &id]);
    assert_ne!(
        s.cli(&["inspect", &id]).status,
        0,
        "[{rt}] {id} still exists"
    );
    let o = s.cli(&[
        "run",
        "--rm",
        "--runtime",
        "no-such-runtime",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status, 125, "[{rt}] unknown runtime: {o:?}");
    assert!(
        o.stderr
            .contains("Unknown runtime specified no-such-runtime"),
        "{o:?}"
    );
}

/// 0, 3, 126 for a file that is not executable, 127 for a command not found, 137 for SIGKILL.
pub fn exit_codes(s: &Suite<'_>) {
    let rt = s.runtime;
    let none = ["--network", "none"];
    for (cmd, code) in [
        (&["true"][..], 0),
        (&["sh", "-c", "exit 3"][..], 3),
        (&["/etc/passwd"][..], 126),
        (&["no-such-command"][..], 127),
    ] {
        let o = s.run(&none, cmd);
        assert_eq!(o.status, code, "[{rt}] {cmd:?}: {o:?}");
    }
    let id = s.detached(&none, &["sleep", "300"]);
    s.ok(&["kill", "-s", "KILL", &id]);
    assert_eq!(s.ok(&["wait", &id]), "137", "[{rt}] SIGKILL");
    s.remove(&id);
}

/// A TERM the process traps ends it with the trap's code (`docker stop`); an untrapped TERM
/// sent by `docker kill -s TERM` to a shell's child works too.
pub fn signals(s: &Suite<'_>) {
    let rt = s.runtime;
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    let id = s.detached(&["--network", "none"], &["sh", "-c", script]);
    eventually("the trap to be set", || {
        s.cli(&["logs", &id]).stdout.contains("ready")
    });
    s.ok(&["stop", "-t", "10", &id]);
    assert_eq!(
        s.inspect(&id, "{{.State.ExitCode}}"),
        "7",
        "[{rt}] TERM trapped"
    );
    assert!(s.ok(&["logs", &id]).contains("got-term"), "[{rt}]");
    s.remove(&id);
    let id = s.detached(&["--network", "none"], &["sleep", "300"]);
    s.ok(&["kill", "-s", "TERM", &id]);
    // sleep as PID 1 has no handler: the kernel ignores the signal for a namespace's init,
    // so the runtime's kill must not pretend otherwise; docker kill -s KILL ends it.
    std::thread::sleep(Duration::from_millis(300));
    let status = s.inspect(&id, "{{.State.Status}}");
    assert_eq!(
        status, "running",
        "[{rt}] PID 1 without a handler ignores TERM"
    );
    s.ok(&["kill", &id]);
    assert_eq!(s.ok(&["wait", &id]), "137", "[{rt}]");
    s.remove(&id);
}

/// stdout and stderr arrive apart; stdin (`-i`) reaches the process.
pub fn stdio(s: &Suite<'_>) {
    let rt = s.runtime;
    let o = s.run(
        &["--network", "none"],
        &["sh", "-c", "echo out; echo err >&2"],
    );
    assert_eq!((o.status, o.stdout.as_str()), (0, "out\n"), "[{rt}] {o:?}");
    assert_eq!(o.stderr, "err\n", "[{rt}] {o:?}");
    let o = s.run_stdin(
        &["-i", "--network", "none"],
        &["sh", "-c", "cat; echo done"],
        Some(b"line one\nline two\n"),
    );
    assert_eq!(
        o.stdout, "line one\nline two\ndone\n",
        "[{rt}] stdin: {o:?}"
    );
}

/// `-t` gives the process a terminal of its own.
pub fn tty(s: &Suite<'_>) {
    let rt = s.runtime;
    let o = s.run(
        &["-t", "--network", "none"],
        &["sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo both-tty"],
    );
    let out = o.stdout.replace('\r', "");
    assert_eq!(o.status, 0, "[{rt}] tty: {o:?}");
    let mut lines = out.lines();
    let dev = lines.next().unwrap_or("");
    assert!(dev.starts_with("/dev/pts/"), "[{rt}] tty: {o:?}");
    assert_eq!(lines.next(), Some("both-tty"), "[{rt}] tty: {o:?}");
}

/// `docker exec`: exit code, `-e`, `-w`, and the container's pid namespace.
pub fn exec(s: &Suite<'_>) {
    let rt = s.runtime;
    let id = s.detached(&["--network", "none"], &["sleep", "300"]);
    let o = s.cli(&["exec", &id, "sh", "-c", "exit 5"]);
    assert_eq!(o.status, 5, "[{rt}] exec exit code: {o:?}");
    let env = s.ok(&["exec", "-e", "CONF=formance", &id, "sh", "-c", "echo $CONF"]);
    assert_eq!(env, "formance", "[{rt}] exec -e");
    assert_eq!(
        s.ok(&["exec", "-w", "/tmp", &id, "pwd"]),
        "/tmp",
        "[{rt}] exec -w"
    );
    let one = s.ok(&["exec", &id, "cat", "/proc/1/cmdline"]);
    assert!(one.starts_with("sleep"), "[{rt}] exec sees pid 1 {one:?}");
    s.remove(&id);
}

/// The host-side folder of the container's cgroup for `controller` (v1), or its v2 folder.
fn cgroup_dir(pid: i32, controller: &str) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        if v2 && ctrls.is_empty() {
            return Some(format!("/sys/fs/cgroup{path}").into());
        }
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| format!("/sys/fs/cgroup/{controller}{path}").into())
    })
}

fn read(dir: &std::path::Path, files: &[&str]) -> String {
    files
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

/// `-m` and `--pids-limit` are in force in the container's cgroups.
pub fn limits(s: &Suite<'_>) {
    let rt = s.runtime;
    let opts = ["--network", "none", "-m", "64m", "--pids-limit", "42"];
    let id = s.detached(&opts, &["sleep", "300"]);
    let pid = host_pid(s, &id);
    let mem = cgroup_dir(pid, "memory").expect("memory cgroup");
    let pids = cgroup_dir(pid, "pids").expect("pids cgroup");
    let limit = read(&mem, &["memory.max", "memory.limit_in_bytes"]);
    assert_eq!(
        limit,
        "67108864",
        "[{rt}] memory limit in {}",
        mem.display()
    );
    assert_eq!(read(&pids, &["pids.max"]), "42", "[{rt}] pids limit");
    s.remove(&id);
}
