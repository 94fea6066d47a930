//! A non-TTY container's stdin across attaches, against a private real dockerd (issue 16):
//! with `StdinOnce` (`docker run -i`, `docker create -i` + `start -ai`, docker-py without
//! `detach`) the end of the attached client's stdin closes the container's; a client that
//! goes away without that end (closes its socket: a detach) leaves it open, and so does any
//! end without `StdinOnce` (`docker run -d -i`), where the attach's output ends at once and a
//! later attach writes to the same stdin. Detach keys pass through a non-TTY attach. Without
//! dockerd the berth side is checked against the values dockerd gives.

use berth_tests::{sdk_json, RealEngine, TestDaemon};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// The docker-py calls: for a container with and without a TTY and `StdinOnce`, an attach
/// that sends a line, then ends its input (`eof`: a half-close) or stays (`left`: idle,
/// still connected); what it read, whether its stream ended, the container's state a moment
/// later, and (while it runs) what a second attach gets through the same stdin, whether the
/// end of that one's input ends its stream, and the state after it.
const SDK: &str = r#"
params = {'stdin': 1, 'stdout': 1, 'stderr': 1, 'stream': 1}
hc = api.create_host_config(network_mode='none')
def state(n):
    s = api.inspect_container(n)['State']
    return [s['Status'], s['ExitCode']]
for tty, once, how in ((False, True, 'eof'), (False, True, 'left'), (False, False, 'eof'),
                       (False, False, 'left'), (True, True, 'eof'), (True, False, 'eof')):
    n = 'c_%s_%s_%s' % ('tty' if tty else 'raw', 'once' if once else 'open', how)
    api.create_container('busybox', ['cat'], stdin_open=True, detach=not once, tty=tty,
                         name=n, host_config=hc)
    i = api.inspect_container(n)['Config']
    r = [i['OpenStdin'], i['StdinOnce']]
    sk = api.attach_socket(n, params=params)._sock
    api.start(n)
    # The detach keys pass through a non-TTY attach (a TTY one would detach).
    sk.sendall(b'x\n' if tty else b'x\x10\x11\n')
    r.append(text(until(sk, b'x\r\nx\r\n' if tty else b'x\x10\x11\n')))
    if how == 'eof':
        sk.shutdown(socket.SHUT_WR)
        got, st = drain(sk, 3)
        r += [text(got), st]
    time.sleep(1)
    r.append(state(n))
    if state(n)[0] == 'running':
        sk2 = api.attach_socket(n, params=params)._sock
        sk2.sendall(b'again\n')
        r.append(text(until(sk2, b'again\r\nagain\r\n' if tty else b'again\n')))
        sk2.shutdown(socket.SHUT_WR)
        r.append(drain(sk2, 3)[1])
        time.sleep(1)
        r.append(state(n))
    out[n] = r
    api.remove_container(n, force=True)
"#;

/// Runs the docker CLI against `host` with `stdin`, killed after `secs`: (status, stdout).
fn cli(host: &str, args: &[&str], stdin: &[u8], secs: u32) -> (i32, String) {
    let mut child = Command::new("timeout")
        .args(["-s", "KILL", &secs.to_string(), "docker", "-H", host])
        .args(args)
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker");
    if let Some(mut i) = child.stdin.take() {
        // A moment for an attach to be through before its input comes.
        std::thread::sleep(std::time::Duration::from_secs(1));
        let _ = i.write_all(stdin);
    }
    let o = child.wait_with_output().expect("docker");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// The docker CLI's ways in, on one engine: `run -i` with piped input, `run -d -i` then an
/// attach whose input ends (it stays attached: killed after a while; the container keeps
/// its stdin, as a second attach shows), `create -i` then `start -ai`.
fn cli_cases(host: &str) -> Value {
    let state = |n: &str| {
        let f = "{{.Config.OpenStdin}} {{.Config.StdinOnce}} {{.State.Status}}";
        cli(host, &["inspect", "-f", f, n], b"", 30)
            .1
            .trim()
            .to_string()
    };
    let mut out = serde_json::Map::new();
    let run_i = cli(
        host,
        &[
            "run",
            "-i",
            "--name",
            "ri",
            "--network",
            "none",
            "busybox",
            "cat",
        ],
        b"a\x10\x11b\n",
        30,
    );
    out.insert("run_i".into(), json!([run_i, state("ri")]));
    cli(
        host,
        &[
            "run",
            "-d",
            "-i",
            "--name",
            "rd",
            "--network",
            "none",
            "busybox",
            "cat",
        ],
        b"",
        30,
    );
    let first = cli(host, &["attach", "rd"], b"one\n", 4);
    let second = cli(host, &["attach", "rd"], b"two\n", 4);
    let logs = cli(host, &["logs", "rd"], b"", 30).1;
    // What each attach prints before the CLI is stopped races its echo on dockerd too (seen
    // both ways): compared are how each ends, the logs (both lines reached the container) and
    // the state.
    out.insert(
        "run_d_i".into(),
        json!([first.0, second.0, logs, state("rd")]),
    );
    cli(
        host,
        &[
            "create",
            "-i",
            "--name",
            "ci",
            "--network",
            "none",
            "busybox",
            "cat",
        ],
        b"",
        30,
    );
    let start = cli(host, &["start", "-ai", "ci"], b"three\n", 30);
    out.insert("start_ai".into(), json!([start, state("ci")]));
    for n in ["ri", "rd", "ci"] {
        cli(host, &["rm", "-f", n], b"", 30);
    }
    Value::Object(out)
}

/// What dockerd answers (checked on berth when dockerd is not there).
fn expected_of_dockerd() -> Value {
    let x = "\u{1}\0\0\0\0\0\0\u{4}x\u{10}\u{11}\n";
    let again = "\u{1}\0\0\0\0\0\0\u{6}again\n";
    let (run, exited) = (json!(["running", 0]), json!(["exited", 0]));
    json!({
        "c_raw_once_eof": [true, true, x, "", "closed", exited],
        "c_raw_once_left": [true, true, x, run, again, "closed", exited],
        "c_raw_open_eof": [true, false, x, "", "closed", run, again, "closed", run],
        "c_raw_open_left": [true, false, x, run, again, "closed", run],
        "c_tty_once_eof": [true, true, "x\r\nx\r\n", "", "closed", run, "again\r\nagain\r\n", "closed",
            run],
        "c_tty_open_eof": [true, false, "x\r\nx\r\n", "", "closed", run, "again\r\nagain\r\n", "closed",
            run],
        // The CLI's attach stays until it is killed; its output ended with its input.
        "run_d_i": [-1, -1, "one\ntwo\n", "true false running"],
        "run_i": [[0, "a\u{10}\u{11}b\n"], "true true exited"],
        "start_ai": [[0, "three\n"], "true true exited"],
    })
}

#[test]
fn stdin_stays_open_unless_stdin_once_ends_it_as_dockerd() {
    let d = TestDaemon::start();
    let real = RealEngine::start();
    match &real {
        Some(r) => r.load_busybox_of(&d),
        None => d.import_busybox(),
    }
    let run = |host: &str| {
        let mut v = sdk_json(host, SDK);
        if let (Some(o), Value::Object(c)) = (v.as_object_mut(), cli_cases(host)) {
            o.extend(c);
        }
        v
    };
    let ours = run(&d.host());
    let expected = expected_of_dockerd();
    let Some(real) = real else {
        eprintln!("SKIP: no dockerd; berth checked against dockerd's known answers");
        assert_eq!(ours, expected);
        return;
    };
    let theirs = run(&format!("unix://{}", real.path("docker.sock").display()));
    berth_tests::assert_same_members(&ours, &theirs);
    assert_eq!(theirs, expected, "dockerd's answers changed: {theirs}");
}
