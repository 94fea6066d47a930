//! Producing a layer's changes: as a tar stream with `.wh.` whiteouts (for commit, save and
//! export of a layer) and as a list (`docker diff`). Two sources: an overlayfs upper folder
//! (whiteouts are 0/0 character devices, opaque folders carry `trusted.overlay.opaque=y`), or
//! a full folder compared with its parent's full folder (vfs).

use crate::{sys, ArchiveError, OPAQUE_MARKER, WHITEOUT_PREFIX};
use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

type Change = (String, ChangeKind);

pub use berth_core::storage::ChangeKind;

/// Bytes of content and inodes under `dir`, not following symlinks: file sizes, folders not
/// counted, hard links once — as Docker sizes a container's rw layer or a volume.
pub fn tree_usage(dir: &Path) -> (u64, u64) {
    let (mut size, mut inodes) = (0, 0);
    let mut linked = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            inodes += 1;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() < 2 || linked.insert((m.dev(), m.ino())) {
                size += m.len();
            }
        }
    }
    (size, inodes)
}

fn sorted_children(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    v.sort();
    Ok(v)
}

struct TarOut<'a, W: Write> {
    b: tar::Builder<&'a mut W>,
    links: HashMap<(u64, u64), PathBuf>,
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3;
    let mut len = body_len + body_len.to_string().len();
    if len.to_string().len() != body_len.to_string().len() {
        len = body_len + len.to_string().len();
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

impl<'a, W: Write> TarOut<'a, W> {
    fn new(w: &'a mut W) -> Self {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        TarOut {
            b,
            links: HashMap::new(),
        }
    }

    fn whiteout(&mut self, rel: &Path) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o600);
        h.set_mtime(0);
        self.b.append_data(&mut h, rel, io::empty())
    }

    fn entry(&mut self, full: &Path, rel: &Path, m: &Metadata) -> io::Result<()> {
        let xattrs: Vec<(String, Vec<u8>)> = sys::list_xattrs(full)
            .unwrap_or_default()
            .into_iter()
            .filter(|k| !k.starts_with("trusted.overlay."))
            .filter_map(|k| sys::get_xattr(full, &k).ok().flatten().map(|v| (k, v)))
            .collect();
        if !xattrs.is_empty() {
            let mut data = Vec::new();
            for (k, v) in &xattrs {
                data.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
            }
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            let short: String = rel
                .display()
                .to_string()
                .chars()
                .rev()
                .take(80)
                .collect::<String>()
                .chars()
                .rev()
                .collect();
            h.set_path(format!("PaxHeaders/{short}"))?;
            h.set_cksum();
            self.b.append(&h, data.as_slice())?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(u64::from(m.uid()));
        h.set_gid(u64::from(m.gid()));
        h.set_mtime(m.mtime().max(0) as u64);
        h.set_size(0);
        let ft = m.file_type();
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            return self.b.append_data(&mut h, rel, io::empty());
        }
        if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            let target = fs::read_link(full)?;
            return self.b.append_link(&mut h, rel, target);
        }
        if m.nlink() > 1 {
            let key = (m.dev(), m.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                h.set_entry_type(tar::EntryType::Link);
                return self.b.append_link(&mut h, rel, first);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(m.len());
            let f = File::open(full)?;
            return self.b.append_data(&mut h, rel, f);
        }
        let dev = m.rdev();
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        if ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
        } else if ft.is_fifo() {
            h.set_entry_type(tar::EntryType::Fifo);
        } else {
            return Ok(()); // sockets are not archived
        }
        self.b.append_data(&mut h, rel, io::empty())
    }
}

fn is_whiteout_dev(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn with_prefix(rel: &Path, name: &str) -> PathBuf {
    rel.parent()
        .unwrap_or(Path::new(""))
        .join(format!("{WHITEOUT_PREFIX}{name}"))
}

fn walk_overlay(
    upper: &Path,
    rel: &Path,
    out: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
) -> io::Result<()> {
    for full in sorted_children(&upper.join(rel))? {
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = rel.join(&name);
        let m = fs::symlink_metadata(&full)?;
        if is_whiteout_dev(&m) {
            out(Event::Deleted(&r))?;
            continue;
        }
        out(Event::Present(&full, &r, &m, true))?;
        if m.is_dir() {
            if sys::get_xattr(&full, "trusted.overlay.opaque")?.as_deref() == Some(b"y") {
                out(Event::Opaque(&r))?;
            }
            walk_overlay(upper, &r, out)?;
        }
    }
    Ok(())
}

enum Event<'a> {
    /// A path present in the layer; the bool says whether it differs from the parent.
    Present(&'a Path, &'a Path, &'a Metadata, bool),
    Deleted(&'a Path),
    Opaque(&'a Path),
}

fn differs(a: &Metadata, b: &Metadata, pa: &Path, pb: &Path) -> bool {
    if a.file_type() != b.file_type()
        || a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
    {
        return true;
    }
    if a.is_dir() {
        return false;
    }
    if a.file_type().is_symlink() {
        return fs::read_link(pa).ok() != fs::read_link(pb).ok();
    }
    a.len() != b.len()
        || a.mtime() != b.mtime()
        || a.mtime_nsec() != b.mtime_nsec()
        || a.rdev() != b.rdev()
}

fn walk_between(
    layer: &Path,
    parent: Option<&Path>,
    rel: &Path,
    out: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
) -> io::Result<()> {
    for full in sorted_children(&layer.join(rel))? {
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = rel.join(&name);
        let m = fs::symlink_metadata(&full)?;
        let pfull = parent.map(|p| p.join(&r));
        let pm = pfull.as_ref().and_then(|p| fs::symlink_metadata(p).ok());
        let changed = match (&pm, &pfull) {
            (Some(pm), Some(pf)) => differs(&m, pm, &full, pf),
            _ => true,
        };
        out(Event::Present(&full, &r, &m, changed))?;
        if m.is_dir() {
            let sub_parent = pm.as_ref().filter(|pm| pm.is_dir()).and(parent);
            walk_between(layer, sub_parent, &r, out)?;
        }
    }
    if let Some(p) = parent {
        if let Ok(children) = sorted_children(&p.join(rel)) {
            for pc in children {
                let name = pc
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let r = rel.join(&name);
                if fs::symlink_metadata(layer.join(&r)).is_err() {
                    out(Event::Deleted(&r))?;
                }
            }
        }
    }
    Ok(())
}

fn to_tar<W: Write>(
    w: &mut W,
    walk: impl FnOnce(&mut dyn FnMut(Event<'_>) -> io::Result<()>) -> io::Result<()>,
) -> Result<(), ArchiveError> {
    let mut t = TarOut::new(w);
    walk(&mut |ev| match ev {
        Event::Present(full, rel, m, changed) => {
            if changed || m.is_dir() {
                t.entry(full, rel, m)
            } else {
                Ok(())
            }
        }
        Event::Deleted(rel) => {
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            t.whiteout(&with_prefix(rel, &name))
        }
        Event::Opaque(rel) => t.whiteout(&rel.join(OPAQUE_MARKER)),
    })
    .map_err(|e| ArchiveError::io("writing the layer diff", e))?;
    t.b.finish()
        .map_err(|e| ArchiveError::io("finishing the layer diff", e))
}

/// Writes the diff of an overlayfs upper folder.
pub fn write_diff_overlay<W: Write>(upper: &Path, w: &mut W) -> Result<(), ArchiveError> {
    to_tar(w, |out| walk_overlay(upper, Path::new(""), out))
}

/// Writes the diff of folder `layer` against `parent` (None: everything is new).
pub fn write_diff_between<W: Write>(
    layer: &Path,
    parent: Option<&Path>,
    w: &mut W,
) -> Result<(), ArchiveError> {
    to_tar(w, |out| walk_between(layer, parent, Path::new(""), out))
}

/// Writes `src` — a file, or a folder with everything under it; symlinks are archived, never
/// followed — as tar entries named `name` and `name/...` (`docker cp` out of a container).
pub fn write_tree<W: Write>(src: &Path, name: &Path, w: &mut W) -> Result<(), ArchiveError> {
    let m = fs::symlink_metadata(src)
        .map_err(|e| ArchiveError::io(format!("reading {}", src.display()), e))?;
    let mut t = TarOut::new(w);
    let mut walk = || -> io::Result<()> {
        t.entry(src, name, &m)?;
        if m.is_dir() {
            walk_between(src, None, Path::new(""), &mut |ev| match ev {
                Event::Present(full, rel, m, _) => t.entry(full, &name.join(rel), m),
                _ => Ok(()),
            })?;
        }
        Ok(())
    };
    walk().map_err(|e| ArchiveError::io(format!("archiving {}", src.display()), e))?;
    t.b.finish()
        .map_err(|e| ArchiveError::io("finishing the archive", e))
}

fn collect(
    walk: impl FnOnce(&mut dyn FnMut(Event<'_>) -> io::Result<()>) -> io::Result<()>,
    overlay: &dyn Fn(&Path) -> bool,
) -> Result<Vec<Change>, ArchiveError> {
    let mut v = Vec::new();
    walk(&mut |ev| {
        match ev {
            Event::Present(_, rel, _, changed) => {
                if changed {
                    let kind = if overlay(rel) {
                        ChangeKind::Modified
                    } else {
                        ChangeKind::Added
                    };
                    v.push((format!("/{}", rel.display()), kind));
                }
            }
            Event::Deleted(rel) => v.push((format!("/{}", rel.display()), ChangeKind::Deleted)),
            Event::Opaque(_) => {}
        }
        Ok(())
    })
    .map_err(|e| ArchiveError::io("listing changes", e))?;
    Ok(v)
}

/// Lists the changes of folder `layer` against `parent`.
pub fn changes_between(
    layer: &Path,
    parent: Option<&Path>,
) -> Result<Vec<(String, ChangeKind)>, ArchiveError> {
    collect(
        |out| walk_between(layer, parent, Path::new(""), out),
        &|rel| parent.is_some_and(|p| fs::symlink_metadata(p.join(rel)).is_ok()),
    )
}

/// Lists the changes of an overlay upper folder; `lower_exists` tells whether a path exists
/// in the lower layers (then it is a modification, not an addition).
pub fn changes_overlay(
    upper: &Path,
    lower_exists: &dyn Fn(&Path) -> bool,
) -> Result<Vec<(String, ChangeKind)>, ArchiveError> {
    collect(|out| walk_overlay(upper, Path::new(""), out), lower_exists)
}
