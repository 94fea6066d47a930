//! A private real Docker engine (Debian's dockerd) for comparison tests: its own data root,
//! exec root, socket, no default bridge (or, with [`RealEngine::start_bridged`], a private
//! one) and the vfs driver; stopped (by PID), its mounts detached and its bridge deleted when
//! dropped. Tests skip, with a message, when dockerd is not installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOCKER: &str = "/usr/local/bin/docker";
/// Where dockerd may be installed.
const DOCKERDS: [&str; 2] = ["/usr/sbin/dockerd", "/usr/bin/dockerd"];

/// A private dockerd, stopped (by PID) and removed when dropped.
pub struct RealEngine {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The private default bridge made for it, deleted at drop.
    bridge: Option<String>,
}

impl RealEngine {
    /// Starts one, or `None` (with a message) when dockerd is missing.
    pub fn start() -> Option<RealEngine> {
        Self::start_with(None)
    }

    /// Starts one whose default bridge is a private device on a free `10.214.N.0/24` (made
    /// here, deleted at drop; no iptables rules), for links and the default bridge's names.
    pub fn start_bridged() -> Option<RealEngine> {
        if !DOCKERDS.iter().any(|p| Path::new(p).exists()) {
            return Self::start_with(None);
        }
        let name = format!("rd{:05x}", std::process::id() & 0xfffff);
        let used = Command::new("ip")
            .args(["-o", "-4", "addr"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let start = std::process::id() % 250;
        let n = (0..250)
            .map(|i| (start + i) % 250 + 2)
            .find(|c| !used.contains(&format!("10.214.{c}.")))
            .unwrap_or(2);
        // One left by a test of this process that did not finish.
        let _ = Command::new("ip")
            .args(["link", "del", &name])
            .stderr(Stdio::null())
            .status();
        for args in [
            vec!["link", "add", &name, "type", "bridge"],
            vec!["addr", "add", &format!("10.214.{n}.1/24"), "dev", &name],
            vec!["link", "set", &name, "up"],
        ] {
            let ok = Command::new("ip")
                .args(&args)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip {args:?} failed");
        }
        Self::start_with(Some(name))
    }

    fn start_with(bridge: Option<String>) -> Option<RealEngine> {
        let dockerd = DOCKERDS.into_iter().find(|p| Path::new(p).exists());
        let Some(dockerd) = dockerd else {
            eprintln!("SKIP: dockerd is not installed; the real-engine round trip is not tested");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("berth-realdocker-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        let p = dir.path();
        std::fs::write(p.join("daemon.json"), "{}").expect("daemon.json");
        let log = std::fs::File::create(p.join("dockerd.log")).expect("log");
        let child = Command::new(dockerd)
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("dockerd.pid"))
            .arg("--config-file")
            .arg(p.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", p.join("docker.sock").display()))
            .arg(format!("--bridge={}", bridge.as_deref().unwrap_or("none")))
            .args(["--iptables=false", "--ip-masq=false"])
            .args(["--ip6tables=false", "--storage-driver", "vfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning dockerd");
        let mut e = RealEngine {
            dir,
            child: Some(child),
            bridge,
        };
        // A hang guard, not a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !e.docker(&["version"]).0 {
            if Instant::now() > deadline {
                panic!("dockerd did not come up: {}", e.log());
            }
            if let Some(Ok(Some(st))) = e.child.as_mut().map(Child::try_wait) {
                panic!("dockerd exited with {st}: {}", e.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(e)
    }

    /// dockerd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// A path in its private folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the docker CLI against the real engine: (success, stdout, stderr).
    pub fn docker(&self, args: &[&str]) -> (bool, String, String) {
        let o = Command::new(DOCKER)
            .arg("-H")
            .arg(format!("unix://{}", self.path("docker.sock").display()))
            .args(args)
            .env("DOCKER_CONFIG", self.path("docker-config"))
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("running docker");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    #[track_caller]
    /// Runs the docker CLI and panics unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.docker(args);
        assert!(ok, "real docker {args:?} failed: {err}\n{out}");
        out
    }

    /// Imports busybox into berthd `d` and loads the same image into this engine (both then
    /// have it as `busybox:latest`, with the same ID).
    #[track_caller]
    pub fn load_busybox_of(&self, d: &crate::TestDaemon) {
        d.import_busybox();
        let saved = d.dir().join("bb.tar");
        d.docker(&["save", "-o", &saved.display().to_string(), "busybox:latest"])
            .ok();
        self.ok(&["load", "-i", &saved.display().to_string()]);
    }
}

impl RealEngine {
    /// The bridge devices of the user networks this engine made (`br-<short id>`): dockerd
    /// leaves them on the host when it stops, so the drop deletes them. Never panics.
    fn user_bridges(&self) -> Vec<String> {
        Command::new(DOCKER)
            .arg("-H")
            .arg(format!("unix://{}", self.path("docker.sock").display()))
            .args(["network", "ls", "-q", "--filter", "type=custom"])
            .env("DOCKER_CONFIG", self.path("docker-config"))
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter(|id| id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(|id| format!("br-{}", &id[..12]))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for RealEngine {
    fn drop(&mut self) {
        let user_bridges = if self.child.is_some() {
            self.user_bridges()
        } else {
            Vec::new()
        };
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on the dockerd we spawned; no memory is involved.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Detach anything dockerd mounted under its folders before they are removed.
        let root = self.dir.path().display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
        for b in user_bridges.iter().chain(self.bridge.iter()) {
            let _ = Command::new("ip")
                .args(["link", "del", b])
                .stderr(Stdio::null())
                .status();
        }
    }
}
