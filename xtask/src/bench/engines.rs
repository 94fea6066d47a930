//! The engines under test: our berthd (always), and the real Docker engine and Podman when
//! installed. Each gets its own data root and socket under the bench folder; daemons started
//! here are stopped here (by PID), whatever happens.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// berthd, driven by the stock docker CLI (and by `berth` where said).
    Berth,
    /// The real Docker engine (Debian's docker.io).
    Docker,
    /// Podman (no daemon).
    Podman,
}

/// A running engine and how to talk to it.
pub struct Engine {
    /// berth, docker or podman.
    pub kind: Kind,
    /// The name in the report.
    pub name: &'static str,
    /// The client command and its leading arguments (`docker -H unix://...`, `podman`).
    pub cli: Vec<String>,
    /// The daemon process we started, if any.
    pub daemon: Option<Child>,
    /// The daemon's socket, if any.
    pub socket: Option<PathBuf>,
    /// The engine's data folder.
    pub root: PathBuf,
}

impl Engine {
    /// A client command for this engine with `args`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.cli[0]);
        c.args(&self.cli[1..]).args(args);
        c
    }

    /// The daemon's PID, if a daemon runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 15 s); returns the time it took.
    pub fn stop(&mut self) -> Option<Duration> {
        let mut child = self.daemon.take()?;
        let start = Instant::now();
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(start.elapsed());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until an HTTP GET of `/_ping` on `socket` answers 200.
pub fn wait_ping(socket: &Path, timeout: Duration) -> Result<Duration> {
    use std::io::{Read, Write};
    let start = Instant::now();
    loop {
        if let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .is_ok()
            {
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200") {
                    return Ok(start.elapsed());
                }
            }
        }
        if start.elapsed() > timeout {
            bail!("no answer on {} within {timeout:?}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The default bridge of the bench's berthd.
pub const BRIDGE: &str = "berthbench0";

/// Removes what berthd leaves in the kernel on purpose when it stops (as dockerd keeps
/// docker0): the bench's bridge and its nftables table (`berth_<bridge>`, net-bridge's name).
pub fn remove_bridge() {
    let quiet = |c: &mut Command| {
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    };
    quiet(Command::new("ip").args(["link", "del", BRIDGE]));
    quiet(Command::new("nft").args(["delete", "table", "ip", &format!("berth_{BRIDGE}")]));
}

/// Spawns berthd with a private data root, exec root, socket, bridge and subnet.
pub fn spawn_berthd(bin: &Path, root: &Path) -> Result<(Child, PathBuf)> {
    fs::create_dir_all(root)?;
    let socket = root.join("berth.sock");
    let config = root.join("daemon.json");
    fs::write(
        &config,
        format!(r#"{{"bridge": "{BRIDGE}", "bip": "10.251.0.1/24"}}"#),
    )?;
    let log = fs::File::create(root.join("berthd.log"))?;
    let child = Command::new(bin.join("berthd"))
        .arg("--config-file")
        .arg(&config)
        .arg("--data-root")
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("exec"))
        .arg("--pidfile")
        .arg(root.join("berthd.pid"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting berthd")?;
    Ok((child, socket))
}

/// Starts berthd and waits for it.
pub fn start_berth(bin: &Path, root: &Path) -> Result<Engine> {
    let (child, socket) = spawn_berthd(bin, root)?;
    ready(Kind::Berth, "berth", child, socket, root, 30, "berthd.log")
}

/// The engine around a daemon `child` serving `socket`, once `/_ping` answers (within
/// `secs`); the daemon is stopped when it does not.
fn ready(
    kind: Kind,
    name: &'static str,
    child: Child,
    socket: PathBuf,
    root: &Path,
    secs: u64,
    log: &str,
) -> Result<Engine> {
    let mut e = Engine {
        kind,
        name,
        cli: vec![
            "docker".into(),
            "-H".into(),
            format!("unix://{}", socket.display()),
        ],
        daemon: Some(child),
        socket: Some(socket.clone()),
        root: root.to_path_buf(),
    };
    if let Err(err) = wait_ping(&socket, Duration::from_secs(secs)) {
        e.stop();
        return Err(err.context(format!(
            "{name} did not start; see {}",
            root.join(log).display()
        )));
    }
    Ok(e)
}

/// Starts the real Docker engine if `dockerd` is installed.
pub fn start_docker(root: &Path) -> Result<Option<Engine>> {
    let Some(dockerd) = crate::sh::which("dockerd") else {
        return Ok(None);
    };
    fs::create_dir_all(root)?;
    let socket = root.join("docker.sock");
    let log = fs::File::create(root.join("dockerd.log"))?;
    let child = Command::new(dockerd)
        .arg("--data-root")
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("exec"))
        .arg("--pidfile")
        .arg(root.join("dockerd.pid"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting dockerd")?;
    ready(
        Kind::Docker,
        "docker",
        child,
        socket,
        root,
        60,
        "dockerd.log",
    )
    .map(Some)
}

/// Podman, if installed, with private storage and run roots.
pub fn podman(root: &Path) -> Result<Option<Engine>> {
    let Some(podman) = crate::sh::which("podman") else {
        return Ok(None);
    };
    fs::create_dir_all(root)?;
    let conf = root.join("containers.conf");
    fs::write(
        &conf,
        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n",
    )?;
    std::env::set_var("CONTAINERS_CONF", &conf);
    Ok(Some(Engine {
        kind: Kind::Podman,
        name: "podman",
        cli: vec![
            podman.display().to_string(),
            "--root".into(),
            root.join("storage").display().to_string(),
            "--runroot".into(),
            root.join("run").display().to_string(),
        ],
        daemon: None,
        socket: None,
        root: root.to_path_buf(),
    }))
}

/// RSS and PSS of a process in MB (from /proc/PID/status and smaps_rollup).
pub fn rss_pss_mb(pid: u32) -> Option<(f64, f64)> {
    let field = |text: &str, key: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Some((
        field(&status, "VmRSS:")?,
        field(&rollup, "Pss:").unwrap_or(0.0),
    ))
}

/// PIDs of processes whose executable's file name is `name`.
pub fn pids_named(name: &str) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == name)
                .unwrap_or(false)
        })
        .collect()
}
