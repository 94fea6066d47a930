//! A private Debian `docker-registry` on 127.0.0.1 for the pull benchmark, filled with skopeo.

use anyhow::{bail, Context, Result};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry; stopped (by PID) when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
}

impl Registry {
    /// Starts a registry storing its data under `work`.
    pub fn start(work: &Path) -> Result<Registry> {
        let bin = crate::sh::which("docker-registry")
            .context("docker-registry is not installed (apt-get install docker-registry)")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let dir = work.join("registry");
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry")?;
        let reg = Registry { addr, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&reg.addr).is_ok() {
                return Ok(reg);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("docker-registry did not listen on {}", reg.addr)
    }

    /// Pushes a docker-archive to `name` (e.g. `big:latest`) with skopeo.
    pub fn push_archive(&self, archive: &Path, name: &str) -> Result<()> {
        crate::sh::output(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--dest-tls-verify=false"])
                .arg(format!("docker-archive:{}", archive.display()))
                .arg(format!("docker://{}/{name}", self.addr)),
        )
        .map(|_| ())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
