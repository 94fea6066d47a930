//! Paths inside a container, resolved as if chrooted into it (`docker cp`): symlinks are
//! followed component by component within the container's root — an absolute target
//! restarts at the container's `/`, `..` never climbs above it — and a container path under a
//! mount (volume, bind mount, /etc/hosts...) maps to the mount's source on the host.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed at most while resolving one path (Linux's own limit is 40).
const MAX_LINKS: u32 = 255;

/// A container's file system as seen from the host.
#[derive(Debug, Clone)]
pub struct Scope {
    root: PathBuf,
    /// (container destination, host source), longest destination first.
    mounts: Vec<(PathBuf, PathBuf)>,
}

impl Scope {
    /// A scope rooted at host folder `root` with `mounts` (destination, source) over it.
    pub fn new(root: PathBuf, mut mounts: Vec<(PathBuf, PathBuf)>) -> Scope {
        mounts.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
        Scope { root, mounts }
    }

    /// The host path backing `cpath`, an absolute container path free of symlinks.
    pub fn host(&self, cpath: &Path) -> PathBuf {
        for (dest, src) in &self.mounts {
            if let Ok(rest) = cpath.strip_prefix(dest) {
                return src.join(rest);
            }
        }
        self.root.join(cpath.strip_prefix("/").unwrap_or(cpath))
    }

    /// The destination of the mount holding `cpath`, if any.
    pub fn mount_of(&self, cpath: &Path) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|(d, _)| cpath.starts_with(d))
            .map(|(d, _)| d.as_path())
    }

    /// Resolves `path` (taken as absolute in the container) into a symlink-free container
    /// path; the last element is followed too when `follow_last`.
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
            let host = self.host(&next);
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = std::fs::read_link(&host)?;
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
pub fn go_mode(m: &std::fs::Metadata) -> u32 {
    let mode = m.mode();
    let mut out = mode & 0o777;
    out |= match mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    };
    if mode & libc::S_ISUID != 0 {
        out |= 1 << 23;
    }
    if mode & libc::S_ISGID != 0 {
        out |= 1 << 22;
    }
    if mode & libc::S_ISVTX != 0 {
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
            r.to_path_buf(),
            vec![(PathBuf::from("/vol"), vol.path().to_path_buf())],
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
        assert_eq!(s.host(&t), vol.path().join("inner"));
        assert_eq!(s.mount_of(&t), Some(Path::new("/vol")));
        assert!(s.resolve("/loop/x", false).is_err(), "a symlink loop ends");
    }
}
