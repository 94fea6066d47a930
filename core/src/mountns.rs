//! Mount namespaces whose copy stays small as containers start: a *template* namespace
//! without any container's rootfs, and moving one mount into another namespace.
//!
//! `clone(CLONE_NEWNS)` copies every mount of the caller's namespace, and berthd's namespace
//! holds the rootfs of every running container, so a start there costs more with every
//! running container. A monitor instead clones berthd's mount of its container's rootfs
//! ([`clone_tree`]) and, on the thread that creates the container, enters the template
//! ([`enter`]), takes a copy of it ([`unshare`]) and attaches the clone there ([`attach`]):
//! the container's namespace is then a copy of a few mounts, however many containers run.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// `open_tree`'s flag: a detached copy of the mount (`<linux/mount.h>`).
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `move_mount`'s flag: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// `p` as a C string (a NUL byte in it is an invalid input).
pub(crate) fn cstr(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// A detached copy of the mount at `path` (and of the mounts under it), which a process in
/// another mount namespace can [`attach`]. The mount must be in the caller's namespace.
pub fn clone_tree(path: &Path) -> io::Result<OwnedFd> {
    open_tree(
        libc::AT_FDCWD,
        &cstr(path)?,
        libc::AT_RECURSIVE as libc::c_uint,
    )
}

/// A detached copy of the one mount at `path` (not of the mounts under it).
pub fn clone_one(path: &Path) -> io::Result<OwnedFd> {
    open_tree(libc::AT_FDCWD, &cstr(path)?, 0)
}

/// A detached copy of the one mount `mount` (from [`clone_one`], once attached) names.
pub fn clone_again(mount: &OwnedFd) -> io::Result<OwnedFd> {
    open_tree(mount.as_raw_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint)
}

/// `open_tree(dirfd, path, OPEN_TREE_CLONE | O_CLOEXEC | extra)`.
fn open_tree(dirfd: i32, path: &std::ffi::CStr, extra: libc::c_uint) -> io::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | extra;
    // SAFETY: open_tree with a valid NUL-terminated path; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Mounts the detached tree `tree` (from [`clone_tree`]) on `target` in the caller's
/// mount namespace.
pub fn attach(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    let empty = c"";
    // SAFETY: move_mount from an open descriptor (empty path) to a valid NUL-terminated path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's mount namespace, opened.
pub fn current() -> io::Result<File> {
    File::open("/proc/thread-self/ns/mnt")
}

/// Moves the calling thread into the mount namespace `ns`. Its filesystem information must be
/// its own (a single-threaded process, or a thread after `unshare(CLONE_FS)`); its root and
/// working folder become the namespace's root.
pub fn enter(ns: &File) -> io::Result<()> {
    // SAFETY: setns on an open namespace descriptor; it changes only the calling thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the calling thread a mount namespace of its own, a copy of the one it is in.
pub fn unshare() -> io::Result<()> {
    // SAFETY: unshare with a namespace flag; it changes only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes a template namespace: a copy of the caller's without the mounts `detach` (the
/// running containers' rootfs, after a restart; each detached on its own, so their parent, a
/// mount that does not propagate, keeps the detach from reaching the caller's namespace).
/// Nothing mounted later reaches it from where the rootfs are mounted, provided the mount
/// holding them does not propagate (see the daemon's `containers::mount_template`). The
/// namespace lives as long as the returned file.
///
/// `then` runs in the template once they are detached, to mount what only the template (and
/// the namespaces copied from it) should hold, and may change its root (`crate::stage::make`).
pub fn template(detach: &[PathBuf], then: impl FnOnce() + Send) -> io::Result<File> {
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: unshare of a new mount namespace (with CLONE_FS implied) for this thread,
            // which ends right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
                return Err(io::Error::last_os_error());
            }
            for p in detach.iter().rev() {
                let _ = crate::mount::unmount(p);
            }
            // Opened first: `then` may leave this thread without `/proc` in view (a stage).
            let ns = current()?;
            then();
            Ok(ns)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("mount namespace worker panicked")))
    })
}
