//! The OCI backend: drives an OCI runtime binary (runc, crun, youki) with a bundle. The bundle's
//! `config.json` is written by the caller; this module runs `create`, `start`, `kill`, `delete`,
//! `state`, `pause`, `resume` with a private `--root`.

use berth_core::runtime::{Spec, State, Status, StdioFds};
use berth_core::{DriverError, DriverResult, Runtime};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An OCI runtime binary.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    /// The binary.
    pub binary: PathBuf,
    /// Extra global arguments (`runtimeArgs`).
    pub args: Vec<String>,
    /// State folder passed as `--root`.
    pub root: PathBuf,
}

impl OciRuntime {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root).args(&self.args);
        c
    }

    fn run(&self, args: &[&str]) -> DriverResult<String> {
        let out = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| DriverError::io(format!("running {}", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(DriverError::Io(format!(
                "{} {}: {}",
                self.binary.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn dup(fd: i32) -> DriverResult<OwnedFd> {
    // SAFETY: the caller keeps `fd` open for the duration of this call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    b.try_clone_to_owned()
        .map_err(|e| DriverError::io("duplicating stdio", e))
}

impl Runtime for OciRuntime {
    fn name(&self) -> String {
        self.binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn create(&self, id: &str, bundle: &Path, spec: &Spec, stdio: StdioFds) -> DriverResult<i32> {
        let json = serde_json::to_vec_pretty(spec)
            .map_err(|e| DriverError::InvalidInput(e.to_string()))?;
        std::fs::write(bundle.join("config.json"), json)
            .map_err(|e| DriverError::io("writing config.json", e))?;
        std::fs::create_dir_all(&self.root)
            .map_err(|e| DriverError::io("creating the runtime root", e))?;
        let pid_file = bundle.join("init.pid");
        let status = self
            .cmd()
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdin(Stdio::from(dup(stdio.stdin)?))
            .stdout(Stdio::from(dup(stdio.stdout)?))
            .stderr(Stdio::from(dup(stdio.stderr)?))
            .status()
            .map_err(|e| DriverError::io(format!("running {}", self.binary.display()), e))?;
        if !status.success() {
            return Err(DriverError::Io(format!(
                "{} create failed ({status})",
                self.binary.display()
            )));
        }
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| DriverError::Io("runtime wrote no pid file".into()))?;
        Ok(pid)
    }

    fn start(&self, id: &str) -> DriverResult<()> {
        self.run(&["start", id]).map(|_| ())
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> DriverResult<()> {
        let s = signal.to_string();
        if all {
            self.run(&["kill", "--all", id, &s]).map(|_| ())
        } else {
            self.run(&["kill", id, &s]).map(|_| ())
        }
    }

    fn delete(&self, id: &str) -> DriverResult<()> {
        self.run(&["delete", "--force", id]).map(|_| ())
    }

    fn state(&self, id: &str) -> DriverResult<State> {
        let out = self.run(&["state", id])?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| DriverError::Io(format!("bad state JSON: {e}")))?;
        let status = match v["status"].as_str().unwrap_or("") {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            _ => Status::Stopped,
        };
        Ok(State {
            id: id.into(),
            status,
            pid: v["pid"].as_i64().unwrap_or(0) as i32,
        })
    }

    fn pause(&self, id: &str) -> DriverResult<()> {
        self.run(&["pause", id]).map(|_| ())
    }

    fn resume(&self, id: &str) -> DriverResult<()> {
        self.run(&["resume", id]).map(|_| ())
    }
}
