//! Producing a layer's changes: as a tar stream with `.wh.` whiteouts (for commit, save and
//! export of a layer) and as a list (`docker diff`). Two sources: an overlayfs upper folder
//! (whiteouts are 0/0 character devices, opaque folders carry `trusted.overlay.opaque=y`), or
//! a full folder compared with its parent's full folder (vfs).
//!
//! Every walk goes through descriptors ([`berth_confine::Dir`]): each folder is opened
//! `O_DIRECTORY | O_NOFOLLOW` relative to its parent's descriptor, files `O_NOFOLLOW`, so a
//! folder swapped for a symlink while the walk runs cannot lead it outside the tree.

use crate::{ArchiveError, OPAQUE_MARKER, WHITEOUT_PREFIX};
use berth_confine::{Dir, FileKind, Root, Stat};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

type Change = (String, ChangeKind);

pub use berth_core::storage::ChangeKind;

/// Whether an error opening a sub-folder says it is no longer one (swapped for a symlink or
/// a file, or removed, while the walk ran): the walk then skips it.
fn vanished(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::ENOENT)
    )
}

/// Bytes of content and inodes under `dir`, not following symlinks: file sizes, folders not
/// counted, hard links once — as Docker sizes a container's rw layer or a volume. Walked
/// through descriptors, so a symlink in the tree never leads the count outside it.
pub fn tree_usage(dir: &Path) -> (u64, u64) {
    let (size, inodes, _) = tree_usage_within(dir, u64::MAX);
    (size, inodes)
}

/// [`tree_usage`], stopping after `max_entries` entries (a tree a container filled with
/// files is not walked to its end each time it is asked about): the figures so far, and
/// whether the walk was complete.
pub fn tree_usage_within(dir: &Path, max_entries: u64) -> (u64, u64, bool) {
    let (mut size, mut inodes) = (0, 0);
    let mut linked = std::collections::HashSet::new();
    let Ok(top) = Dir::open_host(dir) else {
        return (0, 0, true);
    };
    let mut stack = vec![top];
    while let Some(d) = stack.pop() {
        let Ok(names) = d.names() else {
            continue;
        };
        for name in names {
            if inodes >= max_entries {
                return (size, inodes, false);
            }
            let Ok(Some(st)) = d.lstat(&name) else {
                continue;
            };
            inodes += 1;
            if st.kind == FileKind::Dir {
                if let Ok(sub) = d.open_dir(&name) {
                    stack.push(sub);
                }
            } else if st.nlink < 2 || linked.insert((st.dev, st.ino)) {
                size += st.size;
            }
        }
    }
    (size, inodes, true)
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

    /// Archives the entry `name` of the folder `dir` (its stat `st`) as `rel`.
    fn entry(&mut self, it: &Item<'_>, rel: &Path) -> io::Result<()> {
        let (dir, name, st) = (it.dir, it.name, &it.st);
        let xattrs: Vec<(String, Vec<u8>)> = match name {
            Some(name) => dir
                .xattrs(name)
                .unwrap_or_default()
                .into_iter()
                .filter(|k| !k.starts_with("trusted.overlay."))
                .filter_map(|k| dir.xattr(name, &k).ok().flatten().map(|v| (k, v)))
                .collect(),
            None => Vec::new(),
        };
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
        h.set_mode(st.mode);
        h.set_uid(u64::from(st.uid));
        h.set_gid(u64::from(st.gid));
        h.set_mtime(st.mtime.max(0) as u64);
        h.set_size(0);
        if st.kind == FileKind::Dir {
            h.set_entry_type(tar::EntryType::Directory);
            return self.b.append_data(&mut h, rel, io::empty());
        }
        let Some(name) = name else {
            return Ok(());
        };
        if st.kind == FileKind::Symlink {
            h.set_entry_type(tar::EntryType::Symlink);
            let target = dir.read_link(name)?;
            return self.b.append_link(&mut h, rel, target);
        }
        if st.nlink > 1 {
            let key = (st.dev, st.ino);
            if let Some(first) = self.links.get(&key).cloned() {
                h.set_entry_type(tar::EntryType::Link);
                return self.b.append_link(&mut h, rel, first);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        if st.kind == FileKind::File {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(st.size);
            let f = match dir.open_file(name) {
                Ok(f) => f,
                // Swapped or removed since it was listed: left out.
                Err(e) if vanished(&e) || e.raw_os_error() == Some(libc::EINVAL) => return Ok(()),
                Err(e) => return Err(e),
            };
            // Exactly the size the header says, even if the file changes meanwhile.
            let data = f.take(st.size).chain(io::repeat(0)).take(st.size);
            return self.b.append_data(&mut h, rel, data);
        }
        let (major, minor) = (libc::major(st.rdev), libc::minor(st.rdev));
        match st.kind {
            FileKind::Char | FileKind::Block => {
                h.set_entry_type(if st.kind == FileKind::Char {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                h.set_device_major(major)?;
                h.set_device_minor(minor)?;
            }
            FileKind::Fifo => h.set_entry_type(tar::EntryType::Fifo),
            _ => return Ok(()), // sockets are not archived
        }
        self.b.append_data(&mut h, rel, io::empty())
    }
}

/// One entry met by a walk: its folder, its name there (`None`: the walk's top folder
/// itself) and its stat.
struct Item<'a> {
    dir: &'a Dir,
    name: Option<&'a OsStr>,
    st: Stat,
}

fn is_whiteout_dev(st: &Stat) -> bool {
    st.kind == FileKind::Char && st.rdev == 0
}

fn with_prefix(rel: &Path, name: &str) -> PathBuf {
    rel.parent()
        .unwrap_or(Path::new(""))
        .join(format!("{WHITEOUT_PREFIX}{name}"))
}

/// Opens the sub-folder `name` of `dir`; `None` when it is no longer a folder.
fn sub_dir(dir: &Dir, name: &OsStr) -> io::Result<Option<Dir>> {
    match dir.open_dir(name) {
        Ok(d) => Ok(Some(d)),
        Err(e) if vanished(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One folder being walked: its entries and how far the walk got through them. The walks
/// keep these on a heap stack, not the thread's: a container can nest folders thousands deep,
/// and a recursive walk would overflow berthd's stack.
struct Frame {
    dir: Dir,
    parent: Option<Dir>,
    rel: PathBuf,
    names: std::vec::IntoIter<std::ffi::OsString>,
}

fn walk_overlay(
    top: &Dir,
    rel: &Path,
    out: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut stack = vec![Frame {
        dir: top.try_clone()?,
        parent: None,
        rel: rel.to_path_buf(),
        names: top.names()?.into_iter(),
    }];
    while let Some(f) = stack.last_mut() {
        let Some(name) = f.names.next() else {
            stack.pop();
            continue;
        };
        let dir = &f.dir;
        let Some(st) = dir.lstat(&name)? else {
            continue;
        };
        let r = f.rel.join(&name);
        if is_whiteout_dev(&st) {
            out(Event::Deleted(&r))?;
            continue;
        }
        let is_dir = st.kind == FileKind::Dir;
        let it = Item {
            dir,
            name: Some(&name),
            st,
        };
        out(Event::Present(&it, &r, true))?;
        if is_dir {
            if dir.xattr(&name, "trusted.overlay.opaque")?.as_deref() == Some(b"y") {
                out(Event::Opaque(&r))?;
            }
            if let Some(sub) = sub_dir(dir, &name)? {
                let names = sub.names()?.into_iter();
                stack.push(Frame {
                    dir: sub,
                    parent: None,
                    rel: r,
                    names,
                });
            }
        }
    }
    Ok(())
}

enum Event<'a> {
    /// A path present in the layer; the bool says whether it differs from the parent.
    Present(&'a Item<'a>, &'a Path, bool),
    Deleted(&'a Path),
    Opaque(&'a Path),
}

fn differs(a: &Stat, b: &Stat, da: &Dir, db: &Dir, name: &OsStr) -> bool {
    if a.kind != b.kind || a.mode != b.mode || a.uid != b.uid || a.gid != b.gid {
        return true;
    }
    match a.kind {
        FileKind::Dir => false,
        FileKind::Symlink => da.read_link(name).ok() != db.read_link(name).ok(),
        _ => {
            a.size != b.size
                || a.mtime != b.mtime
                || a.mtime_nsec != b.mtime_nsec
                || a.rdev != b.rdev
        }
    }
}

fn walk_between(
    top: &Dir,
    top_parent: Option<&Dir>,
    rel: &Path,
    out: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut stack = vec![Frame {
        dir: top.try_clone()?,
        parent: top_parent.map(Dir::try_clone).transpose()?,
        rel: rel.to_path_buf(),
        names: top.names()?.into_iter(),
    }];
    while let Some(f) = stack.last_mut() {
        let Some(name) = f.names.next() else {
            // All entries seen: what the parent has and this layer lacks was deleted.
            if let Some(f) = stack.pop() {
                if let Some(p) = &f.parent {
                    if let Ok(names) = p.names() {
                        for name in names {
                            if f.dir.lstat(&name)?.is_none() {
                                out(Event::Deleted(&f.rel.join(&name)))?;
                            }
                        }
                    }
                }
            }
            continue;
        };
        let (layer, parent) = (&f.dir, f.parent.as_ref());
        let Some(st) = layer.lstat(&name)? else {
            continue;
        };
        let r = f.rel.join(&name);
        let pst = parent.and_then(|p| p.lstat(&name).ok().flatten());
        let changed = match (&pst, parent) {
            (Some(pst), Some(p)) => differs(&st, pst, layer, p, &name),
            _ => true,
        };
        let is_dir = st.kind == FileKind::Dir;
        let it = Item {
            dir: layer,
            name: Some(&name),
            st,
        };
        out(Event::Present(&it, &r, changed))?;
        if is_dir {
            let sub_parent = match (parent, pst) {
                (Some(p), Some(pst)) if pst.kind == FileKind::Dir => sub_dir(p, &name)?,
                _ => None,
            };
            if let Some(sub) = sub_dir(layer, &name)? {
                let names = sub.names()?.into_iter();
                stack.push(Frame {
                    dir: sub,
                    parent: sub_parent,
                    rel: r,
                    names,
                });
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
        Event::Present(it, rel, changed) => {
            if changed || it.st.kind == FileKind::Dir {
                t.entry(it, rel)
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

fn open_dir(p: &Path) -> Result<Dir, ArchiveError> {
    Dir::open_host(p).map_err(|e| ArchiveError::io(format!("opening {}", p.display()), e))
}

/// Writes the diff of an overlayfs upper folder.
pub fn write_diff_overlay<W: Write>(upper: &Path, w: &mut W) -> Result<(), ArchiveError> {
    let top = open_dir(upper)?;
    to_tar(w, |out| walk_overlay(&top, Path::new(""), out))
}

/// Writes the diff of folder `layer` against `parent` (None: everything is new).
pub fn write_diff_between<W: Write>(
    layer: &Path,
    parent: Option<&Path>,
    w: &mut W,
) -> Result<(), ArchiveError> {
    let top = open_dir(layer)?;
    let ptop = parent.map(open_dir).transpose()?;
    to_tar(w, |out| {
        walk_between(&top, ptop.as_ref(), Path::new(""), out)
    })
}

/// Writes `src` — a file, or a folder with everything under it; symlinks are archived, never
/// followed — as tar entries named `name` and `name/...` (`docker cp` out of a container).
pub fn write_tree<W: Write>(src: &Path, name: &Path, w: &mut W) -> Result<(), ArchiveError> {
    let (parent, base) = match (src.parent(), src.file_name()) {
        (Some(p), Some(b)) if p.as_os_str().is_empty() => (Path::new("."), Path::new(b)),
        (Some(p), Some(b)) => (p, Path::new(b)),
        _ => (src, Path::new("")),
    };
    let root = Root::open(parent)?;
    write_tree_in(&root, base, name, w)
}

/// [`write_tree`] of `rel` inside `root`: `rel`'s folders are resolved inside the root (its
/// last component not followed), and the tree below is walked through descriptors, so a
/// folder the container swaps for a symlink meanwhile cannot lead the walk out of it.
pub fn write_tree_in<W: Write>(
    root: &Root,
    rel: &Path,
    name: &Path,
    w: &mut W,
) -> Result<(), ArchiveError> {
    let (pdir, base) = root.open_parent(rel)?;
    let ctx = |e| ArchiveError::io(format!("archiving {}", root.display(rel).display()), e);
    let top: Dir;
    let (it, sub) = match &base {
        Some(b) => {
            let st = pdir
                .lstat(b)
                .map_err(ctx)?
                .ok_or_else(|| ctx(io::Error::from_raw_os_error(libc::ENOENT)))?;
            let sub = if st.kind == FileKind::Dir {
                sub_dir(&pdir, b).map_err(ctx)?
            } else {
                None
            };
            (
                Item {
                    dir: &pdir,
                    name: Some(b.as_os_str()),
                    st,
                },
                sub,
            )
        }
        None => {
            top = pdir;
            let st = top.stat().map_err(ctx)?;
            let sub = root.open_top()?;
            (
                Item {
                    dir: &top,
                    name: None,
                    st,
                },
                Some(sub),
            )
        }
    };
    let mut t = TarOut::new(w);
    let mut walk = || -> io::Result<()> {
        t.entry(&it, name)?;
        if let Some(sub) = &sub {
            walk_between(sub, None, Path::new(""), &mut |ev| match ev {
                Event::Present(it, r, _) => t.entry(it, &name.join(r)),
                _ => Ok(()),
            })?;
        }
        Ok(())
    };
    walk().map_err(ctx)?;
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
            Event::Present(_, rel, changed) => {
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
    let top = open_dir(layer)?;
    let ptop = parent.map(open_dir).transpose()?;
    let proot = parent.map(Root::open).transpose()?;
    collect(
        |out| walk_between(&top, ptop.as_ref(), Path::new(""), out),
        &|rel| {
            proot
                .as_ref()
                .is_some_and(|p| matches!(p.lstat(rel), Ok(Some(_))))
        },
    )
}

/// Lists the changes of an overlay upper folder; `lower_exists` tells whether a path exists
/// in the lower layers (then it is a modification, not an addition).
pub fn changes_overlay(
    upper: &Path,
    lower_exists: &dyn Fn(&Path) -> bool,
) -> Result<Vec<(String, ChangeKind)>, ArchiveError> {
    let top = open_dir(upper)?;
    collect(|out| walk_overlay(&top, Path::new(""), out), lower_exists)
}
