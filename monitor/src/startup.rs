//! The monitor's start-up (PROTOCOL.md "Start-up handshake"): detach from berthd, mount the
//! rootfs, set up a pty or pipes, create the container through the runtime, write
//! `state.json`, bind `monitor.sock`, report on the ready fd; then hand over to the serving loop
//! and clean up at the end.

use crate::config::{now, write_atomic, MonitorConfig};
use crate::lifeline;
use crate::server::{Io, Monitor};
use berth_core::runtime::StdioFds;
use berth_core::Runtime;
use berth_monitor_proto::{Failure, Ready, StateFile, PROTOCOL_VERSION};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The runtime a monitor drives: a runtime plugin opened by name (`crate::runtimes`).
pub struct Rt(Arc<dyn Runtime>);

impl Rt {
    /// Why an init that exited before `start` never got to exec (its set-up failure, as
    /// `start` would have reported it).
    pub fn set_up_error(&self, id: &str) -> Option<Failure> {
        // An init killed before start (no message) has no set-up error to tell.
        self.0.set_up_error(id).map(|e| Failure::from(&e))
    }

    /// As the `core::Runtime` trait.
    pub fn get(&self) -> &dyn Runtime {
        self.0.as_ref()
    }
}

fn ready_line(fd: RawFd, r: Ready) {
    if fd < 0 {
        return;
    }
    // SAFETY: the ready fd was handed to us by berthd and is used once, here.
    let mut f = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    let _ = f.write_all(&berth_monitor_proto::encode(&r).unwrap_or_default());
    if fd <= 2 {
        // berthd passes the pipe as stdout: put /dev/null back, so the standard descriptor
        // numbers are never reused by what the monitor opens later.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            // SAFETY: dup2 of a descriptor we own onto one of ours.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    } else {
        // SAFETY: closing the ready fd, not used again.
        unsafe { libc::close(fd) };
    }
}

fn pipe() -> std::io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    Ok((File::from(r), File::from(w)))
}

/// Leaves berthd: a new session, then one fork whose parent (berthd's child, reaped by it)
/// exits at once, so we are nobody's child but init's or a subreaper's; child subreaper; only
/// 0-2, the ready fd and berthd's pidfd (both close-on-exec) stay open. No second fork is
/// needed: we open no terminal, so we can never gain a controlling one. Returns berthd's
/// pidfd (see [`crate::lifeline`]), opened while berthd is still our parent.
fn detach(ready_fd: RawFd) -> Result<Option<OwnedFd>, lifeline::Gone> {
    berth_runtime::process::close_fds(&[ready_fd]);
    if ready_fd > 2 {
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(ready_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let daemon = lifeline::open()?;
    let _ = nix::unistd::setsid();
    // SAFETY: fork in a single-threaded process; the parent exits at once.
    match unsafe { nix::unistd::fork() } {
        // SAFETY: _exit in the intermediate process, which owns nothing worth flushing.
        Ok(nix::unistd::ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(nix::unistd::ForkResult::Child) => {}
        // SAFETY: as above.
        Err(_) => unsafe { libc::_exit(1) },
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    Ok(daemon)
}

fn set_winsize(fd: RawFd, size: Option<[u16; 2]>) {
    if let Some([h, w]) = size {
        let ws = libc::winsize {
            ws_row: h,
            ws_col: w,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on a pty master with a valid winsize.
        unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    }
}

/// The monitor's ends and the container's (stdin, stdout, stderr). With a terminal the
/// container gets /dev/null and the runtime hands over the pty master after create.
fn make_io(cfg: &MonitorConfig) -> std::io::Result<(Io, [OwnedFd; 3])> {
    let null = || -> std::io::Result<OwnedFd> {
        Ok(OwnedFd::from(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?,
        ))
    };
    if cfg.tty {
        return Ok((Io::default(), [null()?, null()?, null()?]));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_child, stdin) = if cfg.open_stdin {
        let (r, w) = pipe()?;
        (OwnedFd::from(r), Some(w))
    } else {
        (null()?, None)
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

/// The ready line of a start-up that failed for `e`.
fn failed(e: impl Into<String>) -> Ready {
    Ready::Failed(Failure::new(e))
}

/// The container's `monitor.json`; on failure the reason has gone to the ready fd.
fn read_config(dir: &Path, ready_fd: RawFd) -> Option<MonitorConfig> {
    let cfg = std::fs::read(dir.join("monitor.json"))
        .ok()
        .and_then(|b| berth_monitor_proto::decode(&b).ok());
    if cfg.is_none() {
        let e = format!("cannot read {}/monitor.json", dir.display());
        ready_line(ready_fd, failed(e));
    }
    cfg
}

/// Runs the monitor for the container whose state folder is `dir`. Returns the exit status.
pub fn run(dir: &Path, ready_fd: RawFd) -> i32 {
    let Some(cfg) = read_config(dir, ready_fd) else {
        return 1;
    };
    let Ok(daemon) = detach(ready_fd) else {
        let e = "berthd exited before its monitor started";
        ready_line(ready_fd, failed(e));
        return 1;
    };
    supervise(dir, cfg, ready_fd, daemon)
}

/// A monitor spawned ahead of need (PROTOCOL.md "Spawned ahead"): it detaches at once, then
/// waits for one line on stdin, the state folder of the container it is to supervise, and
/// carries on as [`run`]. End of file instead (berthd stopped, or no longer needs it), or the
/// end of berthd itself (its pidfd), ends it.
pub fn pooled(ready_fd: RawFd) -> i32 {
    let Ok(daemon) = detach(ready_fd) else {
        return 0;
    };
    if !lifeline::job_or_end(daemon.as_ref()) {
        return 0;
    }
    let mut line = String::new();
    if !matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0) {
        return 0;
    }
    if let Ok(null) = std::fs::File::open("/dev/null") {
        // SAFETY: dup2 of a descriptor we own onto our own stdin.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
    let dir = PathBuf::from(line.trim_end_matches('\n'));
    let Some(cfg) = read_config(&dir, ready_fd) else {
        return 1;
    };
    supervise(&dir, cfg, ready_fd, daemon)
}

/// Everything after the detach: create the container, serve, clean up. `daemon` is berthd's
/// pidfd: should berthd end before the container is started, the monitor takes the container
/// down and ends too.
fn supervise(dir: &Path, cfg: MonitorConfig, ready_fd: RawFd, daemon: Option<OwnedFd>) -> i32 {
    let rootfs = PathBuf::from(&cfg.bundle).join("rootfs");
    let _ = std::fs::create_dir_all(&rootfs);
    if let Err(e) = berth_core::mount::mount_all(&cfg.rootfs_mounts, &rootfs) {
        let e = format!("mounting the container's rootfs: {e}");
        ready_line(ready_fd, failed(e));
        return 1;
    }
    let unmount = |cfg: &MonitorConfig| {
        if !cfg.rootfs_mounts.is_empty() {
            let _ = berth_core::mount::unmount(&rootfs);
        }
    };
    let rt = match crate::runtimes::open(&cfg.runtime) {
        Ok(rt) => Rt(rt),
        Err(e) => {
            unmount(&cfg);
            ready_line(ready_fd, Ready::Failed(Failure::new(e.to_string())));
            return 1;
        }
    };
    let spec: Option<berth_core::runtime::Spec> =
        std::fs::read(Path::new(&cfg.bundle).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(spec) = spec else {
        unmount(&cfg);
        let e = "cannot read the bundle's config.json";
        ready_line(ready_fd, failed(e));
        return 1;
    };
    let cgroup_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| berth_runtime::cgroups::default_path(&cfg.id));
    // With a terminal the runtime makes the pty inside the container (as runc does).
    let (mut io, child_fds) = match make_io(&cfg) {
        Ok(x) => x,
        Err(e) => {
            unmount(&cfg);
            let e = format!("setting up stdio: {e}");
            ready_line(ready_fd, failed(e));
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
            unmount(&cfg);
            ready_line(ready_fd, failed(format!("signalfd: {e}")));
            return 1;
        }
    };
    let create = || {
        rt.get()
            .create(&cfg.id, Path::new(&cfg.bundle), &spec, stdio)
    };
    let staged = match cfg.mount_ns_staged {
        false => crate::mountns::Staged::No,
        true if crate::runtimes::switches_staged(&cfg.runtime) => crate::mountns::Staged::Switch,
        true => crate::mountns::Staged::Cover,
    };
    let made = cfg
        .mount_ns
        .as_deref()
        .and_then(|t| crate::mountns::create_in(t, staged, &rootfs, create));
    let pid = match made.unwrap_or_else(create) {
        Ok(p) => p,
        Err(e) => {
            let _ = rt.get().delete(&cfg.id);
            unmount(&cfg);
            // A command that cannot be executed (an OCI runtime checks at create) keeps its
            // exit code.
            ready_line(ready_fd, Ready::Failed(Failure::from(&e)));
            return 1;
        }
    };
    drop(child_fds);
    drop(spec);
    if cfg.tty {
        if let Some(master) = rt.get().take_console(&cfg.id) {
            set_winsize(master.as_raw_fd(), cfg.console_size);
            match Io::from_master(File::from(master), cfg.open_stdin) {
                Ok(x) => io = x,
                Err(e) => {
                    let _ = rt.get().delete(&cfg.id);
                    remove_cgroup(&cgroup_path);
                    unmount(&cfg);
                    ready_line(ready_fd, failed(e.to_string()));
                    return 1;
                }
            }
        }
    }
    if let Some(p) = cfg.pid_file.as_deref().filter(|p| !p.is_empty()) {
        let _ = write_atomic(Path::new(p), pid.to_string().as_bytes());
    }
    let state = StateFile {
        monitor_pid: std::process::id(),
        pid,
        started_at: now(),
        version: Some(PROTOCOL_VERSION),
    };
    let _ = write_atomic(
        &dir.join("state.json"),
        &berth_monitor_proto::encode(&state).unwrap_or_default(),
    );
    let sock_path = dir.join("monitor.sock");
    let _ = std::fs::remove_file(&sock_path);
    let listener = match UnixListener::bind(&sock_path) {
        Ok(l) => l,
        Err(e) => {
            let _ = rt.get().kill(&cfg.id, libc::SIGKILL, true);
            let _ = rt.get().delete(&cfg.id);
            remove_cgroup(&cgroup_path);
            unmount(&cfg);
            let e = format!("binding {}: {e}", sock_path.display());
            ready_line(ready_fd, failed(e));
            return 1;
        }
    };
    let _ = listener.set_nonblocking(true);
    ready_line(
        ready_fd,
        Ready::Ready {
            pid,
            monitor_pid: std::process::id(),
        },
    );
    // A reference to the container's mount namespace: when the init exits, the kernel then
    // does not take the namespace's mounts down before telling us (about a millisecond); that
    // happens when this is closed, after the exit has been reported.
    let mount_ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt")).ok();
    let mut m = Monitor::new(cfg, rt, pid, io, cgroup_path, daemon);
    m.serve(&listener, &sigfd);
    if m.orphaned() {
        // berthd mounted the rootfs and is gone: nobody else will take it down. Before the
        // socket goes, so that a berthd started meanwhile either finds the socket (and waits
        // for our end, as for any preparation it takes down) or finds the rootfs unmounted.
        let _ = berth_core::mount::unmount(&rootfs);
    }
    m.finish(dir, &rootfs);
    drop(mount_ns);
    let _ = std::fs::remove_file(&sock_path);
    0
}

/// Removes what the runtime's delete left of the container's cgroup: the memory folder it
/// leaves for berthd (`berth_runtime::cgroups::DEFER_MEMORY_ANNOTATION`), which berthd only
/// removes for a container whose exit it heard of.
pub fn remove_cgroup(path: &str) {
    let cg = berth_runtime::cgroups::Cgroup::new(berth_runtime::cgroups::Hierarchy::detect(), path);
    let _ = cg.remove();
}
