//! The container's terminal, made like runc makes it: init opens `/dev/ptmx` of the
//! container's own devpts instance, takes the slave as its stdio and controlling terminal,
//! binds it on `/dev/console`, and passes the master to the runtime over a unix socket
//! (SCM_RIGHTS). So `tty` in the container says `/dev/pts/0`, as with Docker.

use nix::mount::{mount, MsFlags};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// In init, after `pivot_root`: creates the pty, makes the slave fds 0-2 and the controlling
/// terminal, binds `/dev/console`, sends the master on `sock`.
pub fn setup_in_container(sock: RawFd) -> Result<(), String> {
    let path = c"/dev/ptmx";
    // SAFETY: open with a valid NUL-terminated path.
    let master = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if master < 0 {
        return Err(format!(
            "opening /dev/ptmx: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `master` was just opened and is owned here.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let unlock: libc::c_int = 0;
    let mut n: libc::c_uint = 0;
    // SAFETY: ioctls on our pty master with pointers to locals of the right types.
    let slave = unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0
            || libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) != 0
        {
            return Err(format!(
                "unlocking the pty: {}",
                std::io::Error::last_os_error()
            ));
        }
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    };
    if slave < 0 {
        return Err(format!(
            "opening the pty slave: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: dup2 onto the standard descriptors, then TIOCSCTTY on stdin; we are the
    // session leader without a terminal (setsid ran first).
    unsafe {
        for fd in 0..3 {
            libc::dup2(slave, fd);
        }
        if slave > 2 {
            libc::close(slave);
        }
        libc::ioctl(0, libc::TIOCSCTTY, 0);
    }
    let pts = format!("/dev/pts/{n}");
    let _ = std::fs::File::create("/dev/console");
    mount(
        Some(pts.as_str()),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("binding {pts} on /dev/console: {e}"))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock,
        &[IoSlice::new(b"c")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("sending the pty master: {e}"))?;
    Ok(())
}

/// In the runtime: receives the master sent by [`setup_in_container`] (None if init failed
/// before sending it).
pub fn receive(sock: RawFd) -> Option<OwnedFd> {
    let mut buf = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).ok()?;
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the fd was just received with SCM_RIGHTS and is ours.
                return Some(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    None
}
