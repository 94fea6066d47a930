//! A *staged* template mount namespace: one whose root is an empty read-only tmpfs (the
//! stage), with the host's tree under its `host` folder, so that a container's init can make
//! its rootfs the namespace's `/` by moving mounts instead of `pivot_root`.
//!
//! `pivot_root` visits every thread on the host (`chroot_fs_refs`, under the task-list lock)
//! to move the roots of those that stood in the old one: ~1 ms of each container's start with
//! 1,000 containers running (two tasks each, container and monitor), none with a few. A move
//! and a `chroot` cost the same whatever runs. What `pivot_root` also guarantees is kept: a
//! process that tries the classic `chroot` escape (it keeps `CAP_SYS_CHROOT`, as Docker's
//! default set does) ends in the container's own `/` — `..` at the root of the container's
//! mount steps to its mount point, the stage's root, and follows the mount on it back down, as
//! with `pivot_root`, where that mount point is the kernel's initial rootfs. Beneath the
//! container's mount is only the stage, two empty folders, read-only (what a privileged
//! container finds if it unmounts its `/`). The host's tree is detached before the container's
//! process runs, as the old root is after `pivot_root`.
//!
//! The steps: berthd's template thread calls [`make`] once (after which its root is the
//! stage); the thread that creates a container enters a copy of the template and calls
//! [`enter`], which `chroot`s into `host`, so every path it and the container's init use before
//! the switch is the host's as before; the init (a copy of that thread, [`current`] tells it)
//! calls [`switch`] where it would call `pivot_root`, which finds the stage again as its mount
//! namespace's root.

use crate::mountns::{self, cstr};
use std::cell::Cell;
use std::ffi::CString;
use std::io;
use std::path::Path;

/// The stage's folder that holds the host's tree until [`switch`] detaches it.
pub const HOST: &str = "host";
/// The stage's folder where the rootfs waits while the host's tree is detached.
pub const ROOT: &str = "root";

thread_local! {
    /// This thread [`enter`]ed a stage.
    static STAGED: Cell<bool> = const { Cell::new(false) };
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mount(2)` with optional source, type and data.
fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = src.map(cstr).transpose()?;
    let target = cstr(target)?;
    let fstype = fstype
        .map(|t| CString::new(t).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput)))
        .transpose()?;
    let data = data
        .map(|d| CString::new(d).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput)))
        .transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is a NUL-terminated string that outlives the call, or null.
    check(unsafe {
        libc::mount(
            ptr(&src),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    })
}

fn chroot(p: &Path) -> io::Result<()> {
    let c = cstr(p)?;
    // SAFETY: chroot with a NUL-terminated path; it changes this thread's (fs-private) root.
    check(unsafe { libc::chroot(c.as_ptr()) })
}

/// Makes the calling thread's mount namespace — a template it just made, of its own (after
/// `unshare(CLONE_NEWNS)`) — staged: an empty read-only tmpfs mounted on `dir` becomes its root
/// (`pivot_root`), the tree that was its root goes under the stage's `host`. `dir` must be held
/// by a mount that does not propagate (the daemon's template folder). The thread's root is the
/// stage afterwards. On failure the namespace is left as it was, or (the `pivot_root` failed)
/// with the unused tmpfs unmounted.
pub fn make(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let base = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(None, dir, Some("tmpfs"), base, Some("mode=755,size=16k"))?;
    let undo = |e: io::Error| {
        let _ = crate::mount::unmount(dir);
        e
    };
    for sub in [HOST, ROOT] {
        std::fs::create_dir(dir.join(sub)).map_err(undo)?;
    }
    mount(
        None,
        dir,
        None,
        libc::MS_REMOUNT | libc::MS_RDONLY | base,
        Some("mode=755,size=16k"),
    )
    .map_err(undo)?;
    mount(None, dir, None, libc::MS_PRIVATE, None).map_err(undo)?;
    let new_root = cstr(dir)?;
    let put_old = cstr(&dir.join(HOST))?;
    // SAFETY: pivot_root with two NUL-terminated paths; the namespace is this thread's own.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    if rc != 0 {
        return Err(undo(io::Error::last_os_error()));
    }
    // The namespace is staged now, whatever happens to this thread's working folder.
    let _ = std::env::set_current_dir("/");
    Ok(())
}

/// In a copy of a staged template just entered (setns, then `unshare(CLONE_NEWNS)`, on a
/// thread with its own filesystem information): `chroot`s into the host's tree, and marks the
/// thread staged for [`current`] until the returned value is dropped.
pub fn enter() -> io::Result<Entered> {
    chroot(&Path::new("/").join(HOST))?;
    std::env::set_current_dir("/")?;
    STAGED.with(|s| s.set(true));
    Ok(Entered(()))
}

/// In a copy of a staged template just entered, for a runtime that makes the rootfs `/` with
/// `pivot_root` itself (an OCI runtime, which knows nothing of stages): moves the host's tree
/// onto the stage's `/`, as the host's root sits on the kernel's initial rootfs in an unstaged
/// namespace, and makes it the thread's root and working folder. The runtime's `pivot_root`
/// then puts the rootfs where the host's tree was — on the stage's `/`, where a process that
/// enters the namespace later (an `exec`) starts.
pub fn cover() -> io::Result<()> {
    // Opened first: once the tree is moved, `/` still names the stage, which has no `/proc`.
    let ns = mountns::current()?;
    mount(
        Some(&Path::new("/").join(HOST)),
        Path::new("/"),
        None,
        libc::MS_MOVE,
        None,
    )?;
    // Entering the namespace the thread is in sets its root and working folder to what is
    // mounted on the namespace's root: the host's tree.
    mountns::enter(&ns)
}

/// A thread's stay in a stage (see [`enter`]); the mark goes when dropped.
#[derive(Debug)]
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        STAGED.with(|s| s.set(false));
    }
}

/// Whether this thread [`enter`]ed a stage: a process cloned from it then [`switch`]es.
pub fn current() -> bool {
    STAGED.with(Cell::get)
}

/// In a container's init (a copy of a thread that [`enter`]ed a stage, in a mount namespace of
/// its own copied from the thread's): makes the mount at `root` (the rootfs, bound onto itself;
/// a host path) the namespace's `/` and the caller's root and working folder, and detaches the
/// host's tree. `slave_first`: the host's tree may still share mounts with the host's namespace
/// (a `rootfsPropagation`), so it is made a slave before it is detached, so that the detach
/// does not propagate.
pub fn switch(root: &Path, slave_first: bool) -> io::Result<()> {
    let root = std::fs::canonicalize(root)?;
    let rel = root.strip_prefix("/").unwrap_or(&root);
    // Entering the namespace the caller is in resets its root and working folder to the
    // namespace's root: the stage (nothing is mounted on it yet).
    // (The caller, a cloned init, is single-threaded with filesystem information of its own.)
    mountns::enter(&mountns::current()?)?;
    let host = Path::new("/").join(HOST);
    let waiting = Path::new("/").join(ROOT);
    mount(Some(&host.join(rel)), &waiting, None, libc::MS_MOVE, None)?;
    if slave_first {
        mount(None, &host, None, libc::MS_SLAVE | libc::MS_REC, None)?;
    }
    crate::mount::unmount(&host)?;
    std::env::set_current_dir(&waiting)?;
    mount(
        Some(Path::new(".")),
        Path::new("/"),
        None,
        libc::MS_MOVE,
        None,
    )?;
    chroot(Path::new("."))?;
    std::env::set_current_dir("/")
}
