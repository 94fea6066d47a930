//! Performing the mounts a storage driver describes ([`crate::storage::Mount`]), and undoing them.

use crate::storage::Mount;
use std::ffi::CString;
use std::io;
use std::path::Path;

fn cstr(s: &[u8]) -> io::Result<CString> {
    CString::new(s)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in mount argument"))
}

impl Mount {
    /// Mounts this description on `target` (which must exist).
    pub fn mount_at(&self, target: &Path) -> io::Result<()> {
        let t = cstr(target.as_os_str().as_encoded_bytes())?;
        let src = cstr(self.source.as_bytes())?;
        if self.fstype == "bind" {
            let mut flags = libc::MS_BIND;
            if self.options.iter().any(|o| o == "rbind") {
                flags |= libc::MS_REC;
            }
            // SAFETY: valid NUL-terminated strings; no data argument for bind mounts.
            let rc = unsafe {
                libc::mount(
                    src.as_ptr(),
                    t.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            if self.options.iter().any(|o| o == "ro") {
                // SAFETY: as above; remounting the bind read-only.
                let rc = unsafe {
                    libc::mount(
                        std::ptr::null(),
                        t.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    )
                };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            return Ok(());
        }
        let fstype = cstr(self.fstype.as_bytes())?;
        let data = cstr(self.options.join(",").as_bytes())?;
        // SAFETY: valid NUL-terminated strings for the duration of the call.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                t.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Mounts every description in order on `target`.
pub fn mount_all(mounts: &[Mount], target: &Path) -> io::Result<()> {
    for m in mounts {
        m.mount_at(target)?;
    }
    Ok(())
}

/// Detaches whatever is mounted on `target` (lazily; missing mounts are not an error).
pub fn unmount(target: &Path) -> io::Result<()> {
    let t = cstr(target.as_os_str().as_encoded_bytes())?;
    // SAFETY: valid path pointer.
    let rc = unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}
