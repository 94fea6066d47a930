//! [`TestDaemon`]: one berthd with private folders, socket, bridge and subnet.

use crate::cleanup;
use crate::cmd::{run, Output};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long to wait for berthd to answer `/_ping` — a hang guard, not a timing assertion.
const START_PATIENCE: Duration = Duration::from_secs(120);
/// How long berthd gets to stop after SIGTERM before SIGKILL.
const STOP_PATIENCE: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The folder holding the binaries: `$BERTH_BIN_DIR` when set (prebuilt binaries; what
/// `cargo xtask critest` passes), else the cargo target profile folder (`target/debug`), the
/// grandparent of the running test executable (`target/debug/deps/<test>-<hash>`).
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target/debug"))
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Options for a [`TestDaemon`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    storage_driver: Option<String>,
    config: serde_json::Map<String, Value>,
    args: Vec<String>,
    tcp: bool,
    berthd: Option<PathBuf>,
}

impl Builder {
    /// `storage-driver` in daemon.json (`vfs`, `overlay2`).
    pub fn storage_driver(mut self, name: &str) -> Self {
        self.storage_driver = Some(name.to_string());
        self
    }

    /// Extra daemon.json keys (an object); they override the harness's defaults.
    pub fn config_json(mut self, v: Value) -> Self {
        if let Value::Object(m) = v {
            self.config.extend(m);
        }
        self
    }

    /// Extra berthd command-line arguments.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    /// Runs this berthd binary instead of the target folder's (an older build: its
    /// berth-monitor and plugins are the ones beside it).
    pub fn berthd(mut self, bin: &Path) -> Self {
        self.berthd = Some(bin.to_path_buf());
        self
    }

    /// Also listen on `tcp://127.0.0.1:<free port>` ([`TestDaemon::tcp_host`]).
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Starts berthd and waits until it answers `/_ping`. Panics with its log if it cannot.
    #[track_caller]
    pub fn start(self) -> TestDaemon {
        let mut d = self.prepare();
        d.spawn();
        d
    }

    /// Writes the folders and daemon.json without starting berthd (for start-up failure
    /// tests: run [`TestDaemon::berthd_command`] yourself). Dropping it still cleans up.
    pub fn prepare(self) -> TestDaemon {
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("creating the test daemon's temp dir");
        let dir = tmp.path().to_path_buf();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let bridge = format!("bt{:05x}{:x}", pid & 0xfffff, n % 16);
        let subnet = pick_subnet("10.213", pid, n);
        let tcp_port = if self.tcp { Some(free_port()) } else { None };
        let socket = dir.join("berth.sock");
        let mut hosts = vec![format!("unix://{}", socket.display())];
        if let Some(p) = tcp_port {
            hosts.push(format!("tcp://127.0.0.1:{p}"));
        }
        let mut config = json!({
            "data-root": dir.join("root"),
            "exec-root": dir.join("exec"),
            "pidfile": dir.join("berthd.pid"),
            "hosts": hosts,
            "bridge": bridge,
            "bip": format!("10.213.{subnet}.1/24"),
            "log-level": "debug",
        });
        // Never the host's /etc/cni/net.d: pods get loopback only unless a test gives its own
        // network (`berth_tests::cni::CniNet::daemon_config`). Not for another build of berthd
        // (the upgrade test's older one refuses keys it does not know).
        if let (Value::Object(m), None) = (&mut config, &self.berthd) {
            m.insert("cri".into(), json!({"cni-conf-dir": dir.join("cni-net.d")}));
            std::fs::create_dir_all(dir.join("cni-net.d")).expect("mkdir cni-net.d");
        }
        if let (Value::Object(m), Some(drv)) = (&mut config, &self.storage_driver) {
            m.insert("storage-driver".into(), json!(drv));
        }
        if let Value::Object(m) = &mut config {
            m.extend(self.config.clone());
        }
        let config_file = dir.join("daemon.json");
        std::fs::write(&config_file, config.to_string()).expect("writing daemon.json");
        std::fs::create_dir_all(dir.join("docker-config")).expect("mkdir docker-config");
        TestDaemon {
            dir,
            config_file,
            config,
            socket,
            bridge,
            subnet,
            tcp_port,
            args: self.args,
            berthd: self.berthd,
            child: None,
            _tmp: Some(tmp),
        }
    }
}

/// Picks `N` for the subnet `<prefix>.N.0/24` (e.g. `10.213`) from the pid and a counter,
/// skipping any in use on this host.
pub(crate) fn pick_subnet(prefix: &str, pid: u32, n: u32) -> u8 {
    let used = Command::new("ip")
        .args(["-o", "-4", "addr"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let start = (pid.wrapping_mul(31).wrapping_add(n.wrapping_mul(7))) % 250;
    (0..250)
        .map(|i| ((start + i) % 250 + 2) as u8)
        .find(|c| !used.contains(&format!("{prefix}.{c}.")))
        .unwrap_or(2)
}

/// A running berthd with its own folders. Dropping it stops berthd and removes everything it
/// and its containers left behind.
pub struct TestDaemon {
    dir: PathBuf,
    config_file: PathBuf,
    config: Value,
    socket: PathBuf,
    bridge: String,
    subnet: u8,
    tcp_port: Option<u16>,
    args: Vec<String>,
    berthd: Option<PathBuf>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestDaemon {
    /// A daemon with the default options.
    #[track_caller]
    pub fn start() -> TestDaemon {
        Builder::default().start()
    }

    /// Options.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The berthd binary (`target/debug/berthd`).
    pub fn berthd_bin() -> PathBuf {
        target_dir().join("berthd")
    }

    /// The berth CLI binary (`target/debug/berth`).
    pub fn berth_bin() -> PathBuf {
        target_dir().join("berth")
    }

    /// The command line this daemon runs (`berthd --config-file <dir>/daemon.json ...`).
    pub fn berthd_command(&self) -> Command {
        let bin = self.berthd.clone().unwrap_or_else(Self::berthd_bin);
        let mut c = Command::new(bin);
        c.arg("--config-file")
            .arg(&self.config_file)
            .args(&self.args);
        c
    }

    /// The berthd binary the next start ([`TestDaemon::restart`]) runs: `None` for the target
    /// folder's.
    pub fn use_berthd(&mut self, bin: Option<&Path>) {
        self.berthd = bin.map(Path::to_path_buf);
    }

    fn spawn(&mut self) {
        let bin = self.berthd.clone().unwrap_or_else(Self::berthd_bin);
        assert!(
            bin.exists(),
            "{} not found: run `cargo build --workspace` before the integration tests",
            bin.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening berthd.log");
        let child = self
            .berthd_command()
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawning berthd");
        self.child = Some(child);
        self.wait_ready();
    }

    #[track_caller]
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if ping(&self.socket) {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    panic!(
                        "berthd exited with {status} before answering /_ping:\n{}",
                        self.log()
                    );
                }
            }
            if Instant::now() > deadline {
                panic!("berthd did not answer /_ping in time:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The temp folder holding everything of this daemon.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data root.
    pub fn data_root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The exec root.
    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("exec")
    }

    /// Mount points in this (the host's) namespace under this daemon's folder, but for
    /// `<exec-root>/containers`, which berthd gives a mount of its own at start-up (as dockerd
    /// its storage folders) and leaves: what containers mounted and left behind.
    pub fn host_mounts(&self) -> Vec<PathBuf> {
        let holder = self.exec_root().join("containers");
        cleanup::mounts_under(&self.dir)
            .into_iter()
            .filter(|m| *m != holder)
            .collect()
    }

    /// The daemon.json in use.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix:///.../berth.sock`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// `tcp://127.0.0.1:<port>` when built with [`Builder::tcp`].
    pub fn tcp_host(&self) -> Option<String> {
        self.tcp_port.map(|p| format!("tcp://127.0.0.1:{p}"))
    }

    /// The default bridge's device name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The default bridge's subnet, `10.213.N.0/24`.
    pub fn subnet(&self) -> String {
        format!("10.213.{}.0/24", self.subnet)
    }

    /// berthd's process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("berthd.log")
    }

    /// The `berth-monitor` processes serving this daemon's containers (command line naming
    /// its folder, or files under it held open: see `cleanup::processes_using`).
    pub fn monitor_pids(&self) -> Vec<i32> {
        crate::cleanup::processes_using(self.dir())
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "berth-monitor")
            })
            .collect()
    }

    /// Everything berthd printed so far (it logs at debug level).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The real docker CLI against this daemon (its own empty DOCKER_CONFIG).
    pub fn docker(&self, args: &[&str]) -> Output {
        run(self.docker_cmd(args), None)
    }

    /// The docker CLI with `stdin` fed to it.
    pub fn docker_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(self.docker_cmd(args), Some(stdin))
    }

    /// The docker CLI running in the background, its output line by line (`events`,
    /// `logs -f`); killed when dropped.
    #[track_caller]
    pub fn docker_lines(&self, args: &[&str]) -> crate::Lines {
        crate::Lines::spawn(self.docker_cmd(args)).expect("spawning docker")
    }

    /// A ready-to-run docker command (for tests that need to manage the process themselves).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("/usr/local/bin/docker");
        c.arg("-H")
            .arg(self.host())
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        c
    }

    /// berth's CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Output {
        run(self.berth_cmd(args), None)
    }

    /// berth's CLI with `stdin` fed to it.
    pub fn berth_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(self.berth_cmd(args), Some(stdin))
    }

    /// A ready-to-run berth command.
    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(Self::berth_bin());
        c.arg("-H")
            .arg(self.host())
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST");
        c
    }

    /// Runs `script` in python3 after `import docker` and
    /// `c = docker.DockerClient(base_url=<host>)`.
    pub fn python(&self, script: &str) -> Output {
        let full = format!(
            "import docker\nc = docker.DockerClient(base_url={:?})\n{script}\n",
            self.host()
        );
        let mut cmd = Command::new("python3");
        cmd.arg("-c")
            .arg(full)
            .env("DOCKER_CONFIG", self.dir.join("docker-config"));
        run(cmd, None)
    }

    /// Writes the busybox rootfs tarball into the daemon's folder and returns its path.
    pub fn busybox_tar(&self) -> PathBuf {
        let p = self.dir.join("busybox-rootfs.tar");
        if !p.exists() {
            crate::busybox_rootfs_tar(&p).expect("building the busybox rootfs tarball");
        }
        p
    }

    /// Imports the busybox rootfs as `busybox:latest` with `docker import` (Cmd `sh`).
    #[track_caller]
    pub fn import_busybox(&self) {
        self.import_busybox_as("busybox:latest");
    }

    /// Imports the busybox rootfs as `name` with `docker import` (Cmd `sh`).
    #[track_caller]
    pub fn import_busybox_as(&self, name: &str) {
        let tar = self.busybox_tar();
        let tar = tar.display().to_string();
        self.docker(&["import", "-c", "CMD [\"sh\"]", &tar, name])
            .ok();
    }

    /// The host PID of container `id`'s first process (`inspect`'s `.State.Pid`).
    pub fn container_pid(&self, id: &str) -> String {
        self.docker(&["inspect", "-f", "{{.State.Pid}}", id])
            .ok()
            .trim()
            .to_string()
    }

    /// Runs a detached `busybox sleep 300` named `name` without networking (busybox must be
    /// imported); returns its id.
    #[track_caller]
    pub fn sleeper(&self, name: &str) -> String {
        let args = ["run", "-d", "--name", name, "--network", "none"];
        let mut args = args.to_vec();
        args.extend(["busybox", "sleep", "300"]);
        self.docker(&args).ok().trim().to_string()
    }

    /// Sends a raw HTTP/1.1 request over the unix socket and returns (status, headers, body).
    /// The connection is closed after one response, so the body is read to its end.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
        raw_request(&self.socket, method, path, body)
    }

    /// SIGKILLs berthd (its containers' monitors live on).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops berthd gracefully (SIGTERM; SIGKILL if it does not exit in time). Returns its exit
    /// status code if it exited by itself.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        signal(c.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_PATIENCE;
        loop {
            match c.try_wait() {
                Ok(Some(s)) => return s.code(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    return None;
                }
            }
        }
    }

    /// Stops berthd (if running) and starts it again on the same folders.
    #[track_caller]
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.stop();
        // A test may have named the default bridge itself (`config_json`).
        let bridge = self.config["bridge"]
            .as_str()
            .unwrap_or(&self.bridge)
            .to_string();
        cleanup::everything(&self.dir, &self.data_root(), &bridge);
    }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on a process id we spawned; no memory is involved.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Whether `/_ping` answers 200 on `socket`.
fn ping(socket: &Path) -> bool {
    socket.exists() && raw_request(socket, "GET", "/_ping", None).0 == 200
}

/// One HTTP/1.1 request with `Connection: close`; (0, "", error) when the socket fails.
pub(crate) fn raw_request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut s = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return (0, String::new(), e.to_string()),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new(), "write failed".into());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, String::from_utf8_lossy(&raw).into_owned(), String::new());
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let rest = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&s[..eol]).into_owned();
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let rest = &s[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}
