//! Thin safe wrappers over the few syscalls `std` lacks: mknod, lchown, utimensat without
//! following symlinks, and extended attributes.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// mknod(2).
pub fn mknod(p: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    check(unsafe {
        libc::mknod(
            c.as_ptr(),
            mode as libc::mode_t,
            libc::makedev(major, minor),
        )
    })
}

/// lchown(2).
pub fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: valid path pointer; plain integer arguments.
    check(unsafe { libc::lchown(c.as_ptr(), uid, gid) })
}

/// Sets access and modification times to `mtime` seconds without following symlinks.
pub fn set_mtime(p: &Path, mtime: i64) -> io::Result<()> {
    let c = cpath(p)?;
    let t = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: valid path pointer and a two-element timespec array as utimensat requires.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// lsetxattr(2).
pub fn set_xattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let n = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name contains NUL"))?;
    // SAFETY: valid path and name pointers; value pointer/length describe a live slice.
    check(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// lgetxattr(2); `None` when the attribute is absent.
pub fn get_xattr(p: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let c = cpath(p)?;
    let n = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name contains NUL"))?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid pointers; the buffer length is passed.
    let rc = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(rc as usize);
    Ok(Some(buf))
}

/// Names of a file's extended attributes (without following symlinks).
pub fn list_xattrs(p: &Path) -> io::Result<Vec<String>> {
    let c = cpath(p)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid path; the buffer length is passed.
    let rc = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(Vec::new()),
            _ => Err(e),
        };
    }
    buf.truncate(rc as usize);
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}
