//! Paths inside a container, resolved as if chrooted into it (`docker cp`): symlinks are
//! followed component by component within the container's root — an absolute target
//! restarts at the container's `/`, `..` never climbs above it — and a container path under a
//! mount (volume, bind mount, /etc/hosts...) maps to that mount's own [`Root`].
//!
//! Every look-up goes through a [`Root`] (berth-confine): the container's root folder and
//! each mount's source are opened once, and a path is only ever resolved *inside* one of
//! them. No path of the container's choosing is joined onto a host path, so a symlink the
//! container swaps in between two look-ups (CVE-2018-15664) still resolves inside it.

use berth_confine::{FileKind, Root};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed at most while resolving one path (Linux's own limit is 40).
const MAX_LINKS: u32 = 255;

/// One mount over the container's root: its destination, the root holding its source and
/// the source's path inside that root (empty for a folder; the file's name for a file bind
/// mount such as `/etc/hosts`, whose root is then the file's folder).
#[derive(Debug)]
pub struct MountRoot {
    pub dest: PathBuf,
    pub root: Root,
    pub base: PathBuf,
}

impl MountRoot {
    /// The trusted host path `source` (a volume's folder, a bind mount's source, berth's own
    /// hosts file) as a mount at `dest`.
    pub fn open(dest: PathBuf, source: &Path) -> Result<MountRoot, berth_confine::ConfineError> {
        if source.is_dir() {
            return Ok(MountRoot {
                dest,
                root: Root::open(source)?,
                base: PathBuf::new(),
            });
        }
        let (dir, base) = match (source.parent(), source.file_name()) {
            (Some(d), Some(b)) => (d, PathBuf::from(b)),
            _ => (source, PathBuf::new()),
        };
        Ok(MountRoot {
            dest,
            root: Root::open(dir)?,
            base,
        })
    }
}

/// A container's file system as seen from the host.
#[derive(Debug)]
pub struct Scope {
    root: Root,
    /// Longest destination first.
    mounts: Vec<MountRoot>,
}

impl Scope {
    /// A scope rooted at `root` with `mounts` over it.
    pub fn new(root: Root, mut mounts: Vec<MountRoot>) -> Scope {
        mounts.sort_by_key(|m| std::cmp::Reverse(m.dest.components().count()));
        Scope { root, mounts }
    }

    /// The root holding `cpath` (an absolute container path free of symlinks) and the path
    /// to resolve inside it.
    pub fn locate(&self, cpath: &Path) -> (&Root, PathBuf) {
        for m in &self.mounts {
            if let Ok(rest) = cpath.strip_prefix(&m.dest) {
                return (&m.root, m.base.join(rest));
            }
        }
        (
            &self.root,
            cpath.strip_prefix("/").unwrap_or(cpath).to_path_buf(),
        )
    }

    /// The destination of the mount holding `cpath`, if any.
    pub fn mount_of(&self, cpath: &Path) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|m| cpath.starts_with(&m.dest))
            .map(|m| m.dest.as_path())
    }

    /// Resolves `path` (taken as absolute in the container) into a symlink-free container
    /// path; the last element is followed too when `follow_last`. It names things (the
    /// stat's link target, the mount a path is in); what is then read or written is resolved
    /// again inside its [`Root`], so a change meanwhile cannot lead outside.
    pub fn resolve(&self, path: &str, follow_last: bool) -> io::Result<PathBuf> {
        let mut todo: VecDeque<OsString> = VecDeque::new();
        push_components(&mut todo, Path::new(path), false);
        let mut cur = PathBuf::from("/");
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let next = cur.join(&c);
            if todo.is_empty() && !follow_last {
                cur = next;
                break;
            }
            let (root, rel) = self.locate(&next);
            match root.lstat(&rel) {
                Ok(Some(st)) if st.kind == FileKind::Symlink => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = root.read_link(&rel)?;
                    if target.is_absolute() {
                        cur = PathBuf::from("/");
                    }
                    push_components(&mut todo, &target, true);
                }
                _ => cur = next,
            }
        }
        Ok(cur)
    }
}

/// Queues the components of `p` (at the front when `front`), keeping `..` as an element.
fn push_components(todo: &mut VecDeque<OsString>, p: &Path, front: bool) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    if front {
        for c in parts.into_iter().rev() {
            todo.push_front(c);
        }
    } else {
        todo.extend(parts);
    }
}

/// Go's `os.FileMode` bits of a file (what the docker CLI reads from the stat header).
pub fn go_mode(kind: FileKind, perm: u32) -> u32 {
    let mut out = perm & 0o777;
    out |= match kind {
        FileKind::Dir => 1 << 31,
        FileKind::Symlink => 1 << 27,
        FileKind::Fifo => 1 << 25,
        FileKind::Socket => 1 << 24,
        FileKind::Block => 1 << 26,
        FileKind::Char => (1 << 26) | (1 << 21),
        FileKind::File => 0,
    };
    if perm & libc::S_ISUID != 0 {
        out |= 1 << 23;
    }
    if perm & libc::S_ISGID != 0 {
        out |= 1 << 22;
    }
    if perm & libc::S_ISVTX != 0 {
        out |= 1 << 20;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, tempfile::TempDir, Scope) {
        let root = tempfile::tempdir().expect("tempdir");
        let vol = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        std::fs::create_dir_all(r.join("etc")).expect("mkdir");
        std::fs::create_dir_all(r.join("data")).expect("mkdir");
        std::fs::write(r.join("etc/passwd"), "root").expect("write");
        symlink("/etc", r.join("abs")).expect("symlink");
        symlink("../../../../etc", r.join("data/climb")).expect("symlink");
        symlink("/vol/inner", r.join("tovol")).expect("symlink");
        symlink("loop", r.join("loop")).expect("symlink");
        std::fs::create_dir(vol.path().join("inner")).expect("mkdir");
        let s = Scope::new(
            Root::open(r).expect("root"),
            vec![MountRoot::open(PathBuf::from("/vol"), vol.path()).expect("mount")],
        );
        (root, vol, s)
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let (_r, vol, s) = tree();
        assert_eq!(
            s.resolve("/abs/passwd", false).ok(),
            Some("/etc/passwd".into())
        );
        assert_eq!(s.resolve("/abs", false).ok(), Some("/abs".into()));
        assert_eq!(s.resolve("/abs", true).ok(), Some("/etc".into()));
        // `..` stops at the container's root: no escape to the host.
        assert_eq!(s.resolve("/data/climb", true).ok(), Some("/etc".into()));
        assert_eq!(s.resolve("../../x", false).ok(), Some("/x".into()));
        let t = s.resolve("/tovol", true).expect("resolves");
        assert_eq!(t, PathBuf::from("/vol/inner"));
        let (root, rel) = s.locate(&t);
        assert_eq!(root.path(), vol.path());
        assert_eq!(rel, PathBuf::from("inner"));
        assert_eq!(s.mount_of(&t), Some(Path::new("/vol")));
        assert!(s.resolve("/loop/x", false).is_err(), "a symlink loop ends");
    }
}
