//! Differential scripts for docker-py (docker 7.1): [`sdk_json`] runs one against an engine
//! and returns the JSON object it built in `out`, with helpers for hijacked sockets.

use serde_json::Value;
use std::process::Command;

/// Python helpers every script has: `text` (bytes as a JSON-safe string), `drain` (a socket
/// read to its end, or to `t` seconds of silence), `until` (reads until a marker has come),
/// `raw` (an exec's hijacked output), `pick` (the `ExecInspect` fields compared).
const HELPERS: &str = r#"
def text(b):
    return None if b is None else b.decode('latin-1')
def drain(sk, t=10):
    sk.settimeout(t)
    got = b''
    try:
        while True:
            d = sk.recv(65536)
            if not d:
                return got, 'closed'
            got += d
    except socket.timeout:
        return got, 'open'
def until(sk, marker):
    sk.settimeout(10)
    got = b''
    while marker not in got:
        d = sk.recv(65536)
        if not d:
            break
        got += d
    return got
def raw(eid, tty=False):
    return text(drain(api.exec_start(eid, socket=True, tty=tty)._sock)[0])
def pick(i):
    keys = ['Running', 'ExitCode', 'ProcessConfig', 'OpenStdin', 'OpenStdout', 'OpenStderr',
            'CanRemove', 'DetachKeys']
    return {k: i.get(k) for k in keys}
"#;

/// Runs `script` in python3 with `c` a docker-py client of `host`, `api` its low-level API,
/// `out` a dict and the helpers above; the script fills `out`, returned parsed.
#[track_caller]
pub fn sdk_json(host: &str, script: &str) -> Value {
    let full = format!(
        "import docker, json, socket, subprocess, time\nc = docker.DockerClient(base_url={host:?})\napi = c.api\nout = {{}}\n{HELPERS}\n{script}\nprint(json.dumps(out))\n"
    );
    let o = Command::new("timeout")
        .args(["180", "python3", "-c", &full])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "python on {host}: {stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

/// Asserts that berth's answers (`ours`) equal dockerd's (`theirs`) member by member, for every
/// member dockerd answered; the message lists each one that differs.
#[track_caller]
pub fn assert_same_members(ours: &Value, theirs: &Value) {
    let differ: Vec<String> = theirs
        .as_object()
        .map(|o| o.keys().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|k| ours[k.as_str()] != theirs[k.as_str()])
        .map(|k| {
            format!(
                "{k}: berth {} / dockerd {}",
                ours[k.as_str()],
                theirs[k.as_str()]
            )
        })
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
