//! Shared helpers of the runtime tests: busybox root filesystems, bundles with a `config.json`
//! built by `berth_runtime::spec`, the `berth-monitor` binary and its socket protocol
//! (monitor/PROTOCOL.md), and clean-up of cgroups and processes even when a test fails.

#![allow(dead_code)]

use berth_runtime::spec::{build_json, SpecOptions};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How long a test waits for a container's exit or output before failing (a hang guard).
pub const WAIT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// The cgroup parent of test containers (kept apart from berthd's `berth/`).
pub const CGROUP_PARENT: &str = "berth-test";

/// Fills `root` with busybox, its applet links, `/etc/passwd` and `/etc/group`.
pub fn busybox_rootfs(root: &Path) {
    for d in [
        "bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copy busybox");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n",
    )
    .expect("group");
    std::fs::write(root.join("etc/notexec"), "#!/bin/sh\necho hi\n").expect("notexec");
}

/// The `berth-monitor` binary: `$BERTH_TEST_MONITOR`, or the one next to the test executable
/// (built on demand).
pub fn monitor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_TEST_MONITOR") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let bin = dir.join("berth-monitor");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "berth-monitor"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("cargo build");
        assert!(status.success(), "building berth-monitor");
    }
    bin
}

/// One container under test: its state folder, bundle and log.
pub struct Ctr {
    /// Keeps the temporary folder alive.
    pub tmp: tempfile::TempDir,
    /// Container id.
    pub id: String,
    /// State folder (`S`).
    pub state: PathBuf,
    /// Bundle folder.
    pub bundle: PathBuf,
    /// `bundle/rootfs`.
    pub rootfs: PathBuf,
    /// json-file log.
    pub log: PathBuf,
}

impl Ctr {
    /// A fresh busybox container folder.
    pub fn new(tag: &str) -> Ctr {
        let tmp = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir()
            .expect("tmp");
        let id = format!(
            "{tag}{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let state = tmp.path().join("state");
        let bundle = tmp.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&state).expect("state");
        busybox_rootfs(&rootfs);
        let log = tmp.path().join("ctr-json.log");
        Ctr {
            tmp,
            id,
            state,
            bundle,
            rootfs,
            log,
        }
    }

    /// Default options for `args` in this container.
    pub fn opts(&self, args: &[&str]) -> SpecOptions {
        SpecOptions {
            id: self.id.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: "/".into(),
            hostname: "testhost".into(),
            rootfs: self.rootfs.display().to_string(),
            cgroup_path: self.cgroup_path(),
            ..Default::default()
        }
    }

    /// The cgroup path relative to the hierarchy roots.
    pub fn cgroup_path(&self) -> String {
        format!("{CGROUP_PARENT}/{}", self.id)
    }

    /// Writes `config.json`.
    pub fn write_spec(&self, o: &SpecOptions) -> Value {
        let spec = build_json(o).expect("spec");
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec).expect("json"),
        )
        .expect("config.json");
        spec
    }

    /// The monitor's runtime choice (PROTOCOL.md) for `{"kind":"native"}` or
    /// `{"kind":"oci","path","args"}`: the runtime plugins linked into berth-monitor, named as
    /// berthd names them.
    pub fn runtime_choice(&self, runtime: &Value) -> Value {
        let version = env!("CARGO_PKG_VERSION");
        match runtime["kind"].as_str() {
            Some("oci") => json!({
                "name": "runc", "driver": "runc", "plugin": "berth-runtime-oci",
                "version": version, "library": "libberth_runtime_oci.so",
                "config": {"path": runtime["path"], "args": runtime["args"],
                           "root": self.state.join("oci")},
            }),
            Some("native") => json!({
                "name": "native", "driver": "native", "plugin": "berth-runtime-native",
                "version": version, "library": "libberth_runtime_native.so", "config": {},
            }),
            _ => runtime.clone(),
        }
    }

    /// Writes `monitor.json` for `runtime` (`{"kind":"native"}` or an OCI binary).
    pub fn write_monitor_json(&self, runtime: Value, tty: bool, open_stdin: bool) {
        self.write_monitor_json_with(runtime, tty, open_stdin, json!([]));
    }

    /// Writes `monitor.json` with `rootfs_mounts` (core::Mount objects) for the monitor to do.
    pub fn write_monitor_json_with(
        &self,
        runtime: Value,
        tty: bool,
        open_stdin: bool,
        rootfs_mounts: Value,
    ) {
        let m = json!({
            "id": self.id,
            "bundle": self.bundle,
            "runtime": self.runtime_choice(&runtime),
            "rootfs_mounts": rootfs_mounts,
            "log_path": self.log,
            "tty": tty,
            "open_stdin": open_stdin,
            "stdin_once": open_stdin,
            "console_size": if tty { json!([30, 100]) } else { Value::Null },
        });
        std::fs::write(self.state.join("monitor.json"), m.to_string()).expect("monitor.json");
    }

    /// Spawns the monitor; returns its ready line.
    pub fn spawn(&self) -> Value {
        let (r, w) = pipe();
        let wfd = w.as_raw_fd();
        let mut cmd = Command::new(monitor_bin());
        cmd.arg(&self.state)
            .args(["--ready-fd", "3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: dup2 between fork and exec, async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(wfd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn monitor");
        drop(w);
        let _ = child.wait();
        let mut line = String::new();
        BufReader::new(r).read_line(&mut line).expect("ready line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"))
    }

    /// Opens a connection and sends `cmd`; returns the stream and the reply line.
    pub fn connect(&self, cmd: Value) -> (UnixStream, Value) {
        let mut s = UnixStream::connect(self.state.join("monitor.sock")).expect("connect");
        let _ = s.set_read_timeout(Some(WAIT_PATIENCE));
        s.write_all(format!("{cmd}\n").as_bytes()).expect("send");
        let reply = read_line(&mut s);
        (s, serde_json::from_str(&reply).unwrap_or(Value::Null))
    }

    /// Sends one command and returns the reply.
    pub fn cmd(&self, cmd: Value) -> Value {
        self.connect(cmd).1
    }

    /// Like [`Ctr::cmd`], but Null when the monitor is gone or closes without answering.
    pub fn cmd_or_eof(&self, cmd: Value) -> Value {
        let Ok(mut s) = UnixStream::connect(self.state.join("monitor.sock")) else {
            return Value::Null;
        };
        let _ = s.set_read_timeout(Some(WAIT_PATIENCE));
        if s.write_all(format!("{cmd}\n").as_bytes()).is_err() {
            return Value::Null;
        }
        serde_json::from_str(&read_line(&mut s)).unwrap_or(Value::Null)
    }

    /// Waits for the exit (the `wait` reply) and the monitor's clean-up after it.
    pub fn wait(&self) -> Value {
        let Ok(mut s) = UnixStream::connect(self.state.join("monitor.sock")) else {
            return Value::Null;
        };
        let _ = s.set_read_timeout(Some(WAIT_PATIENCE));
        if s.write_all(b"{\"cmd\":\"wait\"}\n").is_err() {
            return Value::Null;
        }
        finish_wait(s)
    }

    /// The concatenated `log` fields of the json-file log for `stream`.
    pub fn log_text(&self, stream: &str) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["stream"] == stream)
            .filter_map(|v| v["log"].as_str().map(str::to_string))
            .collect()
    }

    /// Polls the json-file log until its stdout holds `text` (a hang guard of a minute, not
    /// a timing assertion).
    pub fn wait_for_log(&self, text: &str) {
        let deadline = std::time::Instant::now() + WAIT_PATIENCE;
        while !self.log_text("stdout").contains(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "{text:?} never reached the log: {:?}",
                self.log_text("stdout")
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The monitor's `exit.json`, once written (within 10 s).
    pub fn exit_record(&self) -> Value {
        let t = std::time::Instant::now();
        loop {
            if let Some(v) = std::fs::read(self.state.join("exit.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                return v;
            }
            assert!(t.elapsed().as_secs() < 10, "no exit.json");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Runs `o` with the native runtime to completion: (exit.json, stdout log, stderr log).
    pub fn run(&self, o: &SpecOptions) -> (Value, String, String) {
        self.run_with(o, json!({"kind": "native"}))
    }

    /// Runs `o` with `runtime` to completion.
    pub fn run_with(&self, o: &SpecOptions, runtime: Value) -> (Value, String, String) {
        self.write_spec(o);
        self.write_monitor_json(runtime, o.tty, false);
        let ready = self.spawn();
        assert_eq!(ready["ok"], true, "ready: {ready}");
        let (waiter, _) = self.connect_wait();
        let start = self.cmd(json!({"cmd": "start"}));
        let exit = finish_wait(waiter);
        let _ = start;
        (exit, self.log_text("stdout"), self.log_text("stderr"))
    }

    /// Opens a `wait` connection (the reply comes at exit; a read that outlasts
    /// [`WAIT_PATIENCE`] ends it, so a lost exit fails the test instead of hanging it).
    pub fn connect_wait(&self) -> (UnixStream, ()) {
        let mut s = UnixStream::connect(self.state.join("monitor.sock")).expect("connect");
        let _ = s.set_read_timeout(Some(WAIT_PATIENCE));
        s.write_all(b"{\"cmd\":\"wait\"}\n").expect("send");
        (s, ())
    }

    /// Removes the test cgroup folders if the monitor did not.
    fn cleanup_cgroups(&self) {
        let rel = self.cgroup_path();
        if let Ok(d) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in d.flatten() {
                let p = e.path().join(&rel);
                if p.exists() {
                    kill_procs(&p);
                    for _ in 0..100 {
                        if std::fs::remove_dir(&p).is_ok() || !p.exists() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
                // The shared parent stays: removing it while a parallel test is creating its
                // own cgroup under it races with runc (ENODEV on the parent's cpuset files).
            }
        }
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        if self.state.join("monitor.sock").exists() {
            if let Ok(mut s) = UnixStream::connect(self.state.join("monitor.sock")) {
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let _ = s.write_all(b"{\"cmd\":\"kill\",\"signal\":9,\"all\":true}\n");
                let _ = read_line(&mut s);
            }
            if let Ok(mut s) = UnixStream::connect(self.state.join("monitor.sock")) {
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let _ = s.write_all(b"{\"cmd\":\"wait\"}\n");
                let _ = read_line(&mut s);
            }
        }
        if let Ok(st) = std::fs::read_to_string(self.state.join("state.json")) {
            if let Ok(v) = serde_json::from_str::<Value>(&st) {
                if let Some(p) = v["monitor_pid"].as_i64() {
                    // SAFETY: kill(2) on the monitor this test started.
                    unsafe { libc::kill(p as i32, libc::SIGKILL) };
                }
            }
        }
        self.cleanup_cgroups();
    }
}

fn kill_procs(cg: &Path) {
    for _ in 0..50 {
        let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        if procs.trim().is_empty() {
            return;
        }
        for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) on processes of this test's cgroup.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Reads the reply of a `wait` connection.
pub fn finish_wait(mut s: UnixStream) -> Value {
    let line = read_line(&mut s);
    // The reply says the container exited; the end of the connection, that the monitor has
    // also removed the cgroup and unmounted (PROTOCOL.md, "Exit and clean-up").
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    serde_json::from_str(&line).unwrap_or(Value::Null)
}

/// Reads one `\n`-terminated line, byte by byte (the rest stays in the socket).
pub fn read_line(s: &mut UnixStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while let Ok(1) = s.read(&mut b) {
        if b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads stdcopy frames until EOF: (stdout, stderr).
pub fn read_frames(s: &mut UnixStream) -> (String, String) {
    let mut data = Vec::new();
    let _ = s.read_to_end(&mut data);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i + 8 <= data.len() {
        let len = u32::from_be_bytes([data[i + 4], data[i + 5], data[i + 6], data[i + 7]]) as usize;
        let end = (i + 8 + len).min(data.len());
        let payload = &data[i + 8..end];
        if data[i] == 2 {
            err.extend_from_slice(payload);
        } else {
            out.extend_from_slice(payload);
        }
        i = end;
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// A pipe (read end, write end), close-on-exec.
pub fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 with a valid two-element array.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2");
    use std::os::fd::FromRawFd;
    // SAFETY: both descriptors were just created and are owned here.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

/// Whether a process exists.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}
