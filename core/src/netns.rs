//! Running code inside another network namespace: a short-lived thread `setns`es into it,
//! so the daemon's own threads never change namespace.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Runs `f` on a thread that has joined the network namespace `ns` (an open
/// `/proc/PID/ns/net` or bind-mounted namespace file).
pub fn run_in<T: Send>(ns: &File, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: ns is an open namespace file descriptor; setns only affects this thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netns worker panicked")))
    })
}
