//! Path resolution inside a root: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` where the
//! kernel has it, else an `O_PATH | O_NOFOLLOW` walk that follows symlinks and `..` itself,
//! clamped at the root. Both return descriptors, never paths.

use crate::Follow;
use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU8, Ordering};

/// How many symlinks one resolution may follow (the kernel's own limit).
const MAX_LINKS: usize = 40;
/// How often an `openat2` that the kernel asks to retry (`EAGAIN`: a rename raced a `..`)
/// is retried before giving up.
const RETRIES: usize = 16;

/// `struct open_how` of openat2(2) (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// 0: not known yet, 1: openat2 works, 2: it does not (ENOSYS, or forced off).
static OPENAT2: AtomicU8 = AtomicU8::new(0);

/// Turns the `openat2` path off (tests of the fallback walk; kernels where it misbehaves).
pub fn force_walk(on: bool) {
    OPENAT2.store(if on { 2 } else { 0 }, Ordering::Relaxed);
}

pub(crate) fn cstr(p: &OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// A path made relative to the root: leading `/` dropped, `.` kept out, empty = the root.
fn rel_bytes(rel: &Path) -> OsString {
    let mut out = OsString::new();
    for c in rel.components() {
        let part: &OsStr = match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => continue,
            Component::ParentDir => OsStr::new(".."),
            Component::Normal(n) => n,
        };
        if !out.is_empty() {
            out.push("/");
        }
        out.push(part);
    }
    if out.is_empty() {
        out.push(".");
    }
    out
}

/// Opens `rel` inside `root` with `flags` (`O_PATH`, `O_RDONLY`, `O_CREAT`...), the last
/// component followed or not as `follow` says.
pub fn open_in(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    follow: Follow,
) -> io::Result<OwnedFd> {
    let mut flags = flags | libc::O_CLOEXEC;
    if follow == Follow::No {
        flags |= libc::O_NOFOLLOW;
    }
    if OPENAT2.load(Ordering::Relaxed) != 2 {
        match openat2(root, &rel_bytes(rel), flags, mode) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                OPENAT2.store(2, Ordering::Relaxed);
            }
            other => {
                OPENAT2.store(1, Ordering::Relaxed);
                return other;
            }
        }
    }
    walk_open(root, rel, flags, mode, follow)
}

/// An `O_PATH` descriptor of what `rel` names inside `root`.
pub fn resolve(root: BorrowedFd<'_>, rel: &Path, follow: Follow) -> io::Result<OwnedFd> {
    open_in(root, rel, libc::O_PATH, 0, follow)
}

fn openat2(
    root: BorrowedFd<'_>,
    rel: &OsStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = cstr(rel)?;
    let mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        mode as u64
    } else {
        0
    };
    let how = OpenHow {
        flags: flags as u64,
        mode,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    for _ in 0..RETRIES {
        // SAFETY: `c` is a NUL-terminated path alive for the call; `how` is a valid open_how
        // whose size is passed; `root` is an open descriptor borrowed for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if rc >= 0 {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(rc as libc::c_int) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// `openat(2)` relative to a descriptor.
pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated and alive; `dir` is an open descriptor.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The target of the symlink a descriptor (`O_PATH | O_NOFOLLOW`) holds.
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<OsString> {
    readlinkat(fd, OsStr::new(""))
}

/// `readlinkat(2)`.
pub(crate) fn readlinkat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OsString> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `c` is NUL-terminated; `buf` is writable for its whole length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

fn parts(p: &Path) -> impl Iterator<Item = OsString> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// The user-space walk: one `openat(O_PATH | O_NOFOLLOW)` per component; symlinks read and
/// spliced into the remaining components (absolute ones restart at the root); `..` pops the
/// stack of folders walked, never above the root.
fn walk(root: BorrowedFd<'_>, rel: &Path, follow: Follow) -> io::Result<OwnedFd> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut todo: VecDeque<OsString> = parts(rel).collect();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            stack.pop();
            continue;
        }
        let cur = stack.last().map(|f| f.as_fd()).unwrap_or(root);
        let fd = openat(cur, &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let st = crate::ops::fstat(fd.as_fd())?;
        let last = todo.is_empty();
        if st.kind == crate::FileKind::Symlink && (!last || follow == Follow::Yes) {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = readlink_fd(fd.as_fd())?;
            let target = Path::new(&target);
            if target.has_root() {
                stack.clear();
            }
            let mut spliced: VecDeque<OsString> = parts(target).collect();
            spliced.extend(todo);
            todo = spliced;
            continue;
        }
        if !last && st.kind != crate::FileKind::Dir {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        stack.push(fd);
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => root.try_clone_to_owned(),
    }
}

/// The walk, then the open with `flags`: the parent is walked and the last component opened
/// with `O_NOFOLLOW`; a symlink there, when it is to be followed, is walked and reopened
/// through `/proc/self/fd`.
fn walk_open(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    follow: Follow,
) -> io::Result<OwnedFd> {
    let flags = flags | libc::O_CLOEXEC;
    if flags & libc::O_PATH != 0 {
        return walk(root, rel, follow);
    }
    let (parent, name) = split(rel);
    let dir = walk(root, parent, Follow::Yes)?;
    let Some(name) = name else {
        return reopen(dir.as_fd(), flags);
    };
    match openat(dir.as_fd(), &name, flags | libc::O_NOFOLLOW, mode) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && follow == Follow::Yes => {
            let fd = walk(root, rel, Follow::Yes)?;
            reopen(fd.as_fd(), flags & !(libc::O_CREAT | libc::O_EXCL))
        }
        other => other,
    }
}

/// Opens the file an `O_PATH` descriptor holds again, with `flags`.
pub(crate) fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    // SAFETY: AT_FDCWD with an absolute path; `cstr` gives a NUL-terminated string.
    let c = cstr(OsStr::new(&p))?;
    // SAFETY: `c` is NUL-terminated and alive for the call.
    let n = unsafe { libc::open(c.as_ptr(), (flags & !libc::O_NOFOLLOW) | libc::O_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// `rel` split into its parent and its last name; no name when it ends in `..`, `.` or is
/// the root.
pub(crate) fn split(rel: &Path) -> (&Path, Option<OsString>) {
    match rel.components().next_back() {
        Some(Component::Normal(n)) => (
            rel.parent().unwrap_or(Path::new("")),
            Some(n.to_os_string()),
        ),
        _ => (rel, None),
    }
}
