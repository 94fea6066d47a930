//! Detach keys (issue 4): ctrl-p ctrl-q leaves `docker run -it` / `docker attach` and
//! `berth run -it` in a real pty with the container still running; the daemon honours
//! `detachKeys` on a TTY attach (docker-py's socket) and ends only that attach (a non-TTY
//! attach passes the keys through, as dockerd's: `exec_attach_fidelity.rs`).

use berth_tests::TestDaemon;

/// Python that runs `argv` in a pty, waits for `expect` after sending each input, then
/// sends ctrl-p ctrl-q and prints the exit status.
fn pty_script(argv: &[&str]) -> String {
    format!(
        r#"
import os, pty, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp({prog:?}, {argv:?})
buf = b''
def wait_for(s, t=20):
    global buf
    end = time.time() + t
    while s not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return s in buf
time.sleep(1.0)
os.write(fd, b'echo mark$((20+22))\r')
assert wait_for(b'mark42'), buf
os.write(fd, b'\x10\x11')
end = time.time() + 15
while time.time() < end:
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        wait_for(b'\xff', 0.5)
        import sys
        sys.stderr.write(repr(buf[-300:]))
        print('exit', os.waitstatus_to_exitcode(st))
        break
    wait_for(b'\xff', 0.2)
else:
    os.kill(pid, 9)
    print('hung', buf)
"#,
        prog = argv[0],
        argv = argv
    )
}

fn running(d: &TestDaemon, name: &str) -> String {
    d.docker(&["inspect", "-f", "{{.State.Running}}", name])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn detach_keys_leave_the_container_running() {
    let d = TestDaemon::start();
    d.import_busybox();
    let host = d.host();
    let docker = ["/usr/local/bin/docker", "-H", &host];
    let run: Vec<&str> = docker
        .iter()
        .copied()
        .chain(["run", "-it", "--name", "dk", "busybox", "sh"])
        .collect();
    let o = d.python(&pty_script(&run));
    assert_eq!(o.ok().trim(), "exit 0", "{o:?}");
    assert_eq!(running(&d, "dk"), "true");
    let attach: Vec<&str> = docker.iter().copied().chain(["attach", "dk"]).collect();
    // The docker CLI's own answer on `attach`: "read escape sequence", status 1.
    let o = d.python(&pty_script(&attach));
    assert_eq!(o.ok().trim(), "exit 1", "{o:?}");
    assert!(o.stderr.contains("read escape sequence"), "{o:?}");
    assert_eq!(running(&d, "dk"), "true");
    let berth = TestDaemon::berth_bin().display().to_string();
    let brun = [
        berth.as_str(),
        "-H",
        &host,
        "run",
        "-it",
        "--detach-keys",
        "ctrl-p,ctrl-q",
        "--name",
        "bk",
        "busybox",
        "sh",
    ];
    assert_eq!(d.python(&pty_script(&brun)).ok().trim(), "exit 0");
    assert_eq!(running(&d, "bk"), "true");
    let battach = [
        berth.as_str(),
        "-H",
        &host,
        "attach",
        "--detach-keys",
        "ctrl-p,ctrl-q",
        "bk",
    ];
    let o = d.python(&pty_script(&battach));
    assert_eq!(o.ok().trim(), "exit 1", "{o:?}");
    assert!(o.stderr.contains("read escape sequence"), "{o:?}");
    assert_eq!(running(&d, "bk"), "true");
    // Daemon side: a TTY attach with detachKeys ends at the sequence; cat keeps running.
    d.docker(&["run", "-d", "-i", "-t", "--name", "dk2", "busybox", "cat"])
        .ok();
    let py = d.python(
        "import time, socket\ns = c.api.attach_socket('dk2', params={'stdin': 1, 'stdout': 1, 'stream': 1, 'detachKeys': 'ctrl-x,x'})\nsk = s._sock\nsk.settimeout(10)\nsk.sendall(b'hello\\n')\ngot = b''\nwhile b'hello' not in got:\n    got += sk.recv(4096)\nsk.sendall(b'\\x18x')\nwhile True:\n    b = sk.recv(4096)\n    if not b:\n        break\nprint('closed', c.containers.get('dk2').status)",
    );
    assert_eq!(py.ok().trim(), "closed running");
    let bad = d.request(
        "POST",
        "/containers/dk2/attach?stream=1&stdin=1&detachKeys=ctrl-1",
        None,
    );
    assert_eq!(bad.0, 400, "{bad:?}");
    assert!(
        bad.2.contains("Invalid detachKeys (ctrl-1) provided"),
        "{bad:?}"
    );
    d.docker(&["rm", "-f", "dk", "bk", "dk2"]).ok();
}
