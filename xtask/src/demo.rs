//! `cargo xtask demo`: the README's first command.
//!
//! On a fresh Debian machine (as root) it installs what berth needs at run time, builds the
//! release binaries and plugins, starts berthd on its default configuration (no config file:
//! data root /var/lib/berth, socket /run/berth/berth.sock, plugins found beside berthd), makes
//! a busybox image locally from Debian's busybox-static and runs a container from it — first
//! with `berth`, then with the stock docker CLI when it is installed. berthd stays running.

use crate::sh::{apt_install, cargo, workspace_root};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Packages berth needs to build (`protobuf-compiler`: the CRI's protos) and at run time
/// (`containernetworking-plugins`: the CNI plugins pods will use).
pub const RUNTIME_PACKAGES: &[&str] = &[
    "busybox-static",
    "iproute2",
    "iptables",
    "nftables",
    "tini",
    "protobuf-compiler",
    "containernetworking-plugins",
];

const SOCKET: &str = "/run/berth/berth.sock";

/// Entry point.
pub fn run(_args: &[String]) -> Result<()> {
    apt_install(RUNTIME_PACKAGES)?;
    run_cmd(cargo().args(["build", "--release", "--workspace", "--bins", "--lib"]))?;
    let bin = workspace_root().join("target/release");
    let berth = bin.join("berth");
    let pid = start_daemon(&bin.join("berthd"))?;
    let rootfs = std::env::temp_dir().join("berth-demo-busybox-rootfs.tar");
    berth_testimg::busybox_rootfs_tar(&rootfs).context("making the busybox rootfs")?;
    run_cmd(
        Command::new(&berth)
            .arg("import")
            .arg(&rootfs)
            .arg("busybox:demo"),
    )?;
    run_cmd(Command::new(&berth).args(["images"]))?;
    run_cmd(Command::new(&berth).args([
        "run",
        "--rm",
        "busybox:demo",
        "sh",
        "-c",
        "echo \"hello from a berth container: $(hostname), pid $$, $(uname -r)\"",
    ]))?;
    if Path::new("/usr/local/bin/docker").exists() || crate::sh::have("docker") {
        run_cmd(Command::new("docker").args([
            "-H",
            &format!("unix://{SOCKET}"),
            "run",
            "--rm",
            "busybox:demo",
            "echo",
            "hello through the docker CLI",
        ]))?;
    }
    eprintln!("\nberthd is running (pid {pid}) on unix://{SOCKET}; stop it with: kill {pid}");
    Ok(())
}

fn run_cmd(cmd: &mut Command) -> Result<()> {
    crate::sh::run(cmd)
}

fn start_daemon(berthd: &PathBuf) -> Result<u32> {
    if ping() {
        eprintln!("xtask: a daemon already answers on {SOCKET}; using it");
        return Ok(0);
    }
    let log =
        std::fs::File::create("/var/log/berthd.log").context("creating /var/log/berthd.log")?;
    let child = Command::new(berthd)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", berthd.display()))?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ping() {
            eprintln!("xtask: berthd (pid {pid}) answers on {SOCKET}; log in /var/log/berthd.log");
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("berthd did not answer on {SOCKET} within 20 s; see /var/log/berthd.log")
}

fn ping() -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(SOCKET) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}
