//! `Container.exec_run` of docker-py (docker 7.1) against a private real dockerd (issue 16):
//! every mode of it on both engines, the answers compared — `stream` and `demux` with and
//! without a TTY (the chunks: their types, and per stream the bytes they add up to), the
//! whole output and exit code without `stream`, `stdout=False` / `stderr=False` (the stream
//! not asked for is not sent), `socket=True` (the hijacked socket: multiplexed without a TTY,
//! raw with one, stdin through it), `detach=True`, the exec's `environment`, `workdir` and
//! `user`, a missing command, the client's end of input (a TTY exec with stdin ends its
//! stream there); and `docker exec -d` and a failing `docker exec` from the CLI.
//! Without dockerd the berth side is checked against the values dockerd gives.

use berth_tests::{sdk_json, RealEngine, TestDaemon};
use serde_json::{json, Value};

/// The calls, on one engine with a running container `sx`.
const SDK: &str = r#"
ct = c.containers.get('sx')
cmd = ['sh', '-c', 'echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c; exit 3']
def chunks(gen):
    # Each chunk's type, and per stream what the chunks add up to.
    kinds, streams = [], [b'', b'']
    for ch in gen:
        if isinstance(ch, tuple):
            kinds.append([type(x).__name__ for x in ch])
            for k in (0, 1):
                if ch[k] is not None:
                    streams[k] += ch[k]
        else:
            kinds.append(type(ch).__name__)
            streams[0] += ch
    return [kinds, text(streams[0]), text(streams[1])]
for tty in (False, True):
    for demux in (False, True):
        name = '%s_%s' % ('tty' if tty else 'raw', 'demux' if demux else 'plain')
        r = ct.exec_run(cmd, tty=tty, stream=True, demux=demux)
        out['stream_' + name] = [r.exit_code] + chunks(r.output)
        r = ct.exec_run(cmd, tty=tty, demux=demux)
        o = r.output
        out['whole_' + name] = [r.exit_code, [text(x) for x in o] if isinstance(o, tuple) else text(o)]
r = ct.exec_run(cmd, stdout=False)
out['stderr_only'] = [r.exit_code, text(r.output)]
r = ct.exec_run(cmd, stderr=False, demux=True)
out['stdout_only_demux'] = [r.exit_code, [text(x) for x in r.output]]
for tty in (False, True):
    r = ct.exec_run(cmd, tty=tty, socket=True)
    out['socket_%s' % tty] = [r.exit_code, type(r.output).__name__, text(drain(r.output._sock)[0])]
r = ct.exec_run(['cat'], stdin=True, socket=True)
sk = r.output._sock
sk.sendall(b'in through the socket\n')
sk.shutdown(socket.SHUT_WR)
out['socket_stdin'] = text(drain(sk)[0])
r = ct.exec_run(['sh', '-c', 'sleep 0.5; echo done > /tmp/d'], detach=True)
out['detach'] = [r.exit_code, repr(r.output)]
time.sleep(1.5)
out['detach_result'] = text(ct.exec_run(['cat', '/tmp/d']).output)
r = ct.exec_run(['sh', '-c', 'echo $A $B; pwd; id -u; id -g'], environment={'A': '1', 'B': 'x y'},
                workdir='/tmp', user='1000:1000')
out['env_workdir_user'] = [r.exit_code, text(r.output)]
# (`privileged=True` is left out: this host's runc cannot apply every capability.)
r = ct.exec_run(['sh', '-c', 'grep CapEff /proc/self/status'])
out['unprivileged'] = [r.exit_code, text(r.output)]
# The client ends its input at once: a TTY exec with stdin ends its stream there (the process
# runs on), any other goes on to the process's end.
for tty in (False, True):
    for stdin in (False, True):
        e = api.exec_create('sx', ['sh', '-c', 'sleep 1; echo late'], tty=tty, stdin=stdin)['Id']
        sk = api.exec_start(e, socket=True, tty=tty)._sock
        sk.shutdown(socket.SHUT_WR)
        got, st = drain(sk, 5)
        time.sleep(1.5)
        i = api.exec_inspect(e)
        out['eof_%s_%s' % (tty, stdin)] = [text(got), st, i['Running'], i['ExitCode']]
r = ct.exec_run(['nosuch'])
out['missing'] = [r.exit_code, text(r.output)]
r = ct.exec_run(['nosuch'], stream=True, demux=True)
out['missing_stream'] = [r.exit_code] + chunks(r.output)
"#;

/// `docker exec -d` from the CLI (then the file it wrote), and `docker exec` of a failing
/// command: its status and output.
fn cli(docker: &dyn Fn(&[&str]) -> (i32, String)) -> Value {
    let d = docker(&[
        "exec",
        "-d",
        "sx",
        "sh",
        "-c",
        "sleep 0.3; echo cli > /tmp/c",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let got = docker(&["exec", "sx", "cat", "/tmp/c"]);
    let fail = docker(&["exec", "sx", "sh", "-c", "echo o; echo e >&2; exit 5"]);
    json!({"cli_detach": [d, got], "cli_fail": fail})
}

/// What dockerd answers (checked on berth when dockerd is not there).
fn expected_of_dockerd() -> Vec<(&'static str, Value)> {
    vec![
        ("whole_raw_plain", json!([3, "a\nb\nc\n"])),
        ("whole_raw_demux", json!([3, ["a\nc\n", "b\n"]])),
        ("whole_tty_plain", json!([3, "a\r\nb\r\nc\r\n"])),
        ("socket_stdin", json!("\u{1}\0\0\0\0\0\0\u{16}in through the socket\n")),
        ("detach", json!([null, "''"])),
        ("detach_result", json!("done\n")),
        ("env_workdir_user", json!([0, "1 x y\n/tmp\n1000\n1000\n"])),
        ("missing", json!([126, "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown\r\n"])),
        ("cli_detach", json!([[0, ""], [0, "cli\n"]])),
        ("eof_True_True", json!(["", "closed", false, 0])),
        ("eof_True_False", json!(["late\r\n", "closed", false, 0])),
        ("eof_False_True", json!(["\u{1}\0\0\0\0\0\0\u{5}late\n", "closed", false, 0])),
        ("cli_fail", json!([5, "o\n"])),
    ]
}

#[test]
fn exec_run_in_every_mode_as_dockerd() {
    let d = TestDaemon::start();
    let real = RealEngine::start();
    match &real {
        Some(r) => r.load_busybox_of(&d),
        None => d.import_busybox(),
    }
    d.sleeper("sx");
    let mut ours = sdk_json(&d.host(), SDK);
    let ours_cli = cli(&|a: &[&str]| {
        let o = d.docker(a);
        (o.status, o.stdout)
    });
    merge(&mut ours, ours_cli);
    let Some(real) = real else {
        eprintln!("SKIP: no dockerd; berth checked against dockerd's known answers");
        for (k, v) in expected_of_dockerd() {
            assert_eq!(ours[k], v, "{k}");
        }
        return;
    };
    real.ok(&[
        "run",
        "-d",
        "--name",
        "sx",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let host = format!("unix://{}", real.path("docker.sock").display());
    let mut theirs = sdk_json(&host, SDK);
    let theirs_cli = cli(&|a: &[&str]| {
        let mut args = vec!["-H", host.as_str()];
        args.extend_from_slice(a);
        let o = std::process::Command::new("docker")
            .args(&args)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("docker");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    });
    merge(&mut theirs, theirs_cli);
    berth_tests::assert_same_members(&ours, &theirs);
    for (k, v) in expected_of_dockerd() {
        assert_eq!(theirs[k], v, "dockerd's {k} changed");
    }
}

/// Adds the members of object `more` to object `v`.
fn merge(v: &mut Value, more: Value) {
    if let (Some(o), Value::Object(m)) = (v.as_object_mut(), more) {
        o.extend(m);
    }
}
