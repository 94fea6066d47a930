//! The monitor's serving loop: the socket commands, attach streams, the json-file log, reaping
//! the init process and the clean-up after its exit.

use crate::config::{now, write_atomic, MonitorConfig};
use crate::log::JsonLog;
use crate::startup::Rt;
use berth_monitor_proto::{
    Command, ExitRecord, Failure, ProtoError, Reply, Request, RunStatus, MAX_LINE,
};
use berth_runtime::cgroups::{Cgroup, Hierarchy};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

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

/// The monitor's ends of the container's stdio.
#[derive(Default)]
pub struct Io {
    /// pty master, or None.
    pub master: Option<File>,
    /// Container stdout/stderr read ends (pipes), or the master for a tty.
    pub outs: Vec<(File, u8)>,
    /// Where client stdin goes.
    pub stdin: Option<File>,
}

impl Io {
    /// The ends for a terminal whose master is `master`.
    pub fn from_master(master: File, open_stdin: bool) -> std::io::Result<Io> {
        let out = master.try_clone()?;
        let stdin = if open_stdin {
            Some(master.try_clone()?)
        } else {
            None
        };
        Ok(Io {
            master: Some(master),
            outs: vec![(out, 1)],
            stdin,
        })
    }
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&[stream, 0, 0, 0]);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// One supervised container.
pub struct Monitor {
    cfg: MonitorConfig,
    rt: Rt,
    pid: i32,
    io: Io,
    clients: Vec<Client>,
    log: JsonLog,
    exit: Option<i32>,
    /// Why the init never ran its command (`start`'s failure, or its set-up's).
    start_error: Option<Failure>,
    paused: bool,
    /// `start` was asked for.
    started: bool,
    /// berthd's pidfd, watched until `start`: should berthd end before, the container is
    /// taken down (PROTOCOL.md "Lifetime").
    daemon: Option<OwnedFd>,
    /// berthd ended before `start`: the container was killed and the monitor ends.
    orphaned: bool,
    /// Until `start`: when the container is taken down anyway, should no `start` have come by
    /// then ([`UNSTARTED_LIMIT`]).
    unstarted_until: Option<std::time::Instant>,
    /// The container's cgroup (found at start-up: the exit path reads its OOM count).
    cgroup: Cgroup,
    /// Pages are mapped that an idle monitor does not need (start-up's, or those of a command
    /// or of output since): dropped once the loop has been idle this many ms.
    settle: Option<u16>,
}

/// How long the loop must be idle after `start` before the start-up pages are dropped: a
/// short-lived container (`run --rm ... true`) exits before and never pays for it.
const SETTLE_MS: u16 = 100;
/// How long the loop must be idle after a later command or output before the pages they
/// touched are dropped again (a container that writes now and then pays at most once a second).
const RESETTLE_MS: u16 = 1000;
/// How long a created container waits for its `start` before its monitor takes it down by
/// itself: three times berthd's own expiry of a preparation (`prestart::EXPIRY`), so this only
/// acts when berthd has lost track of the monitor (its socket or state folder deleted).
const UNSTARTED_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Monitor {
    /// Supervises init `pid` created through `rt`.
    pub fn new(
        cfg: MonitorConfig,
        rt: Rt,
        pid: i32,
        io: Io,
        cgroup_path: String,
        daemon: Option<OwnedFd>,
    ) -> Monitor {
        let log = JsonLog::open(
            cfg.log_path.as_deref(),
            cfg.log_max_size,
            cfg.log_max_file.unwrap_or(1),
        )
        .with_format(cfg.log_format);
        Monitor {
            cfg,
            rt,
            pid,
            io,
            clients: Vec::new(),
            log,
            exit: None,
            start_error: None,
            paused: false,
            started: false,
            daemon,
            orphaned: false,
            unstarted_until: Some(std::time::Instant::now() + UNSTARTED_LIMIT),
            cgroup: Cgroup::new(Hierarchy::detect(), &cgroup_path),
            settle: None,
        }
    }

    /// The poll loop, until the init process has exited and its output is drained.
    pub fn serve(&mut self, listener: &UnixListener, sigfd: &SignalFd) {
        // 16 KiB per read: a full pipe (64 KiB) takes four reads, and an idle monitor keeps
        // no more than this of buffer resident.
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if self.exit.is_some() {
                if !self.started {
                    self.start_error = self.rt.set_up_error(&self.cfg.id);
                }
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
            // Last, so the indices above stay as they are.
            if let Some(d) = &self.daemon {
                fds.push(PollFd::new(d.as_fd(), PollFlags::POLLIN));
            }
            let backstop = self.unstarted_left();
            let timeout = match (self.settle, backstop) {
                (Some(a), Some(b)) => PollTimeout::from(a.min(b)),
                (Some(a), None) | (None, Some(a)) => PollTimeout::from(a),
                (None, None) => PollTimeout::NONE,
            };
            let mut polled_n = poll(&mut fds, timeout);
            if self.settle.is_some()
                && matches!(polled_n, Ok(0))
                && self.unstarted_left() != Some(0)
            {
                // The container runs for as long as it likes: drop the pages used so far, then
                // wait on the same poll set, so that as little code as possible runs (and is
                // faulted back in) between the drop and the next event.
                berth_runtime::memory::release_startup_pages();
                self.settle = None;
                polled_n = poll(
                    &mut fds,
                    self.unstarted_left()
                        .map_or(PollTimeout::NONE, PollTimeout::from),
                );
            }
            if polled_n.is_err() {
                continue;
            }
            let revents: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            if self.unstarted_left() == Some(0) {
                self.take_down();
            }
            let n_outs = self.io.outs.len();
            if self.daemon.is_some()
                && revents
                    .get(2 + n_outs + polled.len())
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
            {
                self.take_down();
            }
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
        self.settle.get_or_insert(RESETTLE_MS);
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
                // As dockerd's: the end of an attach's stdin closes the container's with
                // `stdin_once` and no tty, and the attach keeps the output until the exit;
                // any other end of an attached stdin ends the attach, the container's stdin
                // staying open for the next one. An attach without stdin is unaffected.
                if !stdin || (self.cfg.stdin_once && self.io.master.is_none()) {
                    if stdin {
                        self.io.stdin = None;
                    }
                    self.clients[i].eof = true;
                    return true;
                }
                return false;
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
            // A request never longer than a line may be: one that is gets its error and
            // the connection ends (the monitor goes on serving the others).
            let len = self.clients[i].buf.len();
            if len > MAX_LINE {
                let r = Reply::Failure(ProtoError::TooLong { len }.into());
                self.reply(i, &r);
                return false;
            }
            return true;
        };
        let line: Vec<u8> = self.clients[i].buf.drain(..=pos).collect();
        let rest = std::mem::take(&mut self.clients[i].buf);
        // A request it cannot serve (malformed, unknown, a newer version) gets a typed error.
        let reply = match Request::decode(&line) {
            Ok(req) => self.command(i, req.command),
            Err(e) => Some(Reply::Failure(e.into())),
        };
        if let Some(r) = reply {
            if !self.reply(i, &r) {
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

    /// Writes reply `r` to client `i`; false when that failed.
    fn reply(&mut self, i: usize, r: &Reply) -> bool {
        berth_monitor_proto::encode(r)
            .is_ok_and(|line| self.clients[i].sock.write_all(&line).is_ok())
    }

    fn command(&mut self, i: usize, cmd: Command) -> Option<Reply> {
        let done = |r: berth_core::DriverResult<()>| match r {
            Ok(()) => Reply::Ok,
            Err(e) => Reply::Failure(Failure::from(&e)),
        };
        self.settle.get_or_insert(RESETTLE_MS);
        match cmd {
            Command::Start { wait } => {
                self.settle = Some(SETTLE_MS);
                self.started = true;
                // Started: the container now outlives berthd (live restore).
                self.daemon = None;
                self.unstarted_until = None;
                if wait {
                    // After the reply, this connection gets the exit line as a `wait` one.
                    self.clients[i].mode = Mode::Waiting;
                }
                Some(match self.rt.get().start(&self.cfg.id) {
                    Ok(()) => Reply::Ok,
                    Err(e) => {
                        // Typed from the init on: a command that cannot be executed keeps
                        // its exit code (126/127).
                        let f = Failure::from(&e);
                        self.start_error = Some(f.clone());
                        Reply::Failure(f)
                    }
                })
            }
            Command::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                self.clients[i].mode = Mode::Attached {
                    stdin,
                    stdout,
                    stderr,
                };
                Some(Reply::Ok)
            }
            Command::Resize { h, w } => {
                if let Some(m) = &self.io.master {
                    let ws = libc::winsize {
                        ws_row: h,
                        ws_col: w,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ on our pty master with a valid winsize.
                    unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                }
                Some(Reply::Ok)
            }
            Command::Kill { signal, all } => {
                let r = self.rt.get().kill(&self.cfg.id, signal, all);
                // Frozen tasks act on SIGKILL only once thawed (cgroup v1 freezer).
                if r.is_ok()
                    && signal == libc::SIGKILL
                    && self.paused
                    && self.rt.get().resume(&self.cfg.id).is_ok()
                {
                    self.paused = false;
                }
                Some(done(r))
            }
            Command::Pause => {
                let r = self.rt.get().pause(&self.cfg.id);
                if r.is_ok() {
                    self.paused = true;
                }
                Some(done(r))
            }
            Command::Resume => {
                let r = self.rt.get().resume(&self.cfg.id);
                if r.is_ok() {
                    self.paused = false;
                }
                Some(done(r))
            }
            Command::State => Some(Reply::State {
                pid: self.pid,
                status: if self.paused {
                    RunStatus::Paused
                } else {
                    RunStatus::Running
                },
            }),
            Command::Wait => {
                self.clients[i].mode = Mode::Waiting;
                None
            }
            Command::Reopen => Some(match self.log.reopen() {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::failure(format!("reopening the container log: {e}")),
            }),
        }
    }

    /// Milliseconds left before an unstarted container is taken down (None once started or
    /// taken down).
    fn unstarted_left(&self) -> Option<u16> {
        self.unstarted_until.map(|t| {
            let left = t.saturating_duration_since(std::time::Instant::now());
            // Rounded up, so that 0 means the limit has passed.
            u16::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u16::MAX)
        })
    }

    /// berthd ended (or lost track of us) before the container's start: kill the waiting init
    /// (and anything in its cgroup); the loop then reaps it and ends as for any exit.
    fn take_down(&mut self) {
        self.daemon = None;
        self.unstarted_until = None;
        if self.started {
            return;
        }
        self.orphaned = true;
        let _ = self.rt.get().kill(&self.cfg.id, libc::SIGKILL, true);
        if self.paused {
            let _ = self.rt.get().resume(&self.cfg.id);
        }
        // SAFETY: kill(2) of our own unreaped child (the init, or its OCI runtime's), so the
        // PID cannot have been reused.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }

    /// Whether berthd ended before `start` and the container was taken down for it.
    pub fn orphaned(&self) -> bool {
        self.orphaned
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

    /// After the exit: OOM flag, `exit.json`, socket removal, the `wait` replies, attach
    /// connections closed — then the clean-up nobody waits for: runtime delete (cgroup) and
    /// unmount. `wait` connections stay open until the monitor exits, so their end of file
    /// tells berthd that the clean-up is over too (PROTOCOL.md).
    pub fn finish(&mut self, dir: &Path, rootfs: &Path) {
        self.log.flush();
        let info = ExitRecord {
            exit_code: self.exit.unwrap_or(-1),
            oom_killed: self.cgroup.oom_kills() > 0,
            finished_at: now(),
            error: self.start_error.take().map(|f| f.error).unwrap_or_default(),
        };
        let line = berth_monitor_proto::encode(&info).unwrap_or_default();
        let _ = write_atomic(&dir.join("exit.json"), &line);
        let _ = std::fs::remove_file(dir.join("monitor.sock"));
        // Whether berthd heard of the exit, and so takes the memory cgroup folder over.
        let mut heard = false;
        for c in self.clients.iter_mut() {
            if c.mode == Mode::Waiting {
                heard |= c.sock.write_all(&line).is_ok();
                let _ = c.sock.shutdown(std::net::Shutdown::Read);
            } else {
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
            }
        }
        let _ = self.rt.get().delete(&self.cfg.id);
        if !(heard && self.started && info.error.is_empty()) {
            // Nobody will remove the memory folder the runtime may have left (berthd does
            // for a started container whose exit it heard of, not for a start that failed):
            // done here.
            let _ = self.cgroup.remove();
        }
        if !self.cfg.rootfs_mounts.is_empty() {
            let _ = berth_core::mount::unmount(rootfs);
        }
    }
}
