//! The path a file would have inside a root once its symlinks are followed there, as a
//! path rather than a descriptor: what Docker's builder calls `FollowSymlinkInScope`. Used
//! where berth has to *name* the place (a `COPY` destination staged into a new layer) rather
//! than act on it. Dangling symlinks are followed too (their target need not exist), `..`
//! stops at the root, and every step reads the tree through the root's descriptors.

use crate::{ConfineError, FileKind, Root};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// How many symlinks one scoped resolution may follow (Docker's builder allows 255).
const MAX_HOPS: usize = 255;

fn parts(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

impl Root {
    /// `rel` with every symlink on it (the last component included) replaced by its target
    /// inside the root, `..` clamped at the root: a relative path without `..` or symlinks
    /// in the folders that exist. Returns it with the kind of what it names (`None` when it
    /// does not exist).
    pub fn scoped_path(
        &self,
        rel: impl AsRef<Path>,
    ) -> Result<(PathBuf, Option<FileKind>), ConfineError> {
        let rel = rel.as_ref();
        let mut todo: VecDeque<OsString> = parts(rel).into();
        let mut cur = PathBuf::new();
        let mut hops = 0;
        // Once a component is missing (or is not a folder), the rest is taken as written.
        let mut lexical = false;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let next = cur.join(&c);
            if lexical {
                cur = next;
                continue;
            }
            match self.lstat(&next)? {
                Some(st) if st.kind == FileKind::Symlink => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(ConfineError::io(
                            "resolving",
                            self.display(rel),
                            std::io::Error::from_raw_os_error(libc::ELOOP),
                        ));
                    }
                    let target = self.read_link(&next)?;
                    if target.has_root() {
                        cur = PathBuf::new();
                    }
                    for p in parts(&target).into_iter().rev() {
                        todo.push_front(p);
                    }
                }
                Some(st) => {
                    lexical = st.kind != FileKind::Dir;
                    cur = next;
                }
                None => {
                    lexical = true;
                    cur = next;
                }
            }
        }
        if lexical {
            return Ok((cur.clone(), self.lstat(&cur).ok().flatten().map(|s| s.kind)));
        }
        let kind = self.lstat(&cur)?.map(|s| s.kind);
        Ok((cur, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn follows_links_inside_the_root() {
        let t = tempfile::tempdir().expect("tmp");
        let r = t.path();
        std::fs::create_dir_all(r.join("real/sub")).expect("mkdir");
        symlink("/real", r.join("abs")).expect("ln");
        symlink("../../../../real", r.join("climb")).expect("ln");
        symlink("/nowhere/x", r.join("dangling")).expect("ln");
        symlink("loop", r.join("loop")).expect("ln");
        let root = Root::open(r).expect("root");
        let (p, k) = root.scoped_path("/abs/sub").expect("abs");
        assert_eq!((p, k), (PathBuf::from("real/sub"), Some(FileKind::Dir)));
        let (p, k) = root.scoped_path("climb/sub/new/x").expect("climb");
        assert_eq!((p, k), (PathBuf::from("real/sub/new/x"), None));
        let (p, k) = root.scoped_path("climb/sub/new/..").expect("climb up");
        assert_eq!((p, k), (PathBuf::from("real/sub"), Some(FileKind::Dir)));
        let (p, k) = root.scoped_path("/dangling/f").expect("dangling");
        assert_eq!((p, k), (PathBuf::from("nowhere/x/f"), None));
        let (p, _) = root.scoped_path("../../etc").expect("dotdot");
        assert_eq!(p, PathBuf::from("etc"));
        assert!(root.scoped_path("loop").is_err());
    }
}
