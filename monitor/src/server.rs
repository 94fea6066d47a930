//! The monitor's life: detach, create the container, serve the socket, supervise, clean up.

use crate::config::{now, write_atomic, ExitInfo, MonitorConfig, RuntimeSel};
use crate::log::JsonLog;
use berth_core::runtime::StdioFds;
use berth_core::Runtime;
use berth_runtime::native::NativeRuntime;
use berth_runtime::oci::OciRuntime;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

struct Client {
    sock: UnixStream,
    buf: Vec<u8>,
    mode: Mode,
    /// The client half-closed: no more input to read, output still flows.
    eof: bool,
}

#[derive(PartialEq)]
enum Mode {
    Command,
    Attached {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Waiting,
}

struct Io {
    /// pty master, or None.
    master: Option<File>,
    /// Container stdout/stderr read ends (pipes), or the master for a tty.
    outs: Vec<(File, u8)>,
    /// Where client stdin goes.
    stdin: Option<File>,
}

fn ready_line(fd: RawFd, v: Value) {
    if fd < 0 {
        return;
    }
    // SAFETY: the ready fd was handed to us by berthd and is used once, here.
    let mut f = unsafe { File::from_raw_fd(fd) };
    let _ = f.write_all(format!("{v}\n").as_bytes());
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&[stream, 0, 0, 0]);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

fn pipe() -> std::io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    Ok((File::from(r), File::from(w)))
}

fn detach() {
    // SAFETY: fork in a single-threaded process; the parent exits at once.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(_) => std::process::exit(1),
    }
    let _ = nix::unistd::setsid();
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Runs the monitor for the container whose state folder is `dir`. Returns the exit status.
pub fn run(dir: &Path, ready_fd: RawFd) -> i32 {
    let cfg: MonitorConfig = match std::fs::read(dir.join("monitor.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(c) => c,
        None => {
            ready_line(
                ready_fd,
                json!({"ok": false, "error": format!("cannot read {}/monitor.json", dir.display())}),
            );
            return 1;
        }
    };
    detach();
    let rootfs = PathBuf::from(&cfg.bundle).join("rootfs");
    let _ = std::fs::create_dir_all(&rootfs);
    if let Err(e) = berth_core::mount::mount_all(&cfg.rootfs_mounts, &rootfs) {
        ready_line(
            ready_fd,
            json!({"ok": false, "error": format!("mounting the container's rootfs: {e}")}),
        );
        return 1;
    }
    let cleanup_mounts = |cfg: &MonitorConfig| {
        if !cfg.rootfs_mounts.is_empty() {
            let _ = berth_core::mount::unmount(&rootfs);
        }
    };
    let runtime: Box<dyn Runtime> = match &cfg.runtime {
        RuntimeSel::Native => Box::new(NativeRuntime::default()),
        RuntimeSel::Oci { path, args } => Box::new(OciRuntime {
            binary: path.into(),
            args: args.clone(),
            root: dir.join("oci"),
        }),
    };
    let spec: berth_core::runtime::Spec =
        match std::fs::read(Path::new(&cfg.bundle).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(s) => s,
            None => {
                cleanup_mounts(&cfg);
                ready_line(
                    ready_fd,
                    json!({"ok": false, "error": "cannot read the bundle's config.json"}),
                );
                return 1;
            }
        };
    let (io, child_fds) = match make_io(&cfg) {
        Ok(x) => x,
        Err(e) => {
            cleanup_mounts(&cfg);
            ready_line(
                ready_fd,
                json!({"ok": false, "error": format!("setting up stdio: {e}")}),
            );
            return 1;
        }
    };
    let stdio = StdioFds {
        stdin: child_fds[0].as_raw_fd(),
        stdout: child_fds[1].as_raw_fd(),
        stderr: child_fds[2].as_raw_fd(),
    };
    // Block SIGCHLD before the child exists so no exit is missed.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    let sigfd = match SignalFd::new(&mask) {
        Ok(s) => s,
        Err(e) => {
            cleanup_mounts(&cfg);
            ready_line(
                ready_fd,
                json!({"ok": false, "error": format!("signalfd: {e}")}),
            );
            return 1;
        }
    };
    let pid = match runtime.create(&cfg.id, Path::new(&cfg.bundle), &spec, stdio) {
        Ok(p) => p,
        Err(e) => {
            cleanup_mounts(&cfg);
            let _ = runtime.delete(&cfg.id);
            ready_line(ready_fd, json!({"ok": false, "error": e.to_string()}));
            return 1;
        }
    };
    drop(child_fds);
    let _ = write_atomic(
        &dir.join("state.json"),
        json!({"monitor_pid": std::process::id(), "pid": pid, "started_at": now()})
            .to_string()
            .as_bytes(),
    );
    let sock_path = dir.join("monitor.sock");
    let _ = std::fs::remove_file(&sock_path);
    let listener = match UnixListener::bind(&sock_path) {
        Ok(l) => l,
        Err(e) => {
            // SAFETY: kill the init we created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = runtime.delete(&cfg.id);
            cleanup_mounts(&cfg);
            ready_line(
                ready_fd,
                json!({"ok": false, "error": format!("binding {}: {e}", sock_path.display())}),
            );
            return 1;
        }
    };
    let _ = listener.set_nonblocking(true);
    ready_line(
        ready_fd,
        json!({"ok": true, "pid": pid, "monitor_pid": std::process::id()}),
    );
    let mut m = Monitor {
        cfg,
        runtime,
        pid,
        io,
        clients: Vec::new(),
        log: JsonLog::open(None),
        exit: None,
        start_error: None,
    };
    m.log = JsonLog::open(m.cfg.log_path.as_deref());
    m.serve(&listener, &sigfd);
    let info = m.finish(dir);
    for c in m.clients.iter_mut() {
        if c.mode == Mode::Waiting {
            let _ = c.sock.write_all(
                format!("{}\n", serde_json::to_string(&info).unwrap_or_default()).as_bytes(),
            );
        }
        let _ = c.sock.shutdown(std::net::Shutdown::Both);
    }
    let _ = std::fs::remove_file(&sock_path);
    cleanup_mounts(&m.cfg);
    0
}

fn make_io(cfg: &MonitorConfig) -> std::io::Result<(Io, [OwnedFd; 3])> {
    if cfg.tty {
        let ws = cfg.console_size.map(|[h, w]| nix::pty::Winsize {
            ws_row: h,
            ws_col: w,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        let pty = nix::pty::openpty(ws.as_ref(), None).map_err(std::io::Error::from)?;
        let master = File::from(pty.master);
        let slave = pty.slave;
        let s1 = slave.try_clone()?;
        let s2 = slave.try_clone()?;
        let out = master.try_clone()?;
        let stdin = if cfg.open_stdin {
            Some(master.try_clone()?)
        } else {
            None
        };
        return Ok((
            Io {
                master: Some(master),
                outs: vec![(out, 1)],
                stdin,
            },
            [slave, s1, s2],
        ));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_child, stdin) = if cfg.open_stdin {
        let (r, w) = pipe()?;
        (OwnedFd::from(r), Some(w))
    } else {
        (OwnedFd::from(File::open("/dev/null")?), None)
    };
    Ok((
        Io {
            master: None,
            outs: vec![(out_r, 1), (err_r, 2)],
            stdin,
        },
        [stdin_child, OwnedFd::from(out_w), OwnedFd::from(err_w)],
    ))
}

struct Monitor {
    cfg: MonitorConfig,
    runtime: Box<dyn Runtime>,
    pid: i32,
    io: Io,
    clients: Vec<Client>,
    log: JsonLog,
    exit: Option<i32>,
    start_error: Option<String>,
}

impl Monitor {
    fn serve(&mut self, listener: &UnixListener, sigfd: &SignalFd) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if self.exit.is_some() {
                self.drain(&mut buf);
                return;
            }
            let mut fds: Vec<PollFd> = Vec::new();
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
            for (f, _) in &self.io.outs {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
            let polled: Vec<usize> = (0..self.clients.len())
                .filter(|i| !self.clients[*i].eof)
                .collect();
            for i in &polled {
                fds.push(PollFd::new(
                    self.clients[*i].sock.as_fd(),
                    PollFlags::POLLIN,
                ));
            }
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            let revents: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            let n_outs = self.io.outs.len();
            if revents[1].intersects(PollFlags::POLLIN) {
                let _ = sigfd.read_signal();
                self.reap();
            }
            if revents[0].intersects(PollFlags::POLLIN) {
                while let Ok((s, _)) = listener.accept() {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_write_timeout(Some(std::time::Duration::from_secs(10)));
                    self.clients.push(Client {
                        sock: s,
                        buf: Vec::new(),
                        mode: Mode::Command,
                        eof: false,
                    });
                }
            }
            let mut closed_outs = Vec::new();
            for i in 0..n_outs {
                if revents[2 + i]
                    .intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                {
                    let stream = self.io.outs[i].1;
                    match self.io.outs[i].0.read(&mut buf) {
                        Ok(0) | Err(_) => closed_outs.push(i),
                        Ok(n) => {
                            let data = buf[..n].to_vec();
                            self.output(stream, &data);
                        }
                    }
                }
            }
            for i in closed_outs.into_iter().rev() {
                self.io.outs.remove(i);
            }
            let mut drop_clients = Vec::new();
            for (k, &i) in polled.iter().enumerate() {
                let r = revents
                    .get(2 + n_outs + k)
                    .copied()
                    .unwrap_or(PollFlags::empty());
                if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                    && !self.client_input(i, &mut buf)
                {
                    drop_clients.push(i);
                }
            }
            for i in drop_clients.into_iter().rev() {
                self.clients.remove(i);
            }
        }
    }

    fn output(&mut self, stream: u8, data: &[u8]) {
        self.log.write(if stream == 2 { 1 } else { 0 }, data);
        let fr = frame(stream, data);
        self.clients.retain_mut(|c| match c.mode {
            Mode::Attached { stdout, stderr, .. }
                if (stream == 1 && stdout) || (stream == 2 && stderr) =>
            {
                c.sock.write_all(&fr).is_ok()
            }
            _ => true,
        });
    }

    /// Handles readable client `i`; false drops it.
    fn client_input(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let n = self.clients[i].sock.read(buf).unwrap_or_default();
        if let Mode::Attached { stdin, .. } = self.clients[i].mode {
            if n == 0 {
                if stdin && self.cfg.stdin_once && self.io.master.is_none() {
                    self.io.stdin = None;
                }
                // Half-closed: keep sending output until the container exits.
                self.clients[i].eof = true;
                return true;
            }
            if stdin {
                if let Some(s) = self.io.stdin.as_mut() {
                    let _ = s.write_all(&buf[..n]);
                }
            }
            return true;
        }
        if n == 0 {
            return false;
        }
        self.clients[i].buf.extend_from_slice(&buf[..n]);
        let Some(pos) = self.clients[i].buf.iter().position(|b| *b == b'\n') else {
            return true;
        };
        let line: Vec<u8> = self.clients[i].buf.drain(..=pos).collect();
        let rest = std::mem::take(&mut self.clients[i].buf);
        let cmd: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
        let reply = self.command(i, &cmd);
        if let Some(r) = reply {
            if self.clients[i]
                .sock
                .write_all(format!("{r}\n").as_bytes())
                .is_err()
            {
                return false;
            }
        }
        if !rest.is_empty() {
            if let (Mode::Attached { stdin: true, .. }, Some(s)) =
                (&self.clients[i].mode, self.io.stdin.as_mut())
            {
                let _ = s.write_all(&rest);
            }
        }
        true
    }

    fn command(&mut self, i: usize, cmd: &Value) -> Option<Value> {
        let ok = json!({"ok": true});
        let err = |e: String| json!({"ok": false, "error": e});
        match cmd["cmd"].as_str().unwrap_or("") {
            "start" => Some(match self.runtime.start(&self.cfg.id) {
                Ok(()) => ok,
                Err(e) => {
                    let msg = e.to_string();
                    let (code, text) = msg
                        .split_once(':')
                        .filter(|(c, _)| c.parse::<i32>().is_ok())
                        .map(|(c, t)| (c.parse().unwrap_or(127), t.to_string()))
                        .unwrap_or((127, msg.clone()));
                    self.start_error = Some(text.clone());
                    json!({"ok": false, "error": text, "exit_code": code})
                }
            }),
            "attach" => {
                self.clients[i].mode = Mode::Attached {
                    stdin: cmd["stdin"].as_bool().unwrap_or(false),
                    stdout: cmd["stdout"].as_bool().unwrap_or(true),
                    stderr: cmd["stderr"].as_bool().unwrap_or(true),
                };
                Some(ok)
            }
            "resize" => {
                if let Some(m) = &self.io.master {
                    let ws = libc::winsize {
                        ws_row: cmd["h"].as_u64().unwrap_or(24) as u16,
                        ws_col: cmd["w"].as_u64().unwrap_or(80) as u16,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ on our pty master with a valid winsize.
                    unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                }
                Some(ok)
            }
            "kill" => {
                let sig = cmd["signal"].as_i64().unwrap_or(15) as i32;
                Some(
                    match self.runtime.kill(
                        &self.cfg.id,
                        sig,
                        cmd["all"].as_bool().unwrap_or(false),
                    ) {
                        Ok(()) => ok,
                        Err(e) => err(e.to_string()),
                    },
                )
            }
            "pause" => Some(
                self.runtime
                    .pause(&self.cfg.id)
                    .map(|_| ok.clone())
                    .unwrap_or_else(|e| err(e.to_string())),
            ),
            "resume" => Some(
                self.runtime
                    .resume(&self.cfg.id)
                    .map(|_| ok.clone())
                    .unwrap_or_else(|e| err(e.to_string())),
            ),
            "state" => Some(json!({"ok": true, "pid": self.pid, "status": "running"})),
            "wait" => {
                self.clients[i].mode = Mode::Waiting;
                None
            }
            other => Some(err(format!("unknown command {other:?}"))),
        }
    }

    fn reap(&mut self) {
        loop {
            match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::Exited(p, c)) => {
                    if p.as_raw() == self.pid {
                        self.exit = Some(c);
                    }
                }
                Ok(nix::sys::wait::WaitStatus::Signaled(p, s, _)) => {
                    if p.as_raw() == self.pid {
                        self.exit = Some(128 + s as i32);
                    }
                }
                Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Reads what is left of the output (bounded in time).
    fn drain(&mut self, buf: &mut [u8]) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        while !self.io.outs.is_empty() && std::time::Instant::now() < deadline {
            let mut fds: Vec<PollFd> = self
                .io
                .outs
                .iter()
                .map(|(f, _)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            if poll(&mut fds, PollTimeout::from(50u16)).unwrap_or(0) == 0 {
                break;
            }
            let rev: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            let mut closed = Vec::new();
            for (i, r) in rev.iter().enumerate() {
                if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    let stream = self.io.outs[i].1;
                    match self.io.outs[i].0.read(buf) {
                        Ok(0) | Err(_) => closed.push(i),
                        Ok(n) => {
                            let d = buf[..n].to_vec();
                            self.output(stream, &d);
                        }
                    }
                }
            }
            for i in closed.into_iter().rev() {
                self.io.outs.remove(i);
            }
        }
    }

    fn finish(&mut self, dir: &Path) -> ExitInfo {
        self.log.flush();
        let oom = match &self.cfg.runtime {
            RuntimeSel::Native => std::fs::read_to_string(format!(
                "/sys/fs/cgroup/memory/berth/{}/memory.oom_control",
                self.cfg.id
            ))
            .or_else(|_| {
                std::fs::read_to_string(format!(
                    "/sys/fs/cgroup/berth/{}/memory.events",
                    self.cfg.id
                ))
            })
            .map(|s| {
                s.lines()
                    .any(|l| l.strip_prefix("oom_kill ").is_some_and(|v| v.trim() != "0"))
            })
            .unwrap_or(false),
            RuntimeSel::Oci { .. } => false,
        };
        let info = ExitInfo {
            exit_code: self.exit.unwrap_or(-1),
            oom_killed: oom,
            finished_at: now(),
            error: self.start_error.clone().unwrap_or_default(),
        };
        let _ = self.runtime.delete(&self.cfg.id);
        let _ = write_atomic(
            &dir.join("exit.json"),
            serde_json::to_string(&info).unwrap_or_default().as_bytes(),
        );
        info
    }
}
