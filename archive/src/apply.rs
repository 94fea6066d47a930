//! Unpacking a layer tar into a folder, safely.
//!
//! Entry paths are taken relative to the destination (a leading `/` is dropped, as Docker
//! does); `..` components are refused. Parent folders are resolved without following
//! symlinks, so a symlink planted by the layer can never redirect a later entry outside the
//! destination. Hard links must point inside the layer; symlinks whose relative target climbs
//! above the root are refused. Devices are created only when allowed. The total content size
//! is bounded.

use crate::{sys, ArchiveError, OPAQUE_MARKER, WHITEOUT_PREFIX};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// How whiteouts are materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Delete the named files (a full-copy driver such as vfs).
    Delete,
    /// overlayfs: `.wh.x` becomes a 0/0 character device `x`, `.wh..wh..opq` sets
    /// `trusted.overlay.opaque=y` on its folder.
    Overlay,
}

/// Options for [`apply_layer`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Whiteout handling.
    pub whiteouts: Whiteouts,
    /// Whether character/block device nodes may be created.
    pub allow_devices: bool,
    /// Largest total content size accepted, in bytes.
    pub max_size: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whiteouts: Whiteouts::Delete,
            allow_devices: true,
            max_size: 64 << 30,
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Bytes of file content written.
    pub bytes: u64,
    /// Entries processed.
    pub entries: u64,
}

/// Cleans an entry path into a relative path with no `..`.
fn clean(raw: &Path, entry: &str) -> Result<PathBuf, ArchiveError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(ArchiveError::Unsafe {
                    entry: entry.into(),
                    reason: "path contains '..'".into(),
                })
            }
            Component::Prefix(_) => {
                return Err(ArchiveError::Unsafe {
                    entry: entry.into(),
                    reason: "bad path prefix".into(),
                })
            }
        }
    }
    Ok(out)
}

/// Ensures every parent of `rel` under `root` is a real folder (creating missing ones),
/// never a symlink.
fn safe_parent(root: &Path, rel: &Path, entry: &str) -> Result<PathBuf, ArchiveError> {
    let mut cur = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ArchiveError::Unsafe {
                        entry: entry.into(),
                        reason: format!(
                            "parent {} is a symlink; refusing to write through it",
                            cur.display()
                        ),
                    })
                }
                Ok(_) => {
                    fs::remove_file(&cur)
                        .map_err(|e| ArchiveError::io(format!("replacing {}", cur.display()), e))?;
                    fs::create_dir(&cur)
                        .map_err(|e| ArchiveError::io(format!("creating {}", cur.display()), e))?;
                }
                Err(_) => fs::create_dir(&cur)
                    .map_err(|e| ArchiveError::io(format!("creating {}", cur.display()), e))?,
            }
        }
    }
    Ok(root.join(rel))
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether a relative symlink target placed at `rel` climbs above the root.
fn symlink_escapes(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = rel
        .parent()
        .map(|p| p.components().count() as i64)
        .unwrap_or(0);
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// Options for [`extract`]: unpacking a plain tar into a container (`docker cp`).
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a folder with a non-folder and vice versa (Docker's
    /// `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Owner given to every entry instead of the one recorded in the tar.
    pub chown: Option<(u32, u32)>,
    /// Renames entries `old` and `old/...` to `new` and `new/...` (`.` as `old`: every entry
    /// goes under `new`) — Docker's `RebaseArchiveEntries`.
    pub rebase: Option<(PathBuf, PathBuf)>,
}

fn rebase(rel: PathBuf, x: Option<&ExtractOptions>) -> PathBuf {
    let Some((old, new)) = x.and_then(|x| x.rebase.as_ref()) else {
        return rel;
    };
    let old = clean(old, "").unwrap_or_default();
    match rel.strip_prefix(&old) {
        Ok(rest) => clean(&new.join(rest), "").unwrap_or_default(),
        Err(_) => rel,
    }
}

/// Unpacks the (uncompressed) layer tar `r` into `dest`.
pub fn apply_layer(
    r: impl Read,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ArchiveError> {
    unpack(r, dest, opts, None)
}

/// Unpacks a plain tar (not a layer: `.wh.` names are ordinary files, symlinks may point
/// anywhere since they are never followed here) into the folder `dest`, safely as
/// [`apply_layer`] does.
pub fn extract(r: impl Read, dest: &Path, x: &ExtractOptions) -> Result<ApplyStats, ArchiveError> {
    let opts = ApplyOptions {
        max_size: u64::MAX,
        ..Default::default()
    };
    unpack(r, dest, &opts, Some(x))
}

/// Docker's refusal to replace a folder with a non-folder or the reverse.
fn check_overwrite(path: &Path, name: &str, is_dir: bool) -> Result<(), ArchiveError> {
    let Ok(m) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let msg = match (m.is_dir(), is_dir) {
        (true, false) => "cannot overwrite directory",
        (false, true) => "cannot overwrite non-directory",
        _ => return Ok(()),
    };
    let with = if is_dir { "directory" } else { "non-directory" };
    Err(ArchiveError::Unsafe {
        entry: name.into(),
        reason: format!(
            "{msg} {:?} with {with} {name:?}",
            path.display().to_string()
        ),
    })
}

fn unpack(
    r: impl Read,
    dest: &Path,
    opts: &ApplyOptions,
    x: Option<&ExtractOptions>,
) -> Result<ApplyStats, ArchiveError> {
    let layer = x.is_none();
    let mut ar = tar::Archive::new(r);
    let mut stats = ApplyStats::default();
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let entries = ar.entries().map_err(|e| ArchiveError::Tar(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Tar(e.to_string()))?;
        let raw = entry
            .path()
            .map_err(|e| ArchiveError::Tar(e.to_string()))?
            .into_owned();
        let name = raw.display().to_string();
        let rel = rebase(clean(&raw, &name)?, x);
        stats.entries += 1;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let header = entry.header().clone();
        let size = header
            .entry_size()
            .map_err(|e| ArchiveError::Tar(e.to_string()))?;
        stats.bytes += size;
        if stats.bytes > opts.max_size {
            return Err(ArchiveError::TooLarge {
                limit: opts.max_size,
            });
        }
        let file_name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Whiteouts.
        if layer && file_name == OPAQUE_MARKER {
            let dir = safe_parent(dest, &rel, &name)?;
            let dir = dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dest.to_path_buf());
            fs::create_dir_all(&dir)
                .map_err(|e| ArchiveError::io(format!("creating {}", dir.display()), e))?;
            match opts.whiteouts {
                Whiteouts::Overlay => sys::set_xattr(&dir, "trusted.overlay.opaque", b"y")
                    .map_err(|e| {
                        ArchiveError::io(format!("marking {} opaque", dir.display()), e)
                    })?,
                Whiteouts::Delete => {
                    let children = fs::read_dir(&dir)
                        .map_err(|e| ArchiveError::io(format!("reading {}", dir.display()), e))?;
                    for c in children.flatten() {
                        let p = c.path();
                        let r = p
                            .strip_prefix(dest)
                            .map(Path::to_path_buf)
                            .unwrap_or_default();
                        if !created.contains(&r) {
                            remove_any(&p).map_err(|e| {
                                ArchiveError::io(format!("removing {}", p.display()), e)
                            })?;
                        }
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX).filter(|_| layer) {
            let target_rel = rel.with_file_name(hidden);
            let target = safe_parent(dest, &target_rel, &name)?;
            remove_any(&target)
                .map_err(|e| ArchiveError::io(format!("removing {}", target.display()), e))?;
            if opts.whiteouts == Whiteouts::Overlay {
                sys::mknod(&target, libc::S_IFCHR, 0, 0).map_err(|e| {
                    ArchiveError::io(format!("creating whiteout {}", target.display()), e)
                })?;
            }
            continue;
        }
        let path = safe_parent(dest, &rel, &name)?;
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        if x.is_some_and(|x| x.no_overwrite_dir_non_dir) {
            check_overwrite(&path, &name, kind.is_dir())?;
        }
        if !kind.is_dir() {
            remove_any(&path)
                .map_err(|e| ArchiveError::io(format!("replacing {}", path.display()), e))?;
        }
        match kind {
            tar::EntryType::Directory => match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_any(&path).map_err(|e| {
                        ArchiveError::io(format!("replacing {}", path.display()), e)
                    })?;
                    fs::create_dir(&path)
                        .map_err(|e| ArchiveError::io(format!("creating {}", path.display()), e))?;
                }
                Err(_) => fs::create_dir(&path)
                    .map_err(|e| ArchiveError::io(format!("creating {}", path.display()), e))?,
            },
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| ArchiveError::io(format!("creating {}", path.display()), e))?;
                let mut w = BufWriter::with_capacity(1 << 20, f);
                let copied = io::copy(&mut entry, &mut w)
                    .map_err(|e| ArchiveError::Tar(format!("reading {name}: {e}")))?;
                if copied != size {
                    return Err(ArchiveError::Tar(format!(
                        "entry {name} is truncated: {copied} of {size} bytes"
                    )));
                }
                w.into_inner().map_err(|e| {
                    ArchiveError::io(format!("writing {}", path.display()), e.into_error())
                })?;
            }
            tar::EntryType::Symlink => {
                let target = header
                    .link_name()
                    .map_err(|e| ArchiveError::Tar(e.to_string()))?
                    .ok_or_else(|| ArchiveError::Tar(format!("symlink {name} has no target")))?
                    .into_owned();
                if layer && symlink_escapes(&rel, &target) {
                    return Err(ArchiveError::Unsafe {
                        entry: name,
                        reason: format!(
                            "symlink target {} escapes the layer root",
                            target.display()
                        ),
                    });
                }
                std::os::unix::fs::symlink(&target, &path).map_err(|e| {
                    ArchiveError::io(format!("creating symlink {}", path.display()), e)
                })?;
            }
            tar::EntryType::Link => {
                let target = header
                    .link_name()
                    .map_err(|e| ArchiveError::Tar(e.to_string()))?
                    .ok_or_else(|| ArchiveError::Tar(format!("hard link {name} has no target")))?
                    .into_owned();
                let trel = clean(&target, &name).map_err(|_| ArchiveError::Unsafe {
                    entry: name.clone(),
                    reason: "hard link target escapes the layer root".into(),
                })?;
                let trel = rebase(trel, x);
                let tpath = safe_parent(dest, &trel, &name)?;
                match fs::symlink_metadata(&tpath) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(ArchiveError::Unsafe {
                            entry: name,
                            reason: format!(
                                "hard link target {} is not a file inside the layer",
                                target.display()
                            ),
                        })
                    }
                }
                fs::hard_link(&tpath, &path)
                    .map_err(|e| ArchiveError::io(format!("linking {}", path.display()), e))?;
                created.insert(rel);
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                if !opts.allow_devices {
                    return Err(ArchiveError::Unsafe {
                        entry: name,
                        reason: "device nodes are not allowed here".into(),
                    });
                }
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let t = if kind == tar::EntryType::Char {
                    libc::S_IFCHR
                } else {
                    libc::S_IFBLK
                };
                sys::mknod(&path, t | mode, major, minor).map_err(|e| {
                    ArchiveError::io(format!("creating device {}", path.display()), e)
                })?;
            }
            tar::EntryType::Fifo => {
                sys::mknod(&path, libc::S_IFIFO | mode, 0, 0).map_err(|e| {
                    ArchiveError::io(format!("creating fifo {}", path.display()), e)
                })?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            other => {
                return Err(ArchiveError::Unsafe {
                    entry: name,
                    reason: format!("unsupported entry type {other:?}"),
                });
            }
        }
        // Metadata: xattrs, owner, mode, time.
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Some(key) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    if let Err(e) = sys::set_xattr(&path, key, ext.value_bytes()) {
                        if e.raw_os_error() != Some(libc::ENOTSUP) {
                            return Err(ArchiveError::io(
                                format!("setting xattr {key} on {}", path.display()),
                                e,
                            ));
                        }
                    }
                }
            }
        }
        let (uid, gid) = x.and_then(|x| x.chown).unwrap_or((
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        ));
        sys::lchown(&path, uid, gid)
            .map_err(|e| ArchiveError::io(format!("chown {}", path.display()), e))?;
        if kind != tar::EntryType::Symlink {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| ArchiveError::io(format!("chmod {}", path.display()), e))?;
        }
        let mtime = header.mtime().unwrap_or(0) as i64;
        if kind.is_dir() {
            dir_times.push((path.clone(), mtime));
        } else {
            sys::set_mtime(&path, mtime)
                .map_err(|e| ArchiveError::io(format!("setting times of {}", path.display()), e))?;
        }
        created.insert(rel);
    }
    for (p, t) in dir_times.iter().rev() {
        sys::set_mtime(p, *t)
            .map_err(|e| ArchiveError::io(format!("setting times of {}", p.display()), e))?;
    }
    Ok(stats)
}

/// Opens `path` for streaming reads (a helper for callers that apply from files).
pub fn open(path: &Path) -> Result<File, ArchiveError> {
    File::open(path).map_err(|e| ArchiveError::io(format!("opening {}", path.display()), e))
}
