//! Walking layer folders: comparing a layer with its parent, writing the differences as a
//! tar with whiteouts, and removing entries.

use berth_plugins::core::storage::ChangeKind as Kind;
use berth_plugins::core::{DriverError, DriverResult};
use std::fs::{self, Metadata};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

fn io(context: &Path) -> impl FnOnce(std::io::Error) -> DriverError + '_ {
    move |e| DriverError::io(context.display(), e)
}

/// Sorted children of `dir`.
fn children(dir: &Path) -> DriverResult<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io(dir))? {
        out.push(e.map_err(io(dir))?.path());
    }
    out.sort();
    Ok(out)
}

/// Calls `f(relative path, metadata)` for everything under `root`.
pub fn each(root: &Path, f: &mut dyn FnMut(&Path, &Metadata)) -> DriverResult<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for p in children(&dir)? {
            let m = fs::symlink_metadata(&p).map_err(io(&p))?;
            f(p.strip_prefix(root).unwrap_or(&p), &m);
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(())
}

fn same(a: &Metadata, b: &Metadata, pa: &Path, pb: &Path) -> bool {
    let same_meta = a.file_type() == b.file_type()
        && a.mode() == b.mode()
        && a.uid() == b.uid()
        && a.gid() == b.gid()
        && a.rdev() == b.rdev()
        && a.mtime() == b.mtime()
        && (a.is_dir() || a.size() == b.size());
    same_meta && (!a.is_symlink() || fs::read_link(pa).ok() == fs::read_link(pb).ok())
}

/// What changed in `layer` against `parent`, as (relative path, kind), sorted by path.
pub fn compare(layer: &Path, parent: Option<&Path>) -> DriverResult<Vec<(PathBuf, Kind)>> {
    let mut out = Vec::new();
    let mut err = None;
    each(layer, &mut |rel, m| {
        let Some(parent) = parent else {
            out.push((rel.to_path_buf(), Kind::Added));
            return;
        };
        let old = parent.join(rel);
        match fs::symlink_metadata(&old) {
            Ok(pm) if same(m, &pm, &layer.join(rel), &old) => {}
            Ok(_) => out.push((rel.to_path_buf(), Kind::Modified)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.push((rel.to_path_buf(), Kind::Added))
            }
            Err(e) => err = Some(DriverError::io(old.display(), e)),
        }
    })?;
    if let Some(parent) = parent {
        // Deleted: in the parent, gone (or no longer a folder to descend into) in the layer.
        let mut stack = vec![PathBuf::new()];
        while let Some(rel_dir) = stack.pop() {
            for p in children(&parent.join(&rel_dir))? {
                let rel = p.strip_prefix(parent).unwrap_or(&p).to_path_buf();
                match fs::symlink_metadata(layer.join(&rel)) {
                    Err(_) => out.push((rel, Kind::Deleted)),
                    Ok(m) if m.is_dir() && p.is_dir() && !p.is_symlink() => stack.push(rel),
                    Ok(_) => {}
                }
            }
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes `changes` of `layer` as a layer tar: entries as they are, deletions as whiteouts.
pub fn write_tar(
    layer: &Path,
    changes: &[(PathBuf, Kind)],
    out: &mut dyn Write,
) -> DriverResult<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let w = |e: std::io::Error| DriverError::io("writing the diff", e);
    for (rel, kind) in changes {
        if *kind == Kind::Deleted {
            let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
            let wh = rel
                .parent()
                .unwrap_or(Path::new(""))
                .join(format!(".wh.{}", name.unwrap_or_default()));
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, wh, std::io::empty()).map_err(w)?;
        } else {
            tar.append_path_with_name(layer.join(rel), rel).map_err(w)?;
        }
    }
    tar.finish().map_err(w)
}

/// Removes whatever is at `p`, if anything.
pub fn remove_any(p: &Path) -> DriverResult<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(io(p)),
        Ok(_) => fs::remove_file(p).map_err(io(p)),
        Err(_) => Ok(()),
    }
}

/// Empties folder `dir` (an opaque marker), creating it if needed.
pub fn clear_dir(dir: &Path) -> DriverResult<()> {
    if !dir.is_dir() {
        return fs::create_dir_all(dir).map_err(io(dir));
    }
    for p in children(dir)? {
        remove_any(&p)?;
    }
    Ok(())
}

/// Whether a link at folder `base` (relative to the layer root) pointing at `target` leaves
/// the layer. Hard link targets are relative to the root; an absolute symlink stays inside
/// (it is resolved against the container's root).
pub fn link_escapes(base: &Path, target: &Path, hard: bool) -> bool {
    let mut depth: i64 = if hard {
        0
    } else {
        base.components().count() as i64
    };
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) if hard => return true,
            Component::RootDir | Component::Prefix(_) => return false,
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Gives `p` the owner in its tar header (empty fields read as 0), then restores its mode,
/// which a change of owner may have stripped of set-id bits.
pub fn set_owner(p: &Path, h: &tar::Header) -> DriverResult<()> {
    if h.entry_type().is_hard_link() {
        return Ok(()); // the linked file has its owner already
    }
    let uid = h.uid().unwrap_or(0) as u32;
    let gid = h.gid().unwrap_or(0) as u32;
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(io(p))?;
    if !h.entry_type().is_symlink() {
        if let Ok(mode) = h.mode() {
            let perms = std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777);
            fs::set_permissions(p, perms).map_err(io(p))?;
        }
    }
    Ok(())
}

/// Creates the fifo or device node a tar header describes (the tar crate leaves them out).
pub fn make_special(p: &Path, h: &tar::Header) -> DriverResult<()> {
    let kind = h.entry_type();
    let file_type = if kind.is_fifo() {
        libc::S_IFIFO
    } else if kind.is_character_special() {
        libc::S_IFCHR
    } else {
        libc::S_IFBLK
    };
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    let mode = h.mode().unwrap_or(0o644) & 0o7777;
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| DriverError::InvalidInput(format!("{} has a NUL byte", p.display())))?;
    // SAFETY: mknod reads the NUL-terminated path we own for the duration of the call.
    let rc = unsafe { libc::mknod(path.as_ptr(), file_type | mode, libc::makedev(major, minor)) };
    if rc != 0 {
        return Err(DriverError::io(
            p.display(),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
