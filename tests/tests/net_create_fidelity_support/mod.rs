//! Helpers of `net_create_fidelity.rs`: raw API calls with a body on either engine, and a
//! guard that removes the containers and networks a test made on both engines when it ends,
//! failed or not (berthd's user bridges also go with its `TestDaemon`; the real engine's
//! would outlive it).

use crate::build_support::Pair;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `METHOD /v{version}/{path}` with a JSON `body` on the socket: (status, JSON answer).
pub fn call(sock: &Path, method: &str, version: &str, path: &str, body: &Value) -> (u16, Value) {
    let mut c = Command::new("curl");
    c.args(["-sS", "-X", method, "-w", "\n%{http_code}", "--unix-socket"])
        .arg(sock)
        .arg(format!("http://localhost/v{version}/{path}"));
    if !body.is_null() {
        c.args(["-H", "Content-Type: application/json", "-d"])
            .arg(body.to_string());
    }
    let o = c.output().expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// Both sockets of a pair: berthd's, then the real engine's.
pub fn sockets(p: &Pair) -> [PathBuf; 2] {
    [p.d.socket().to_path_buf(), p.real.path("docker.sock")]
}

/// The same call on both engines: (berthd's answer, the real engine's).
pub fn both(
    p: &Pair,
    method: &str,
    version: &str,
    path: &str,
    body: &Value,
) -> ((u16, Value), (u16, Value)) {
    let [a, b] = sockets(p);
    (
        call(&a, method, version, path, body),
        call(&b, method, version, path, body),
    )
}

/// `GET` of one engine's object as JSON (panics unless 200).
#[track_caller]
pub fn inspect(sock: &Path, path: &str) -> Value {
    let (st, v) = call(sock, "GET", "1.41", path, &Value::Null);
    assert_eq!(st, 200, "GET {path}: {v}");
    v
}

/// Removes the named containers and networks from both engines when dropped.
pub struct Cleanup {
    pub sockets: [PathBuf; 2],
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

impl Cleanup {
    /// A guard for `containers` and `networks` (names) on both engines of `p`.
    pub fn new(p: &Pair, containers: &[&str], networks: &[&str]) -> Self {
        Cleanup {
            sockets: sockets(p),
            containers: containers.iter().map(|s| s.to_string()).collect(),
            networks: networks.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let containers = self
            .containers
            .iter()
            .map(|c| format!("containers/{c}?force=1"));
        let networks = self.networks.iter().map(|n| format!("networks/{n}"));
        let paths: Vec<String> = containers.chain(networks).collect();
        for sock in &self.sockets {
            for path in &paths {
                let _ = call(sock, "DELETE", "1.41", path, &Value::Null);
            }
        }
    }
}

/// Whether `s` is a 64-hex id.
pub fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
