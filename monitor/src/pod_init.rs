//! `berth-monitor pod-init --ready-fd N [--pod ID]`: the init of a CRI pod's PID namespace, the one
//! process berth keeps per pod (no pause image). It leaves berthd the way a monitor does (a
//! new session, an intermediate parent that exits at once, so it is nobody's child but init's
//! or a subreaper's and outlives a berthd restart), unshares a PID namespace and forks into it:
//! PID 1 there. The pod's containers that share the pod's PID namespace are started in it, see
//! it as PID 1 and leave their orphans to it; it reaps them. SIGTERM or SIGINT ends it and
//! with it the namespace (the kernel kills whatever is left in it); every other signal it can
//! catch is ignored. It keeps no privilege (no capabilities, non-dumpable), since the pod's
//! processes see it. Before it exits, the intermediate writes the init's PID (as the host
//! sees it) and a newline on the ready fd, or `error: <why>`. `--pod` (the pod's ID) is not
//! read: it only tells `ps` whose init this is.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};

/// The signals the init waits for (all blocked, so none is lost between two waits).
const WAITED: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGPIPE,
];

/// Runs the pod-init mode; the exit code of the process that berthd spawned.
pub fn run(ready_fd: RawFd) -> i32 {
    if ready_fd < 0 {
        eprintln!("berth-monitor pod-init: --ready-fd is required");
        return 2;
    }
    berth_runtime::process::close_fds(&[ready_fd]);
    // SAFETY: the descriptor berthd passed us for this one line; owned by nobody else here.
    let mut ready = unsafe { std::fs::File::from_raw_fd(ready_fd) };
    let _ = nix::unistd::setsid();
    let mut mask = SigSet::empty();
    for s in WAITED {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        let _ = writeln!(ready, "error: blocking signals: {e}");
        return 1;
    }
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID) {
        let _ = writeln!(ready, "error: unsharing the PID namespace: {e}");
        return 1;
    }
    // SAFETY: fork in this single-threaded process; the parent only writes one line and exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let _ = writeln!(ready, "{child}");
            // SAFETY: _exit in the intermediate process, which owns nothing worth flushing.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            let _ = writeln!(ready, "error: forking the pod init: {e}");
            return 1;
        }
    }
    drop(ready);
    be_init(&mask)
}

/// PID 1 of the pod: quiet, in `/`, reaping until told to end.
fn be_init(mask: &SigSet) -> i32 {
    // SAFETY: prctl with a NUL-terminated name that outlives the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-pod-init".as_ptr(), 0, 0, 0) };
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 of our own /dev/null descriptor onto the standard ones.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let _ = nix::unistd::chdir("/");
    // It lives in the host's mount namespace: no process of the pod may reach its `/proc/1/root`,
    // `cwd` or descriptors (non-dumpable, no capabilities: a process needs CAP_SYS_PTRACE for
    // them), and it needs no privilege to reap and to take signals.
    berth_runtime::process::non_dumpable();
    let _ = berth_runtime::caps::limit_bounding(&[]);
    let _ = berth_runtime::caps::apply(&berth_runtime::caps::CapSets::default());
    // Nothing of the monitor's start-up is needed again: give its pages back.
    berth_runtime::memory::release_startup_pages();
    loop {
        match mask.wait() {
            Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                reap();
                return 0;
            }
            Ok(Signal::SIGCHLD) => reap(),
            _ => {}
        }
    }
}

/// Reaps every child that has exited.
fn reap() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
