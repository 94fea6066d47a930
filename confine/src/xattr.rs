//! Extended attributes of an entry named inside a folder descriptor. The `l*xattr` calls
//! take a path only, so the entry is named `/proc/self/fd/<dir>/<name>`: the kernel follows
//! the descriptor's magic link to the very folder it holds, then looks `name` up in it
//! without following it. `name` must be a plain name (no `/`), so nothing else is resolved.

use crate::resolve::cstr;
use crate::{ConfineError, Root};
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn at_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<CString> {
    if !crate::is_plain_name(name) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    cstr(OsStr::from_bytes(&p))
}

fn xkey(k: &str) -> io::Result<CString> {
    CString::new(k).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name has NUL"))
}

/// `lsetxattr` of the entry `name` in the folder `dir`.
pub(crate) fn set_at(dir: BorrowedFd<'_>, name: &OsStr, k: &str, value: &[u8]) -> io::Result<()> {
    set_path(&at_path(dir, name)?, k, value, false)
}

/// `setxattr` (`follow`) or `lsetxattr` of the path `p`.
fn set_path(p: &CStr, k: &str, value: &[u8], follow: bool) -> io::Result<()> {
    let k = xkey(k)?;
    let set = if follow {
        libc::setxattr
    } else {
        libc::lsetxattr
    };
    // SAFETY: NUL-terminated path and name alive for the call; value pointer and length
    // describe a live slice.
    let rc = unsafe {
        set(
            p.as_ptr(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `lgetxattr` of the entry `name` in `dir`; `None` when absent or unsupported.
pub(crate) fn get_at(dir: BorrowedFd<'_>, name: &OsStr, k: &str) -> io::Result<Option<Vec<u8>>> {
    let (p, k) = (at_path(dir, name)?, xkey(k)?);
    let mut buf = vec![0u8; 65536];
    // SAFETY: NUL-terminated strings; the buffer's length is passed.
    let rc = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
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

/// `llistxattr` of the entry `name` in `dir`.
pub(crate) fn list_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<String>> {
    let p = at_path(dir, name)?;
    let mut buf = vec![0u8; 65536];
    // SAFETY: NUL-terminated path; the buffer's length is passed.
    let rc = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
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

impl Root {
    /// Sets the extended attribute `key` of `rel` itself (a symlink is not followed).
    pub fn set_xattr(
        &self,
        rel: impl AsRef<Path>,
        key: &str,
        value: &[u8],
    ) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let err = |e| ConfineError::io("setxattr", self.display(rel), e);
        match self.parent(rel) {
            Ok((dir, name)) => set_at(dir.as_fd(), &name, key, value).map_err(err),
            // The root itself: through its own descriptor.
            Err(ConfineError::InvalidPath { .. }) => {
                let fd = self.resolve(rel, crate::Follow::Yes)?;
                let p = cstr(crate::proc_path(&fd).as_os_str()).map_err(err)?;
                set_path(&p, key, value, true).map_err(err)
            }
            Err(e) => Err(e),
        }
    }

    /// The extended attribute `key` of `rel` itself; `None` when absent.
    pub fn get_xattr(
        &self,
        rel: impl AsRef<Path>,
        key: &str,
    ) -> Result<Option<Vec<u8>>, ConfineError> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        get_at(dir.as_fd(), &name, key)
            .map_err(|e| ConfineError::io("getxattr", self.display(rel), e))
    }
}
