//! berthd's lifeline: a pidfd of the process that spawned the monitor (berthd), opened before
//! the monitor leaves it (PROTOCOL.md "Lifetime").
//!
//! A monitor only outlives berthd once its container was started (live restore). Until then —
//! a spare monitor waiting for its state folder, or a container only prepared — berthd's end
//! is the monitor's end: the pidfd becomes readable when berthd exits, however it exits
//! (SIGTERM, `kill -9`, a crash), and whatever has happened to its data root. The cost is two
//! system calls before the detach and one descriptor in the poll set until `start`.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};

/// The spawning process was already gone when the monitor looked for it.
#[derive(Debug)]
pub struct Gone;

/// A pidfd of our parent, to be called before the monitor detaches from it. `Ok(None)` when
/// the kernel has no pidfds (before 5.3): the monitor then keeps today's behaviour and berthd's
/// start-up takes leftovers down. `Err(Gone)` when the parent has already exited.
pub fn open() -> Result<Option<OwnedFd>, Gone> {
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    if ppid <= 1 {
        return Err(Gone);
    }
    // SAFETY: pidfd_open with a PID and no flags; the result is a new descriptor (O_CLOEXEC)
    // or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, ppid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Err(Gone),
            _ => Ok(None),
        };
    }
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Still our parent after the open: the pidfd names berthd, not a process that reused its
    // PID after it died (we would have been re-parented by then).
    // SAFETY: as above.
    if unsafe { libc::getppid() } != ppid {
        return Err(Gone);
    }
    Ok(Some(fd))
}

/// For a spare monitor: waits until berthd writes to our stdin (true) or ends (false: its
/// pidfd is readable, or stdin is at end of file, which the caller's read then sees).
pub fn job_or_end(pidfd: Option<&OwnedFd>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let stdin = std::io::stdin();
    let mut fds = vec![PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    if let Some(p) = pidfd {
        fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
    }
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
    let ended = fds
        .get(1)
        .and_then(|f| f.revents())
        .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
    !ended
}
