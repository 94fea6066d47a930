//! Exec and lifecycle details against a private real dockerd (issue 16): the same docker-py
//! calls on both engines, their answers compared — the framing of exec streams (raw for a
//! TTY, stdcopy otherwise), the hijacked `socket` mode, `exec_run(tty, stream, demux)`
//! chunks, a command that cannot start (126 and dockerd's text), `ExecInspect` fields,
//! detach keys (a TTY exec's; a TTY attach's, with its `detach` event; a non-TTY attach
//! passing them through, its stdin kept open), `rm` of a running container, `kill`
//! answering once the container has exited, and `--restart always` with its back-off.
//! Without dockerd the berth side is still checked against the values dockerd gives.

use berth_tests::{sdk_json, RealEngine, TestDaemon};
use serde_json::Value;

/// Runs `script` with docker-py against `host` ([`sdk_json`]).
fn py(host: &str, script: &str) -> Value {
    sdk_json(host, script)
}

/// The exec calls, run on one engine (a running container `ex1` exists).
const EXEC: &str = r#"
e = api.exec_create('ex1', ['nosuch'])['Id']
out['missing'] = raw(e)
out['missing_inspect'] = pick(api.exec_inspect(e))
e = api.exec_create('ex1', ['/etc'], tty=True)['Id']
out['notexec_tty'] = raw(e, tty=True)
out['notexec_code'] = api.exec_inspect(e)['ExitCode']
e = api.exec_create('ex1', ['sh', '-c', 'echo out; echo err >&2; exit 3'], tty=True)['Id']
out['tty_raw'] = raw(e, tty=True)
i = api.exec_inspect(e)
out['tty_inspect'] = pick(i)
out['tty_pid_kept'] = i['Pid'] > 0
e = api.exec_create('ex1', ['sh', '-c', 'echo out; sleep 0.2; echo err >&2; exit 4'])['Id']
out['framed'] = raw(e)
e = api.exec_create('ex1', ['sleep', '1'], user='root', workdir='/tmp', detach_keys='ctrl-x,x',
                    environment=['A=1'])['Id']
out['created_inspect'] = pick(api.exec_inspect(e))
try:
    api.exec_create('ex1', ['true'], detach_keys='ctrl-')
    out['bad_keys'] = 'accepted'
except docker.errors.APIError as err:
    out['bad_keys'] = [err.status_code, err.explanation]
for cmd in (['nosuch'], ['/etc']):
    e = api.exec_create('ex1', cmd)['Id']
    try:
        api.exec_start(e, detach=True)
        out['detach_' + cmd[0]] = 'started'
    except docker.errors.APIError as err:
        i = api.exec_inspect(e)
        out['detach_' + cmd[0]] = [err.status_code, err.explanation, i['ExitCode'], i['Pid']]
e = api.exec_create('ex1', ['sh', '-c', 'echo detached > /tmp/d'])['Id']
out['detach_start'] = repr(api.exec_start(e, detach=True))
time.sleep(0.5)
out['detach_result'] = c.containers.get('ex1').exec_run(['cat', '/tmp/d']).output.decode()
e = api.exec_create('ex1', ['cat'], stdin=True)['Id']
sk = api.exec_start(e, socket=True)._sock
sk.sendall(b'through the socket\n')
sk.shutdown(socket.SHUT_WR)
out['socket_stdin'] = list(map(str, [text(drain(sk)[0]), api.exec_inspect(e)['ExitCode']]))
cmd = ['sh', '-c', 'echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c']
r = c.containers.get('ex1').exec_run(cmd, tty=True, stream=True, demux=True)
out['demux_tty'] = [[text(o), text(e)] for (o, e) in r.output]
r = c.containers.get('ex1').exec_run(cmd, stream=True, demux=True)
out['demux'] = [[text(o), text(e)] for (o, e) in r.output]
e = api.exec_create('ex1', ['cat'], tty=True, stdin=True, detach_keys='ctrl-x,x')['Id']
sk = api.exec_start(e, socket=True, tty=True)._sock
sk.sendall(b'hi\n')
until(sk, b'hi\r\nhi\r\n')  # the TTY's echo, then cat's own line
sk.sendall(b'\x18x')
got, state = drain(sk)
i = api.exec_inspect(e)
out['tty_detach'] = [text(got), state, i['Running'], i['ExitCode'], i['DetachKeys']]
"#;

/// The lifecycle calls, run on one engine.
const LIFECYCLE: &str = r#"
ct = c.containers.run('busybox', ['sleep', '300'], detach=True, name='kx', network_mode='none')
try:
    api.remove_container('kx')
    out['rm_running'] = 'removed'
except docker.errors.APIError as err:
    out['rm_running'] = [err.status_code, err.explanation.replace(ct.id, 'ID')]
states = []
for n in range(5):
    api.kill('kx')
    states.append(api.inspect_container('kx')['State']['Status'])
    api.start('kx')
out['kill_then_inspect'] = states
api.remove_container('kx', force=True)
hc = api.create_host_config(network_mode='none')
api.create_container('busybox', ['cat'], stdin_open=True, name='cat', host_config=hc)
api.start('cat')
params = {'stdin': 1, 'stdout': 1, 'stream': 1}
sk = api.attach_socket('cat', params=params)._sock
sk.sendall(b'one\x10\x11\n')
first = until(sk, b'one\x10\x11\n')
sk.close()
time.sleep(0.5)
sk = api.attach_socket('cat', params=params)._sock
sk.sendall(b'two\n')
second = until(sk, b'two\n')
sk.close()
out['attach_again'] = [text(first), text(second), api.inspect_container('cat')['State']['Status']]
api.remove_container('cat', force=True)
api.create_container('busybox', ['cat'], stdin_open=True, tty=True, name='tcat', host_config=hc)
api.start('tcat')
since = int(time.time())
params = {'stdin': 1, 'stdout': 1, 'stream': 1, 'detachKeys': 'ctrl-x,x'}
sk = api.attach_socket('tcat', params=params)._sock
sk.sendall(b'hi\n')
first = until(sk, b'hi\r\nhi\r\n')
sk.sendall(b'\x18x')
rest, state = drain(sk)
time.sleep(0.3)
ev = api.events(since=since, until=int(time.time()) + 1, decode=True)
ev = [e['Action'] for e in ev if e.get('Type') == 'container']
st = api.inspect_container('tcat')['State']['Status']
out['tty_attach_detach'] = [text(first), text(rest), state, st, 'detach' in ev]
api.remove_container('tcat', force=True)
"#;

/// A `--restart always` container that exits at once, on one engine: restarted with a
/// back-off (a handful of restarts in 2.5 s, not dozens), `restarting` meanwhile (Running,
/// no Pid; `rm` refused), and a stop during the back-off leaves it exited for good.
const RESTART: &str = r#"
hc = api.create_host_config(network_mode='none', restart_policy={'Name': 'always'})
api.create_container('busybox', ['sh', '-c', 'exit 2'], name='ra', host_config=hc)
api.start('ra')
time.sleep(2.5)
n = api.inspect_container('ra')['RestartCount']
out['backed_off'] = 2 <= n <= 8 or n
cid = api.inspect_container('ra')['Id']
msg = None
for _ in range(40):
    st = api.inspect_container('ra')['State']
    if st['Status'] == 'restarting':
        out['restarting'] = [st['Running'], st['Restarting'], st['Pid'], st['ExitCode']]
        try:
            api.remove_container('ra')
        except docker.errors.APIError as err:
            if 'restarting' in err.explanation:
                msg = [err.status_code, err.explanation.replace(cid, 'ID')]
                break
    time.sleep(0.05)
out['rm_restarting'] = msg
api.stop('ra')
n = api.inspect_container('ra')['RestartCount']
time.sleep(1.5)
i = api.inspect_container('ra')
out['stopped'] = [i['State']['Status'], i['State']['ExitCode'], i['RestartCount'] == n]
api.remove_container('ra')
"#;

/// A real dockerd with busybox imported, or `None` (skipped, with a message).
fn real_engine(d: &TestDaemon) -> Option<RealEngine> {
    let real = RealEngine::start()?;
    let tar = d.busybox_tar().display().to_string();
    real.ok(&["import", "-c", "CMD [\"sh\"]", &tar, "busybox:latest"]);
    Some(real)
}

fn real_host(real: &RealEngine) -> String {
    format!("unix://{}", real.path("docker.sock").display())
}

/// Asserts that every key of `ours` equals dockerd's (`theirs`).
fn same(ours: &Value, theirs: &Value) {
    let keys = ours.as_object().expect("an object").keys();
    for k in keys {
        assert_eq!(
            ours[k], theirs[k],
            "{k}: berth {} / dockerd {}",
            ours[k], theirs[k]
        );
    }
}

#[test]
fn exec_streams_errors_inspect_and_detach_as_dockerds() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.sleeper("ex1");
    let ours = py(&d.host(), EXEC);
    let msg = "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown\r\n";
    let mut frame = vec![1u8, 0, 0, 0, 0, 0, 0, msg.len() as u8];
    frame.extend_from_slice(msg.as_bytes());
    // The script decodes bytes as latin-1: one char per byte.
    let frame: String = frame.iter().map(|&b| char::from(b)).collect();
    assert_eq!(ours["missing"], frame.as_str());
    assert_eq!(ours["missing_inspect"]["ExitCode"], 126, "{ours}");
    assert_eq!(ours["notexec_code"], 126, "{ours}");
    assert_eq!(ours["tty_raw"], "out\r\nerr\r\n", "{ours}");
    assert_eq!(ours["created_inspect"]["DetachKeys"], "GHg=", "{ours}");
    let detached = "exec attach failed: error on attach stdin: read escape sequence\r\n";
    let detached = serde_json::json!([detached, "closed", false, 126, "GHg="]);
    assert_eq!(ours["tty_detach"], detached, "{ours}");
    // The docker CLI: exit status 126 and the text, as with dockerd.
    let o = d.docker(&["exec", "ex1", "nosuch"]);
    assert_eq!(o.status, 126, "{o:?}");
    assert!(
        o.stdout.contains("executable file not found in $PATH"),
        "{o:?}"
    );
    let Some(real) = real_engine(&d) else { return };
    real.ok(&[
        "run",
        "-d",
        "--name",
        "ex1",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let theirs = py(&real_host(&real), EXEC);
    same(&ours, &theirs);
    real.ok(&["rm", "-f", "ex1"]);
    d.docker(&["rm", "-f", "ex1"]).ok();
}

#[test]
fn rm_kill_and_a_non_tty_attach_as_dockerds() {
    let d = TestDaemon::start();
    d.import_busybox();
    let ours = py(&d.host(), LIFECYCLE);
    assert_eq!(
        ours["rm_running"],
        serde_json::json!([409, "You cannot remove a running container ID. Stop the container before attempting removal or force remove"])
    );
    assert_eq!(
        ours["kill_then_inspect"],
        serde_json::json!(["exited", "exited", "exited", "exited", "exited"])
    );
    let detached = serde_json::json!(["hi\r\nhi\r\n", "", "closed", "running", true]);
    assert_eq!(ours["tty_attach_detach"], detached, "{ours}");
    let Some(real) = real_engine(&d) else { return };
    let theirs = py(&real_host(&real), LIFECYCLE);
    same(&ours, &theirs);
}

#[test]
fn restart_always_backs_off_and_a_stop_ends_it_as_dockerds() {
    let d = TestDaemon::start();
    d.import_busybox();
    let ours = py(&d.host(), RESTART);
    assert_eq!(ours["backed_off"], true, "{ours}");
    assert_eq!(ours["restarting"], serde_json::json!([true, true, 0, 2]));
    let refusal = "You cannot remove a restarting container ID. Stop the container before attempting removal or force remove";
    assert_eq!(ours["rm_restarting"], serde_json::json!([409, refusal]));
    assert_eq!(ours["stopped"], serde_json::json!(["exited", 2, true]));
    let Some(real) = real_engine(&d) else { return };
    let theirs = py(&real_host(&real), RESTART);
    same(&ours, &theirs);
}

/// Stopped containers whose policy asks for it start with the daemon, as dockerd 20.10 does
/// (observed on it: `always` even after `docker stop`, `on-failure` after a stop's 137, not
/// `unless-stopped` after a stop, not `on-failure:1` once its retry is spent, not one never
/// started). Not differential: the private dockerd here cannot be restarted in place.
#[test]
fn stopped_containers_with_a_policy_start_with_berthd_as_with_dockerd() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let run = |name: &str, policy: &str, cmd: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        args.extend(["--restart", policy, "busybox"]);
        args.extend(cmd);
        d.docker(&args).ok();
    };
    run("a1", "always", &["sleep", "300"]);
    run("u1", "unless-stopped", &["sleep", "300"]);
    run("f1", "on-failure", &["sleep", "300"]);
    run("f2", "on-failure:1", &["sh", "-c", "exit 3"]);
    for name in ["a1", "u1", "f1"] {
        d.docker(&["stop", "-t", "0", name]).ok();
    }
    let args = [
        "create",
        "--name",
        "a3",
        "--network",
        "none",
        "--restart",
        "always",
    ];
    let mut args = args.to_vec();
    args.extend(["busybox", "sleep", "300"]);
    d.docker(&args).ok();
    // f2's one retry comes and goes (its back-off is 100 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = |d: &TestDaemon, n: &str| {
        let f = "{{.State.Status}} {{.RestartCount}}";
        d.docker(&["inspect", "-f", f, n]).ok().trim().to_string()
    };
    while status(&d, "f2") != "exited 1" {
        assert!(std::time::Instant::now() < deadline, "{}", status(&d, "f2"));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    d.restart();
    let want = [
        ("a1", "running"),
        ("f1", "running"),
        ("u1", "exited"),
        ("f2", "exited"),
        ("a3", "created"),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for (name, state) in want {
        loop {
            let got = status(&d, name);
            if got.starts_with(state) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{name}: {got}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    d.docker(&["rm", "-f", "a1", "u1", "f1", "f2", "a3"]).ok();
}
