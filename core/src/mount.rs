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

/// Whether `p` is the root of a mount (something is mounted on it), asked of the kernel for
/// this one path (`statx`'s `STATX_ATTR_MOUNT_ROOT`, Linux ≥ 5.8) rather than by reading the
/// whole mount table, whose size grows with every running container. On older kernels the
/// mount table is read after all.
pub fn is_mount_point(p: &Path) -> io::Result<bool> {
    let path = cstr(p.as_os_str().as_encoded_bytes())?;
    // SAFETY: statx is plain old data; all-zero is a valid value for it to be overwritten.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a statx buffer owned by this frame.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            0,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if stx.stx_attributes_mask & bit != 0 {
        return Ok(stx.stx_attributes & bit != 0);
    }
    let text = p.display().to_string();
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(text.as_str())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_points_are_told_from_folders() {
        let root = std::path::Path::new("/");
        assert!(super::is_mount_point(root).expect("statx /"));
        let dir = std::env::temp_dir().join(format!("berth-mountpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let is = super::is_mount_point(&dir).expect("statx dir");
        let _ = std::fs::remove_dir(&dir);
        assert!(!is, "a new folder is no mount point");
    }
}
