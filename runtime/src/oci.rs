//! The OCI backend: drives an OCI runtime binary (runc, crun, youki) with a bundle. The bundle's
//! `config.json` is (re)written from the spec; this module runs `create`, `start`, `kill`,
//! `delete`, `state`, `pause`, `resume` with a private `--root` and a JSON `--log`, from which
//! failures are reported with Docker's texts. With a terminal, the pty master comes back over
//! a console socket (SCM_RIGHTS) and is kept for the caller ([`OciRuntime::take_console`]).

use crate::process::exec_error_code;
use berth_core::runtime::{Spec, State, Status, StdioFds};
use berth_core::{DriverError, DriverResult, Runtime};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// An OCI runtime binary.
#[derive(Debug)]
pub struct OciRuntime {
    /// The binary.
    pub binary: PathBuf,
    /// Extra global arguments (`runtimeArgs`).
    pub args: Vec<String>,
    /// State folder passed as `--root`.
    pub root: PathBuf,
    consoles: Mutex<HashMap<String, OwnedFd>>,
}

impl OciRuntime {
    /// A runtime running `binary` (with `args` before each verb) with state under `root`.
    pub fn new(binary: impl Into<PathBuf>, args: Vec<String>, root: impl Into<PathBuf>) -> Self {
        OciRuntime {
            binary: binary.into(),
            args,
            root: root.into(),
            consoles: Mutex::new(HashMap::new()),
        }
    }

    /// The pty master received from the runtime for container `id` (terminal containers).
    pub fn take_console(&self, id: &str) -> Option<OwnedFd> {
        self.consoles.lock().ok()?.remove(id)
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("runtime.log")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.binary);
        // The runtime and the containers it starts run with the normal policy, not berthd's.
        // SAFETY: the hook runs between fork and exec and makes one system call.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut c, || {
                berth_core::sched::normal();
                Ok(())
            });
        }
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(self.log_path())
            .args(["--log-format", "json"])
            .args(&self.args);
        c
    }

    /// The last error the runtime logged (`msg` of the last `error` record), or its stderr.
    fn last_error(&self, stderr: &str) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        log.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["level"] == "error")
            .and_then(|v| v["msg"].as_str().map(str::to_string))
            .unwrap_or_else(|| stderr.trim().to_string())
    }

    fn fail(&self, verb: &str, stderr: &str) -> DriverError {
        DriverError::Io(format!(
            "{} {verb} failed: {}",
            self.name(),
            self.last_error(stderr)
        ))
    }

    fn run(&self, args: &[&str]) -> DriverResult<String> {
        let _ = std::fs::remove_file(self.log_path());
        let out = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| DriverError::io(format!("running {}", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(self.fail(
                args.first().copied().unwrap_or(""),
                &String::from_utf8_lossy(&out.stderr),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `create`; with a terminal, receives the pty master on a console socket.
    fn create_inner(
        &self,
        id: &str,
        bundle: &Path,
        terminal: bool,
        stdio: StdioFds,
    ) -> DriverResult<i32> {
        let pid_file = bundle.join("init.pid");
        let _ = std::fs::remove_file(self.log_path());
        let mut cmd = self.cmd();
        cmd.args(["create", "--bundle"])
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        let console = if terminal {
            let path = console_path(&self.root);
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)
                .map_err(|e| DriverError::io("binding the console socket", e))?;
            cmd.arg("--console-socket").arg(&path);
            Some((l, path))
        } else {
            None
        };
        cmd.arg(id)
            .stdin(Stdio::from(dup(stdio.stdin)?))
            .stdout(Stdio::from(dup(stdio.stdout)?))
            .stderr(Stdio::from(dup(stdio.stderr)?));
        let mut child = cmd
            .spawn()
            .map_err(|e| DriverError::io(format!("running {}", self.binary.display()), e))?;
        if let Some((l, path)) = console {
            let got = receive_console(&l, &mut child);
            let _ = std::fs::remove_file(path);
            match got {
                Some(fd) => {
                    if let Ok(mut c) = self.consoles.lock() {
                        c.insert(id.to_string(), fd);
                    }
                }
                None => {
                    let _ = child.kill();
                }
            }
        }
        let status = child
            .wait()
            .map_err(|e| DriverError::io("waiting for the runtime", e))?;
        if !status.success() {
            let msg = self.last_error("");
            return Err(match exec_error_code(&msg) {
                Some((code, text)) => DriverError::Exec {
                    code,
                    message: text,
                },
                None => DriverError::Io(format!("{} create failed: {msg}", self.name())),
            });
        }
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| DriverError::Io("runtime wrote no pid file".into()))
    }
}

/// A console socket path short enough for `sun_path`.
fn console_path(root: &Path) -> PathBuf {
    let p = root.join("console.sock");
    if p.as_os_str().len() < 100 {
        p
    } else {
        std::env::temp_dir().join(format!("berth-console-{}.sock", std::process::id()))
    }
}

/// Accepts the runtime's connection on `l` and receives one fd (SCM_RIGHTS); gives up when
/// the runtime exits first.
fn receive_console(l: &UnixListener, child: &mut std::process::Child) -> Option<OwnedFd> {
    let _ = l.set_nonblocking(true);
    let stream = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !matches!(child.try_wait(), Ok(None)) {
                    return None;
                }
                let mut fds = [nix::poll::PollFd::new(
                    l.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u16));
            }
            Err(_) => return None,
        }
    };
    let _ = stream.set_nonblocking(false);
    crate::console::receive(stream.as_raw_fd())
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
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        self.create_inner(id, bundle, terminal, stdio)
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

    fn take_console(&self, id: &str) -> Option<OwnedFd> {
        OciRuntime::take_console(self, id)
    }
}

/// The binaries tried, in order, when the configuration names none: Debian's and the usual
/// places of `runc`.
pub const RUNC_PATHS: [&str; 3] = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"];

/// The plugin name under which `runtime-oci` exports [`open`] (and the monitor registers it).
pub const PLUGIN: &str = "berth-runtime-oci";

/// The plugin constructor (`runtime-oci` exports it as driver `runc`). Configuration:
/// `{"path": binary, "args": [global args], "root": state folder}`; without `path`, the first
/// of [`RUNC_PATHS`] that exists; without `root`, `/run/berth/runtime-oci`. The binary must
/// exist.
pub fn open(config: &serde_json::Value) -> DriverResult<Box<dyn Runtime>> {
    let path = match config["path"].as_str().filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => RUNC_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| {
                DriverError::InvalidInput(format!(
                    "no runc binary (tried {})",
                    RUNC_PATHS.join(", ")
                ))
            })?,
    };
    if !path.is_file() {
        return Err(DriverError::InvalidInput(format!(
            "OCI runtime binary {} not found",
            path.display()
        )));
    }
    let args: Vec<String> = serde_json::from_value(config["args"].clone()).unwrap_or_default();
    let root = config["root"]
        .as_str()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/berth/runtime-oci"));
    Ok(Box::new(OciRuntime::new(path, args, root)))
}
