//! Helpers of `fidelity_logrt.rs`: one interface over berthd and a private real dockerd (the
//! docker CLI and raw API calls through `curl --unix-socket`), both with busybox loaded, and
//! a shared tmpfs on the host for the bind propagation checks (detached when dropped).

use berth_tests::{RealEngine, TestDaemon};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One engine under comparison.
pub trait Engine {
    /// Its name in messages.
    fn name(&self) -> &'static str;
    /// Its API socket.
    fn socket(&self) -> PathBuf;
    /// The docker CLI against it: (success, stdout, stderr).
    fn cli(&self, args: &[&str]) -> (bool, String, String);

    /// The docker CLI; panics unless it succeeds; stdout trimmed.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args);
        assert!(ok, "{}: docker {args:?} failed: {err}\n{out}", self.name());
        out.trim().to_string()
    }

    /// One API call: (status, body as JSON, or a string of it when it is not JSON).
    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "-m",
            "60",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ]);
        c.arg("--unix-socket").arg(self.socket());
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
        }
        c.arg(format!("http://localhost/v1.41{path}"));
        let out = c.output().expect("running curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let v = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
        (code.trim().parse().unwrap_or(0), v)
    }

    /// `GET /containers/{id}/json`.
    #[track_caller]
    fn inspect(&self, id: &str) -> Value {
        let (code, v) = self.api("GET", &format!("/containers/{id}/json"), None);
        assert_eq!(code, 200, "{}: inspect {id}: {v}", self.name());
        v
    }
}

impl Engine for TestDaemon {
    fn name(&self) -> &'static str {
        "berthd"
    }
    fn socket(&self) -> PathBuf {
        TestDaemon::socket(self).to_path_buf()
    }
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let o = self.docker(args);
        (o.success(), o.stdout, o.stderr)
    }
}

impl Engine for RealEngine {
    fn name(&self) -> &'static str {
        "dockerd"
    }
    fn socket(&self) -> PathBuf {
        self.path("docker.sock")
    }
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        self.docker(args)
    }
}

/// berthd and a real dockerd, both with the same busybox image; `None` (with a message)
/// where dockerd is not installed.
pub fn engines() -> Option<(TestDaemon, RealEngine)> {
    let real = RealEngine::start()?;
    let d = TestDaemon::start();
    real.load_busybox_of(&d);
    Some((d, real))
}

/// A tmpfs made a shared mount on the host, detached (with all below it) when dropped.
pub struct SharedMount(tempfile::TempDir);

impl SharedMount {
    /// Mounts it.
    pub fn new() -> SharedMount {
        let dir = tempfile::Builder::new()
            .prefix("berth-prop-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        let p = dir.path().display().to_string();
        for args in [
            vec!["-t", "tmpfs", "tmpfs", p.as_str()],
            vec!["--make-shared", p.as_str()],
        ] {
            let st = Command::new("mount").args(&args).status().expect("mount");
            assert!(st.success(), "mount {args:?}");
        }
        SharedMount(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Whether `path` is a mount point in this (the host's) mount namespace.
pub fn host_mounted(path: &Path) -> bool {
    let p = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}
