//! Images made locally, for tests, the demo and the benchmarks — no registry needed.
//!
//! [`busybox_rootfs_tar`] writes a root filesystem tarball built from Debian's static
//! busybox (`/bin/busybox` from the `busybox-static` package): the binary, one symlink per
//! applet, and the few files a container expects (`/etc/passwd`, `/etc/group`, empty mount
//! points). Importing it (`docker import` / `berth import`) gives the `busybox` test image.

pub mod bulk;
pub mod critest;
pub mod docker_archive;
pub mod effective_uid;
pub mod odd;
pub mod plain_busybox;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a test image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TestImageError {
    /// No static busybox on this machine.
    #[error("no static busybox found (looked at {0:?}); install Debian's busybox-static")]
    NoBusybox(Vec<PathBuf>),
    /// Listing the applets failed.
    #[error("running {0} --list failed: {1}")]
    List(PathBuf, String),
    /// Writing the tarball failed.
    #[error("writing {0}: {1}")]
    Io(PathBuf, io::Error),
    /// Debian's dynamic busybox could not be fetched or read ([`plain_busybox`]).
    #[error("Debian's dynamic busybox: {0}")]
    PlainBusybox(String),
}

/// Where a static busybox is looked for, in order.
const BUSYBOX_CANDIDATES: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

/// Finds the static busybox binary.
pub fn find_busybox() -> Result<PathBuf, TestImageError> {
    let candidates: Vec<PathBuf> = BUSYBOX_CANDIDATES.iter().map(PathBuf::from).collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(TestImageError::NoBusybox(candidates))
}

fn applets(busybox: &Path) -> Result<Vec<String>, TestImageError> {
    let out = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| TestImageError::List(busybox.to_path_buf(), e.to_string()))?;
    if !out.status.success() {
        return Err(TestImageError::List(
            busybox.to_path_buf(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "busybox" && !l.contains('/'))
        .map(str::to_string)
        .collect())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, mode, 0);
    b.append_data(&mut h, path, io::empty())
}

fn add_file<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    b.append_data(&mut h, path, data)
}

/// Adds the host file `src` (symlinks followed) as the regular file `path`.
fn add_host_file<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    path: &str,
    mode: u32,
) -> io::Result<()> {
    let mut f = File::open(src)?;
    let len = f.metadata()?.len();
    let mut h = header(tar::EntryType::Regular, mode, len);
    b.append_data(&mut h, path, &mut f)
}

/// The default `/etc/passwd` of the busybox rootfs.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
/// The default `/etc/group` of the busybox rootfs.
pub const GROUP: &str =
    "root:x:0:\ndaemon:x:1:\ntty:x:5:\nwww-data:x:33:\nusers:x:100:\nnogroup:x:65534:\n";

/// One more entry for [`busybox_rootfs_tar_with`]: a folder, or a file (an `etc/passwd` or
/// `etc/group` one replaces the default).
#[derive(Debug, Clone, Copy)]
pub struct Extra<'a> {
    /// Relative path in the rootfs (`usr/local/bin/x`).
    pub path: &'a str,
    /// Permission bits (setuid included).
    pub mode: u32,
    /// The file's content, or `None` for a folder.
    pub data: Option<&'a [u8]>,
}

/// Writes a busybox root filesystem tarball to `dest`.
pub fn busybox_rootfs_tar(dest: &Path) -> Result<(), TestImageError> {
    busybox_rootfs_tar_with(dest, &[])
}

/// Like [`busybox_rootfs_tar`] with `extras` added after the defaults (folders before the files
/// in them: give them in that order), owned by root.
pub fn busybox_rootfs_tar_with(dest: &Path, extras: &[Extra<'_>]) -> Result<(), TestImageError> {
    let busybox = find_busybox()?;
    rootfs_tar_from(dest, &busybox, &[], extras)
}

/// Like [`busybox_rootfs_tar_with`] on Debian's dynamic busybox
/// ([`plain_busybox::plain_busybox`]): its shell looks commands up in `PATH`, as upstream's
/// busybox image's does. Its libraries go in at their host paths and each applet is a hard
/// link to `/bin/busybox` (as upstream's), so masking `/bin/ls` masks that name only.
pub fn plain_busybox_rootfs_tar_with(
    dest: &Path,
    extras: &[Extra<'_>],
) -> Result<(), TestImageError> {
    let plain = plain_busybox::plain_busybox()?;
    rootfs_tar_from(dest, &plain.binary, &plain.libs, extras)
}

/// Writes the rootfs of `busybox`: applets as symlinks when `libs` is empty (a static
/// binary), else as hard links, with `libs` copied in at their own paths.
fn rootfs_tar_from(
    dest: &Path,
    busybox: &Path,
    libs: &[PathBuf],
    extras: &[Extra<'_>],
) -> Result<(), TestImageError> {
    let names = applets(busybox)?;
    let io_err = |e| TestImageError::Io(dest.to_path_buf(), e);
    let file = File::create(dest).map_err(io_err)?;
    let mut b = tar::Builder::new(BufWriter::new(file));
    let build = |b: &mut tar::Builder<BufWriter<File>>| -> io::Result<()> {
        for (dir, mode) in [
            ("bin", 0o755),
            ("dev", 0o755),
            ("etc", 0o755),
            ("home", 0o755),
            ("proc", 0o555),
            ("root", 0o700),
            ("sys", 0o555),
            ("tmp", 0o1777),
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("usr/sbin", 0o755),
            ("sbin", 0o755),
            ("var", 0o755),
            ("var/www", 0o755),
        ] {
            add_dir(b, dir, mode)?;
        }
        add_host_file(b, busybox, "bin/busybox", 0o755)?;
        let replaced = |p: &str| extras.iter().any(|e| e.path == p);
        for name in &names {
            let path = format!("bin/{name}");
            if replaced(&path) {
                continue;
            }
            if libs.is_empty() {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, path, "busybox")?;
            } else {
                let mut h = header(tar::EntryType::Link, 0o755, 0);
                b.append_link(&mut h, path, "bin/busybox")?;
            }
        }
        let mut made: Vec<PathBuf> = Vec::new();
        for lib in libs {
            let inside = lib.strip_prefix("/").unwrap_or(lib);
            let mut parents: Vec<&Path> = inside
                .ancestors()
                .skip(1)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            parents.reverse();
            for dir in parents {
                if !made.iter().any(|m| m == dir) {
                    add_dir(b, &dir.to_string_lossy(), 0o755)?;
                    made.push(dir.to_path_buf());
                }
            }
            add_host_file(b, lib, &inside.to_string_lossy(), 0o755)?;
        }
        if !replaced("etc/passwd") {
            add_file(b, "etc/passwd", 0o644, PASSWD.as_bytes())?;
        }
        if !replaced("etc/group") {
            add_file(b, "etc/group", 0o644, GROUP.as_bytes())?;
        }
        add_file(b, "etc/hostname", 0o644, b"")?;
        add_file(b, "etc/hosts", 0o644, b"")?;
        add_file(b, "etc/resolv.conf", 0o644, b"")?;
        for e in extras {
            match e.data {
                Some(data) => add_file(b, e.path, e.mode, data)?,
                None => add_dir(b, e.path, e.mode)?,
            }
        }
        b.finish()
    };
    build(&mut b).map_err(io_err)?;
    let mut w = b.into_inner().map_err(io_err)?;
    w.flush().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_rootfs_with_sh() {
        if find_busybox().is_err() {
            eprintln!("skipped: no busybox-static here");
            return;
        }
        let dir = std::env::temp_dir().join(format!("berth-testimg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let tar_path = dir.join("rootfs.tar");
        busybox_rootfs_tar(&tar_path).expect("tar");
        let mut ar = tar::Archive::new(File::open(&tar_path).expect("open"));
        let names: Vec<String> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert!(names.iter().any(|n| n == "bin/sh"));
        assert!(names.iter().any(|n| n == "etc/passwd"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
