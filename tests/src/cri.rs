//! [`Crictl`]: the real `crictl` (cri-tools v1.26.1, prebuilt in `../shared/tools`) pointed at
//! a test daemon's CRI socket. Tests skip, with a message saying how to get it, when it is
//! not there.

use crate::cmd::{run, Output};
use crate::daemon::TestDaemon;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where crictl is: `$CRICTL`, else [`shared_tool`]`("crictl")`.
pub fn crictl_bin() -> Option<PathBuf> {
    shared_tool("CRICTL", "crictl")
}

/// A prebuilt tool: `$<env>` when set (and a file), else `shared/tools/<name>` next to the
/// workspace or next to one of its parent folders (`../shared/tools` of the checkout, as CI
/// has it).
pub fn shared_tool(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    workspace
        .ancestors()
        .skip(1)
        .map(|d| d.join("shared/tools").join(name))
        .find(|p| p.is_file())
}

/// crictl against one daemon's CRI socket.
pub struct Crictl {
    bin: PathBuf,
    endpoint: String,
}

impl Crictl {
    /// crictl for `d` (its CRI socket is `<exec-root>/cri.sock`), or None with a message.
    pub fn for_daemon(d: &TestDaemon) -> Option<Crictl> {
        let Some(bin) = crictl_bin() else {
            eprintln!(
                "skipped: crictl not found: build it from kubernetes-sigs/cri-tools v1.26.1 \
                 (`CGO_ENABLED=0 GOFLAGS=-mod=vendor go build -o crictl ./cmd/crictl`) into \
                 ../shared/tools/crictl, or set CRICTL=/path/to/crictl"
            );
            return None;
        };
        Some(Crictl {
            bin,
            endpoint: format!("unix://{}", d.exec_root().join("cri.sock").display()),
        })
    }

    /// `unix:///…/cri.sock`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `crictl ARGS` (runtime and image endpoint set, 60 s timeout per call), not started: for
    /// the long-running ones (`logs -f`, `exec -it`, `port-forward`).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args([
            "--runtime-endpoint",
            &self.endpoint,
            "--image-endpoint",
            &self.endpoint,
            "--timeout",
            "60s",
        ])
        .args(args);
        c
    }

    /// Runs `crictl ARGS` (as [`Crictl::command`]).
    pub fn run(&self, args: &[&str]) -> Output {
        run(self.command(args), None)
    }

    /// Runs `crictl ARGS`, panicking unless it succeeds; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).ok().to_string()
    }

    /// Runs `crictl ARGS` and parses its stdout as JSON (`-o json` commands).
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("crictl {args:?}: {e}: {out}"))
    }
}

/// The record `d` keeps of its CRI pod `pod` (`<data-root>/cri/pods/<id>.json`: `initPid`,
/// `cgroup`, ...).
pub fn pod_record(d: &TestDaemon, pod: &str) -> serde_json::Value {
    let p = d.data_root().join("cri/pods").join(format!("{pod}.json"));
    let rec = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&rec).expect("pod record JSON")
}
