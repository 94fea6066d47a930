//! The container's filesystem seen through an id mapping: a second, idmapped mount of the
//! rootfs berth mounted, at a place the mapped root can reach.
//!
//! An overlay cannot itself be idmapped, but its layers can (Linux 5.19+), and since Linux
//! 6.13 overlayfs takes its layers as descriptors (`fsconfig(FSCONFIG_SET_FD, "lowerdir+")`),
//! so detached idmapped mounts of the layers never appear anywhere. The layers are read from
//! the overlay mounted at the rootfs (`/proc/self/mountinfo`). The overlay is created with
//! the mapped root as its filesystem uid and gid (its "mounter" credentials, which overlayfs
//! uses for its own work directory and copy-ups), so everything it writes through the
//! idmapped upper layer is stored with the image's ids. A rootfs that is not an overlay (the
//! `vfs` driver's folder) is idmapped directly.

use crate::Map;
use berth_plugins::core::{DriverError, DriverResult};
use berth_runtime::mounts::unescape;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

fn cstr(s: &str) -> DriverResult<CString> {
    CString::new(s).map_err(|_| DriverError::InvalidInput(format!("NUL in {s:?}")))
}

fn path_cstr(p: &Path) -> DriverResult<CString> {
    cstr(&p.to_string_lossy())
}

fn os_err(what: impl std::fmt::Display) -> DriverError {
    DriverError::io(what, std::io::Error::last_os_error())
}

/// A system call's descriptor result as an owned descriptor.
fn owned(rc: libc::c_long, what: impl std::fmt::Display) -> DriverResult<OwnedFd> {
    if rc < 0 {
        return Err(os_err(what));
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

/// `<dir>` (0711: every uid may pass, none may list) and `<dir>/<id>` (0700, the mapped
/// root's), with the empty mount point `rootfs` in it.
pub fn folders(dir: &Path, top: &Path, map: Map) -> DriverResult<()> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |e| DriverError::io(format!("preparing {p}"), e)
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).map_err(io(dir))?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(top)
        .map_err(io(top))?;
    std::os::unix::fs::chown(top, Some(map.uid), Some(map.gid)).map_err(io(top))?;
    let rootfs = top.join("rootfs");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&rootfs)
        .map_err(io(&rootfs))
}

/// Detaches what is mounted at `target` (nothing there is not an error).
pub fn unmount(target: &Path) -> DriverResult<()> {
    let t = path_cstr(target)?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = std::io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) {
            return Err(DriverError::io(
                format!("unmounting {}", target.display()),
                e,
            ));
        }
    }
    Ok(())
}

/// A user namespace with `map` (`0 uid size`, `0 gid size`), as a descriptor: a child
/// unshares it and waits while we write its maps and open it, then exits.
fn user_namespace(map: Map) -> DriverResult<OwnedFd> {
    let (mut ready_r, ready_w) = std::io::pipe().map_err(|e| DriverError::io("pipe", e))?;
    let (hold_r, hold_w) = std::io::pipe().map_err(|e| DriverError::io("pipe", e))?;
    // SAFETY: the child makes only async-signal-safe calls (unshare, write, read, _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("fork"));
    }
    if pid == 0 {
        // SAFETY: raw system calls on descriptors this process holds; `_exit` ends it. The
        // parent's ends are closed first, so that the parent's close of `hold_w` ends the read.
        unsafe {
            libc::close(hold_w.as_raw_fd());
            libc::close(ready_r.as_raw_fd());
            if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                libc::write(ready_w.as_raw_fd(), b"u".as_ptr().cast(), 1);
            }
            let mut b = 0u8;
            libc::read(hold_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(hold_r);
    let mut b = [0u8; 1];
    let unshared = ready_r.read(&mut b).map(|n| n == 1).unwrap_or(false);
    let result = if unshared {
        let write = |file: &str, first: u32| {
            std::fs::File::options()
                .write(true)
                .open(format!("/proc/{pid}/{file}"))
                .and_then(|mut f| f.write_all(format!("0 {first} {}\n", map.size).as_bytes()))
                .map_err(|e| DriverError::io(format!("writing {file}"), e))
        };
        write("uid_map", map.uid)
            .and_then(|()| write("gid_map", map.gid))
            .and_then(|()| {
                std::fs::File::open(format!("/proc/{pid}/ns/user"))
                    .map(OwnedFd::from)
                    .map_err(|e| DriverError::io("opening the user namespace", e))
            })
    } else {
        Err(DriverError::Io(
            "userns: creating a user namespace failed".into(),
        ))
    };
    drop(hold_w);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    result
}

/// `open_tree(dirfd, path, flags)`.
fn open_tree(dirfd: RawFd, path: &str, flags: libc::c_uint) -> DriverResult<OwnedFd> {
    let p = cstr(path)?;
    // SAFETY: a valid path; the result is checked.
    let rc = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, p.as_ptr(), flags) };
    owned(rc, format_args!("open_tree {path}"))
}

/// A detached copy of the mount at `path` (with the mounts below it for `recursive`),
/// idmapped through `userns`.
fn idmapped(path: &str, userns: &OwnedFd, recursive: bool) -> DriverResult<OwnedFd> {
    let rec = if recursive {
        libc::AT_RECURSIVE as u32
    } else {
        0
    };
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | rec;
    let tree = open_tree(libc::AT_FDCWD, path, flags)?;
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: `attr` lives across the call and its size is passed; the result is checked.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as u32 | rec,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc != 0 {
        return Err(os_err(format_args!("idmapping {path}")));
    }
    Ok(tree)
}

/// The mount at `target` as `/proc/self/mountinfo` shows it: filesystem type and the
/// filesystem's options (the last mount there, if several are stacked).
fn mount_at(target: &Path) -> DriverResult<Option<(String, String)>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| DriverError::io("reading mountinfo", e))?;
    let want = target.to_string_lossy();
    let mut found = None;
    for line in info.lines() {
        let mut halves = line.splitn(2, " - ");
        let (Some(head), Some(tail)) = (halves.next(), halves.next()) else {
            continue;
        };
        if head.split(' ').nth(4).map(unescape).as_deref() != Some(&*want) {
            continue;
        }
        let mut t = tail.split(' ');
        let fstype = t.next().unwrap_or_default().to_string();
        let opts = t.nth(1).unwrap_or_default().to_string();
        found = Some((fstype, opts));
    }
    Ok(found)
}

/// An overlay's layers from its options: lower layers (top first), upper, work.
fn layers(opts: &str) -> DriverResult<(Vec<String>, String, String)> {
    let (mut lower, mut upper, mut work) = (Vec::new(), None, None);
    for o in opts.split(',') {
        if let Some(v) = o.strip_prefix("lowerdir=") {
            lower.extend(v.split(':').map(unescape));
        } else if let Some(v) = o.strip_prefix("lowerdir+=") {
            lower.push(unescape(v));
        } else if let Some(v) = o.strip_prefix("upperdir=") {
            upper = Some(unescape(v));
        } else if let Some(v) = o.strip_prefix("workdir=") {
            work = Some(unescape(v));
        }
    }
    match (upper, work) {
        (Some(u), Some(w)) if !lower.is_empty() => Ok((lower, u, w)),
        _ => Err(DriverError::Unsupported(format!(
            "userns: the rootfs overlay has no upper and lower layers ({opts})"
        ))),
    }
}

/// Runs `f` with the filesystem uid and gid of `map`'s root and every permitted capability
/// effective (a change of fsuid drops the file capabilities), then restores root's.
fn as_mapped_root<T>(map: Map, f: impl FnOnce() -> DriverResult<T>) -> DriverResult<T> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: setfsuid/setfsgid change only this thread's credentials; capget/capset get a
    // header and two data structs, as the v3 interface wants; results are checked.
    let raised = unsafe {
        libc::setfsgid(map.gid);
        libc::setfsuid(map.uid);
        let ok = libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) == 0;
        for x in d.iter_mut() {
            x.effective = x.permitted;
        }
        ok && libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) == 0
            && libc::setfsuid(u32::MAX) as u32 == map.uid
    };
    let out = if raised {
        f()
    } else {
        Err(os_err("userns: taking the mapped root's filesystem ids"))
    };
    // SAFETY: back to root's filesystem ids (the file capabilities come back with them).
    unsafe {
        libc::setfsuid(0);
        libc::setfsgid(0);
    }
    out
}

/// `fsconfig(fs, FSCONFIG_SET_FD, key, NULL, fd)`.
fn set_fd(fs: &OwnedFd, key: &str, fd: &OwnedFd) -> DriverResult<()> {
    let k = cstr(key)?;
    // SAFETY: a valid key; the descriptors are open; the result is checked.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_FD,
            k.as_ptr(),
            std::ptr::null::<u8>(),
            fd.as_raw_fd(),
        )
    };
    if rc != 0 {
        return Err(os_err(format_args!("overlay {key}")));
    }
    Ok(())
}

/// A new overlay (a detached mount) of the idmapped layers.
fn overlay(opts: &str, userns: &OwnedFd, map: Map) -> DriverResult<OwnedFd> {
    let (lower, upper, work) = layers(opts)?;
    let lowers = lower
        .iter()
        .map(|l| idmapped(l, userns, false))
        .collect::<DriverResult<Vec<_>>>()?;
    // upper and work must be on one mount: their common parent (a layer's folder), idmapped.
    let (up, wk) = (Path::new(&upper), Path::new(&work));
    let parent = up
        .parent()
        .filter(|p| Some(*p) == wk.parent())
        .ok_or_else(|| DriverError::Unsupported(format!("userns: {upper} and {work} apart")))?;
    let layer = idmapped(&parent.to_string_lossy(), userns, false)?;
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let sub = |p: &Path| {
        open_tree(
            layer.as_raw_fd(),
            &name(p).unwrap_or_default(),
            libc::OPEN_TREE_CLOEXEC,
        )
    };
    let (upper_fd, work_fd) = (sub(up)?, sub(wk)?);
    as_mapped_root(map, || {
        let ty = c"overlay";
        // SAFETY: a valid filesystem name; the result is checked.
        let fs = owned(
            unsafe { libc::syscall(libc::SYS_fsopen, ty.as_ptr(), libc::FSOPEN_CLOEXEC) },
            "fsopen overlay",
        )?;
        for l in &lowers {
            set_fd(&fs, "lowerdir+", l)?;
        }
        set_fd(&fs, "upperdir", &upper_fd)?;
        set_fd(&fs, "workdir", &work_fd)?;
        // SAFETY: no key or value for FSCONFIG_CMD_CREATE; the result is checked.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_CMD_CREATE,
                std::ptr::null::<u8>(),
                std::ptr::null::<u8>(),
                0,
            )
        };
        if rc != 0 {
            return Err(os_err("creating the idmapped overlay"));
        }
        // SAFETY: the configured filesystem context; the result is checked.
        let rc =
            unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), libc::FSMOUNT_CLOEXEC, 0) };
        owned(rc, "fsmount")
    })
}

/// Mounts the filesystem mounted at `source` (or the folder `source`) again at `target`,
/// idmapped with `map`.
pub fn mount_idmapped(source: &Path, target: &Path, map: Map) -> DriverResult<()> {
    let userns = user_namespace(map)?;
    let tree = match mount_at(source)? {
        Some((ty, opts)) if ty == "overlay" => overlay(&opts, &userns, map)?,
        _ => idmapped(&source.to_string_lossy(), &userns, true)?,
    };
    let t = path_cstr(target)?;
    let empty = c"";
    // SAFETY: a detached mount attached at a valid path; the result is checked.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(os_err(format_args!("mounting {}", target.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_escapes() {
        let (l, u, w) =
            layers("rw,lowerdir=/a/l/X:/a/l/Y,upperdir=/a/1/diff,workdir=/a/1/work,uuid=on")
                .expect("layers");
        assert_eq!(l, ["/a/l/X", "/a/l/Y"]);
        assert_eq!((u.as_str(), w.as_str()), ("/a/1/diff", "/a/1/work"));
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert!(layers("rw,lowerdir=/a").is_err());
    }
}
