//! berthd's handle on a pod's init, the PID 1 of a pod's own PID namespace
//! (`berth-monitor pod-init`, see `monitor/src/pod_init.rs`): spawned from the sealed monitor
//! binary at RunPodSandbox, it is nobody's child of berthd's once it runs, so it outlives a
//! berthd restart. Its PID namespace is pinned like the pod's other namespaces
//! (`<exec-root>/cri/pods/<id>/pid`, a bind mount of `/proc/<init>/ns/pid`): containers join
//! the pinned file, which names that namespace and no other for as long as it exists, and the
//! init is recognised again after a restart by its PID *and* that namespace, so a reused PID is
//! never taken for it. StopPodSandbox ends it with SIGTERM (SIGKILL after a grace period),
//! through a pidfd opened once the identity held.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// The kind name of the pinned PID namespace in the pod's run-time folder.
pub const KIND: &str = "pid";

/// The longest answer the spawned intermediate may give (a PID, or a short error).
const MAX_READY: u64 = 4096;

/// How long the init has to exit after SIGTERM, then after SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Spawns a pod init and pins its PID namespace at `<dir>/pid`; its PID as the host sees it.
/// Its command line (`berth-monitor pod-init … --pod <id>`) tells `ps` whose init it is.
/// Blocking.
pub fn spawn(dir: &Path, id: &str) -> io::Result<i32> {
    let mut cmd = crate::containers::monitor_exe::command();
    // The pod's processes read its command line (`ps`): no host path in it.
    std::os::unix::process::CommandExt::arg0(&mut cmd, "berth-monitor");
    let mut child = cmd
        .args(&argv(id)[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        out.take(MAX_READY).read_to_string(&mut line)?;
    }
    // The intermediate, which exits once it has written the line.
    let _ = child.wait();
    let line = line.trim();
    let pid: i32 = match line.parse() {
        Ok(p) if p > 1 => p,
        _ => {
            return Err(io::Error::other(format!(
                "starting the pod init: {}",
                line.strip_prefix("error: ").unwrap_or(line)
            )))
        }
    };
    if let Err(e) = pin(dir, pid) {
        signal_pid(pid, libc::SIGKILL);
        return Err(e);
    }
    Ok(pid)
}

/// The command line of pod `id`'s init, `argv[0]` included.
pub fn argv(id: &str) -> [&str; 6] {
    ["berth-monitor", "pod-init", "--ready-fd", "1", "--pod", id]
}

/// Binds `/proc/<pid>/ns/pid` onto `<dir>/pid`.
fn pin(dir: &Path, pid: i32) -> io::Result<()> {
    let target = dir.join(KIND);
    std::fs::File::create(&target)?;
    nix::mount::mount(
        Some(Path::new(&format!("/proc/{pid}/ns/pid"))),
        &target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// The (device, inode) of a namespace file.
fn ns_id(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `pid` is still the init whose PID namespace is pinned in `dir`.
pub fn alive(dir: &Path, pid: i32) -> bool {
    if pid <= 1 || !super::pod_ns::pinned(dir, KIND) {
        return false;
    }
    let own = ns_id(&dir.join(KIND));
    own.is_some() && own == ns_id(Path::new(&format!("/proc/{pid}/ns/pid")))
}

/// A pidfd of `pid` (None: no such process, or a kernel without pidfds).
fn pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open with a PID and no flags; the result is a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn signal_pid(pid: i32, sig: i32) {
    // SAFETY: kill(2) with integer arguments.
    unsafe { libc::kill(pid, sig) };
}

fn signal_fd(fd: &OwnedFd, sig: i32) {
    // SAFETY: pidfd_send_signal on our own pidfd, no siginfo, no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// Waits up to `patience` for the process behind `fd` to exit; whether it did.
fn exited(fd: &OwnedFd, patience: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = u16::try_from(patience.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Ends the pod init `pid` of the pod whose folder is `dir` (SIGTERM, SIGKILL after
/// [`GRACE`]), and with it whatever still runs in its PID namespace. Nothing when it is not
/// (or no longer) that init. Blocking.
pub fn end(dir: &Path, pid: i32) {
    end_if(pid, || alive(dir, pid));
}

/// Ends process `pid` as [`end`] does, if `is_it` holds once a pidfd of it is open: checked
/// then, the identity cannot move to another process that reuses the PID.
pub fn end_if(pid: i32, is_it: impl FnOnce() -> bool) {
    let Some(fd) = pidfd(pid) else {
        return;
    };
    // The pidfd was opened while `pid` was still that init: it names that process only.
    if !is_it() {
        return;
    }
    signal_fd(&fd, libc::SIGTERM);
    if !exited(&fd, GRACE) {
        signal_fd(&fd, libc::SIGKILL);
        let _ = exited(&fd, GRACE);
    }
}
