//! berthd and its plugins: each way a plugin can fail stops berthd with exit status 1 and one
//! line on stderr naming the driver, the library and the reason, leaving the data root
//! untouched; the out-of-tree hello-storage plugin loads and shows in `docker info`, and
//! images imported through it land in its layers.
//!
//! berthd runs from a private folder (a hard link of the built binary), so its search folder
//! holds no bridge plugin: the tests touch no host networking.

#[path = "../../plugins/tests/support/mod.rs"]
mod plugin_fixtures;

use plugin_fixtures::{cargo, libs, target_dir};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A generous bound for a process to exit or a socket to appear — a hang guard, not a timing.
const PATIENCE: Duration = Duration::from_secs(120);

/// berthd, built once, hard-linked into a folder of its own.
fn berthd() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        cargo(&["build", "-p", "berth-daemon"]);
        let dir = target_dir().join("tmp").join("plugins-berthd");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let bin = dir.join("berthd");
        let built = target_dir().join("debug").join("berthd");
        if std::fs::hard_link(&built, &bin).is_err() {
            std::fs::copy(&built, &bin).expect("copy berthd");
        }
        bin
    })
}

/// A test daemon's private folders; berthd is stopped and everything removed on drop.
struct Daemon {
    tmp: tempfile::TempDir,
    child: Option<Child>,
}

impl Daemon {
    fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("berth-plugins-")
            .tempdir()
            .expect("tmp");
        Daemon { tmp, child: None }
    }

    fn data_root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    fn socket(&self) -> PathBuf {
        self.tmp.path().join("berth.sock")
    }

    /// Starts berthd with `config` as daemon.json.
    fn spawn(&mut self, config: &Value) {
        let file = self.tmp.path().join("daemon.json");
        std::fs::write(&file, config.to_string()).expect("write config");
        let t = self.tmp.path();
        let child = Command::new(berthd())
            .arg("--config-file")
            .arg(&file)
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(t.join("exec"))
            .arg("--pidfile")
            .arg(t.join("berthd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--bridge")
            .arg(format!("bp{}", std::process::id() % 100_000))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(t.join("stderr")).expect("stderr file"),
            ))
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("stderr")).unwrap_or_default()
    }

    /// Waits for berthd to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("started");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "berthd did not exit: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until berthd answers `/_ping`.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = self.get("/_ping") {
                return;
            }
            let child = self.child.as_mut().expect("started");
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                panic!("berthd exited with {status}: {}", self.stderr());
            }
            assert!(
                start.elapsed() < PATIENCE,
                "berthd never answered: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A GET over the socket: (status, body).
    fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut s = UnixStream::connect(self.socket())?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: berth\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((code, body.to_string()))
    }

    /// Runs the docker CLI against this daemon: (success, stdout, stderr).
    fn docker(&self, args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
        let mut child = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker CLI");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.unwrap_or_default()).expect("stdin");
        }
        let out = child.wait_with_output().expect("docker");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of the child this test started and has not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() && start.elapsed() < PATIENCE {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts berthd with `config`, expects it to fail, and checks the one-line message.
fn fails(config: Value, words: &[&str]) {
    let mut d = Daemon::new();
    d.spawn(&config);
    let status = d.wait_exit();
    let stderr = d.stderr();
    assert_eq!(status.code(), Some(1), "exit status; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    for w in words {
        assert!(lines[0].contains(w), "{w:?} in {:?}", lines[0]);
    }
    assert!(
        !d.data_root().exists(),
        "the data root stays untouched: {:?}",
        std::fs::read_dir(d.data_root()).map(|r| r.count())
    );
}

fn storage_config(driver: &str, library: &Path) -> Value {
    json!({"storage-driver": driver, "plugins": {"drivers": {driver: library}}})
}

#[test]
fn missing_library_stops_berthd() {
    let lib = Path::new("/nonexistent/berth/libgone.so");
    fails(
        storage_config("gone", lib),
        &["gone", "/nonexistent/berth/libgone.so", "does not exist"],
    );
}

#[test]
fn non_plugin_library_stops_berthd() {
    let tmp = tempfile::tempdir().expect("tmp");
    let lib = tmp.path().join("libx.so");
    std::fs::write(&lib, "not a library\n").expect("write");
    let path = lib.display().to_string();
    fails(
        storage_config("x", &lib),
        &["\"x\"", &path, "not a berth plugin"],
    );
}

#[test]
fn other_interface_version_stops_berthd() {
    let lib = &libs().bad_abi;
    let path = lib.display().to_string();
    fails(
        storage_config("failing", lib),
        &["failing", &path, "interface version 999, expected 1"],
    );
}

#[test]
fn failing_init_stops_berthd() {
    let lib = &libs().fixture;
    let path = lib.display().to_string();
    fails(
        storage_config("failing", lib),
        &[
            "failing",
            &path,
            "failed to initialise",
            "always refuses to start",
        ],
    );
}

#[test]
fn driver_missing_from_library_stops_berthd() {
    let lib = &libs().fixture;
    let path = lib.display().to_string();
    fails(
        storage_config("zfs", lib),
        &["zfs", &path, "no storage driver"],
    );
}

#[test]
fn driver_in_no_search_folder_stops_berthd() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::copy(&libs().hello, tmp.path().join("libhello_storage.so")).expect("copy");
    let dir = tmp.path().display().to_string();
    let config = json!({"storage-driver": "zfs", "plugins": {"search-paths": [tmp.path()]}});
    fails(config, &["zfs", &dir, "no storage driver"]);
}

#[test]
fn hello_storage_plugin_serves_berthd() {
    let mut d = Daemon::new();
    let tmp = tempfile::tempdir().expect("tmp");
    let search = tmp.path().join("plugins");
    std::fs::create_dir_all(&search).expect("mkdir");
    let lib = search.join("libhello_storage.so");
    std::fs::copy(&libs().hello, &lib).expect("copy");
    // Found in a search folder, next to junk that is skipped.
    std::fs::write(search.join("libjunk.so"), "junk").expect("junk");
    d.spawn(&json!({"storage-driver": "hello", "plugins": {"search-paths": [search]}}));
    d.wait_ready();

    let (ok, out, err) = d.docker(&["info", "--format", "{{.Driver}}"], None);
    assert!(ok, "docker info: {err}");
    assert_eq!(out.trim(), "hello");
    let (code, body) = d.get("/info").expect("GET /info");
    assert_eq!(code, 200, "{body}");
    let info: Value = serde_json::from_str(&body).expect("info JSON");
    let plugins = info["BerthPlugins"].as_array().cloned().unwrap_or_default();
    assert!(
        plugins.iter().any(|p| p["Name"] == "hello-storage"
            && p["Driver"] == "hello"
            && p["Kind"] == "storage"
            && p["Library"] == lib.display().to_string()),
        "{plugins:?}"
    );

    // An image imported through the plugin: its layer is a hello layer folder.
    let mut b = tar::Builder::new(Vec::new());
    let data = b"hello from a plugin\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    b.append_data(&mut h, "greeting.txt", &data[..])
        .expect("tar");
    let tar = b.into_inner().expect("tar");
    let (ok, _, err) = d.docker(&["import", "-", "hello-img:1"], Some(&tar));
    assert!(ok, "docker import: {err}");
    let (ok, out, err) = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"], None);
    assert!(ok, "docker images: {err}");
    assert!(out.lines().any(|l| l == "hello-img:1"), "{out}");
    let layers = d.data_root().join("hello");
    let found = std::fs::read_dir(&layers)
        .expect("hello layers")
        .flatten()
        .any(|e| e.path().join("fs/greeting.txt").exists());
    assert!(found, "the imported layer is stored by the hello plugin");
}
