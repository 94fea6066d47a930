//! Unpacking a layer tar into a folder, safely.
//!
//! The destination is a [`Root`] (berth-confine): every entry, hard-link target, whiteout
//! and opaque folder is resolved *inside* it (`openat2(RESOLVE_IN_ROOT)`) and made with `*at`
//! calls on its parent folder's descriptor, so neither a symlink the tar planted nor one a
//! running container swaps in concurrently can make a write land outside it.
//!
//! On top of that, Docker's rules for archives: entry paths are taken relative to the
//! destination (a leading `/` is dropped); `..` components are refused; an entry is not
//! written through a symlink the tree holds at its parent; a layer's relative symlink may
//! not climb above the layer. Devices are created only when allowed. The total content size
//! is bounded.

use crate::{ArchiveError, OPAQUE_MARKER, WHITEOUT_PREFIX};
use berth_confine::{FileKind, Root};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Read};
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

/// Where a layer entry named `raw` lands inside the layer's folder, as [`apply_layer`] places
/// it (`/` and `.` parts dropped; `None` when it has a `..` and would be refused). The image
/// store uses it to find the file bodies it reads back.
pub fn entry_path(raw: &Path) -> Option<PathBuf> {
    clean(raw, "").ok()
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

/// Makes every folder above `rel` inside the root (a file in the way is replaced by a
/// folder), refusing to write through a symlink the tree holds there: Docker's rule for
/// layers and extracted archives. This is a policy check; confinement itself comes from the
/// [`Root`], whose every operation resolves inside the destination whatever a concurrent
/// writer did since.
fn prepare_parent(root: &Root, rel: &Path, entry: &str) -> Result<(), ArchiveError> {
    let mut cur = PathBuf::new();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for c in parent.components() {
        cur.push(c);
        match root.lstat(&cur)?.map(|st| st.kind) {
            Some(FileKind::Dir) => {}
            Some(FileKind::Symlink) => {
                return Err(ArchiveError::Unsafe {
                    entry: entry.into(),
                    reason: format!(
                        "parent {} is a symlink; refusing to write through it",
                        cur.display()
                    ),
                })
            }
            Some(_) => {
                root.remove(&cur)?;
                root.mkdir(&cur, 0o755)?;
            }
            None => root.mkdir(&cur, 0o755)?,
        }
    }
    Ok(())
}

/// Removes whatever `rel` names (a folder with its contents), never following a symlink.
fn remove_any(root: &Root, rel: &Path) -> Result<(), ArchiveError> {
    match root.lstat(rel)? {
        Some(st) if st.kind == FileKind::Dir => root.remove_all(rel)?,
        Some(_) => root.remove(rel)?,
        None => {}
    }
    Ok(())
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

/// Opens the trusted host folder `dest` (a layer's folder, a host folder of the user's) as
/// the root every entry is resolved in.
fn open_root(dest: &Path) -> Result<Root, ArchiveError> {
    Root::open(dest).map_err(ArchiveError::from)
}

/// Unpacks the (uncompressed) layer tar `r` into `dest`.
pub fn apply_layer(
    r: impl Read,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ArchiveError> {
    apply_layer_in(r, &open_root(dest)?, opts)
}

/// Unpacks the (uncompressed) layer tar `r` into the root `root`.
pub fn apply_layer_in(
    r: impl Read,
    root: &Root,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ArchiveError> {
    unpack(r, root, opts, None)
}

/// Unpacks a plain tar (not a layer: `.wh.` names are ordinary files, symlinks may point
/// anywhere since they are only ever resolved inside a root) into the folder `dest`, safely
/// as [`apply_layer`] does.
pub fn extract(r: impl Read, dest: &Path, x: &ExtractOptions) -> Result<ApplyStats, ArchiveError> {
    extract_in(r, &open_root(dest)?, x)
}

/// [`extract`] into a root: every entry is resolved inside `root` (a folder of a container
/// reached through the container's own root), whatever the container does meanwhile.
pub fn extract_in(
    r: impl Read,
    root: &Root,
    x: &ExtractOptions,
) -> Result<ApplyStats, ArchiveError> {
    let opts = ApplyOptions {
        max_size: u64::MAX,
        ..Default::default()
    };
    unpack(r, root, &opts, Some(x))
}

/// Docker's refusal to replace a folder with a non-folder or the reverse.
fn check_overwrite(root: &Root, rel: &Path, name: &str, is_dir: bool) -> Result<(), ArchiveError> {
    let Some(st) = root.lstat(rel)? else {
        return Ok(());
    };
    let msg = match (st.kind == FileKind::Dir, is_dir) {
        (true, false) => "cannot overwrite directory",
        (false, true) => "cannot overwrite non-directory",
        _ => return Ok(()),
    };
    let with = if is_dir { "directory" } else { "non-directory" };
    Err(ArchiveError::Unsafe {
        entry: name.into(),
        reason: format!(
            "{msg} {:?} with {with} {name:?}",
            root.display(rel).display().to_string()
        ),
    })
}

fn tar_err(e: io::Error) -> ArchiveError {
    ArchiveError::Tar(e.to_string())
}

fn unpack(
    r: impl Read,
    root: &Root,
    opts: &ApplyOptions,
    x: Option<&ExtractOptions>,
) -> Result<ApplyStats, ArchiveError> {
    let layer = x.is_none();
    let mut ar = tar::Archive::new(r);
    let mut stats = ApplyStats::default();
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let entries = ar.entries().map_err(tar_err)?;
    for entry in entries {
        let mut entry = entry.map_err(tar_err)?;
        let raw = entry.path().map_err(tar_err)?.into_owned();
        let name = raw.display().to_string();
        let rel = rebase(clean(&raw, &name)?, x);
        stats.entries += 1;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let header = entry.header().clone();
        // The body's length as the tar reader reads it (a PAX `size` record wins over the
        // header's field, as it must for files of 8 GiB and more).
        let size = entry.size();
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
            prepare_parent(root, &rel, &name)?;
            let dir = rel.parent().unwrap_or(Path::new(""));
            match opts.whiteouts {
                Whiteouts::Overlay => root.set_xattr(dir, "trusted.overlay.opaque", b"y")?,
                Whiteouts::Delete => {
                    for c in root.read_dir(dir)? {
                        let r = dir.join(&c);
                        if !created.contains(&r) {
                            remove_any(root, &r)?;
                        }
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX).filter(|_| layer) {
            if !berth_confine::is_plain_name(OsStr::new(hidden)) {
                return Err(ArchiveError::Unsafe {
                    entry: name,
                    reason: "invalid whiteout name".into(),
                });
            }
            let target_rel = rel.with_file_name(hidden);
            prepare_parent(root, &target_rel, &name)?;
            remove_any(root, &target_rel)?;
            if opts.whiteouts == Whiteouts::Overlay {
                root.mknod(&target_rel, FileKind::Char, 0, 0)?;
            }
            continue;
        }
        prepare_parent(root, &rel, &name)?;
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        if x.is_some_and(|x| x.no_overwrite_dir_non_dir) {
            check_overwrite(root, &rel, &name, kind.is_dir())?;
        }
        if !kind.is_dir() {
            remove_any(root, &rel)?;
        }
        match kind {
            tar::EntryType::Directory => match root.lstat(&rel)?.map(|st| st.kind) {
                Some(FileKind::Dir) => {}
                Some(_) => {
                    remove_any(root, &rel)?;
                    root.mkdir(&rel, 0o755)?;
                }
                None => root.mkdir(&rel, 0o755)?,
            },
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let f = root.create_new(&rel, 0o600)?;
                let mut w = BufWriter::with_capacity(1 << 20, f);
                let copied = io::copy(&mut entry, &mut w)
                    .map_err(|e| ArchiveError::Tar(format!("reading {name}: {e}")))?;
                if copied != size {
                    return Err(ArchiveError::Tar(format!(
                        "entry {name} is truncated: {copied} of {size} bytes"
                    )));
                }
                w.into_inner().map_err(|e| {
                    ArchiveError::io(
                        format!("writing {}", root.display(&rel).display()),
                        e.into_error(),
                    )
                })?;
            }
            tar::EntryType::Symlink => {
                let target = header
                    .link_name()
                    .map_err(tar_err)?
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
                root.symlink(&target, &rel)?;
            }
            tar::EntryType::Link => {
                let target = header
                    .link_name()
                    .map_err(tar_err)?
                    .ok_or_else(|| ArchiveError::Tar(format!("hard link {name} has no target")))?
                    .into_owned();
                let trel = clean(&target, &name).map_err(|_| ArchiveError::Unsafe {
                    entry: name.clone(),
                    reason: "hard link target escapes the layer root".into(),
                })?;
                let trel = rebase(trel, x);
                match root.lstat(&trel) {
                    Ok(Some(st)) if st.kind != FileKind::Dir => {}
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
                // Both names resolve inside the root: the link cannot reach a host file.
                root.hard_link(&trel, &rel)?;
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
                let k = if kind == tar::EntryType::Char {
                    FileKind::Char
                } else {
                    FileKind::Block
                };
                root.mknod(&rel, k, mode, libc::makedev(major, minor))?;
            }
            tar::EntryType::Fifo => root.mknod(&rel, FileKind::Fifo, mode, 0)?,
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
                    if let Err(e) = root.set_xattr(&rel, key, ext.value_bytes()) {
                        if e.raw_os_error() != Some(libc::ENOTSUP) {
                            return Err(e.into());
                        }
                    }
                }
            }
        }
        let (uid, gid) = x.and_then(|x| x.chown).unwrap_or((
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        ));
        root.chown(&rel, uid, gid)?;
        if kind != tar::EntryType::Symlink {
            root.chmod(&rel, mode)?;
        }
        let mtime = header.mtime().unwrap_or(0) as i64;
        if kind.is_dir() {
            dir_times.push((rel.clone(), mtime));
        } else {
            root.set_times(&rel, mtime, 0)?;
        }
        created.insert(rel);
    }
    for (p, t) in dir_times.iter().rev() {
        root.set_times(p, *t, 0)?;
    }
    Ok(stats)
}

/// Opens `path` for streaming reads (a helper for callers that apply from files).
pub fn open(path: &Path) -> Result<File, ArchiveError> {
    File::open(path).map_err(|e| ArchiveError::io(format!("opening {}", path.display()), e))
}
