//! Copying a directory tree with its owners, modes, times and symlinks (for seeding volumes
//! from the image), and resolving a container path inside a root without escaping it.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Resolves `path` (absolute, as seen in the container) under `root`, following symlinks as
/// the container would, never leaving `root`. None when a component does not exist.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    let mut todo: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            if out != root {
                out.pop();
            }
            continue;
        }
        let next = out.join(&part);
        let md = std::fs::symlink_metadata(&next).ok()?;
        if md.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&next).ok()?;
            if target.is_absolute() {
                out = root.to_path_buf();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => todo.push(n.to_string_lossy().into_owned()),
                    Component::ParentDir => todo.push("..".into()),
                    _ => {}
                }
            }
            continue;
        }
        out = next;
    }
    Some(out)
}

fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
}

fn copy_meta(src: &std::fs::Metadata, dst: &Path) -> io::Result<()> {
    lchown(dst, src.uid(), src.gid())?;
    if !src.file_type().is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(src.mode() & 0o7777))?;
    }
    Ok(())
}

/// Copies the contents of directory `src` into existing directory `dst`, and gives `dst`
/// the owner and mode of `src`.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let md = std::fs::symlink_metadata(&from)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            copy_meta(&md, &to)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
            copy_meta(&md, &to)?;
        }
        // Devices, fifos and sockets in a volume path are skipped.
    }
    let md = std::fs::symlink_metadata(src)?;
    copy_meta(&md, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-vol-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("test setup");
        d
    }

    #[test]
    fn resolves_without_escaping() {
        let d = tempdir("resolve");
        let root = d.as_path();
        std::fs::create_dir_all(root.join("a/b")).expect("test setup");
        std::os::unix::fs::symlink("/a", root.join("link")).expect("test setup");
        std::os::unix::fs::symlink("../../../..", root.join("a/up")).expect("test setup");
        assert_eq!(resolve_in_root(root, "/link/b"), Some(root.join("a/b")));
        assert_eq!(resolve_in_root(root, "/a/up/a"), Some(root.join("a")));
        assert_eq!(resolve_in_root(root, "/../../a"), Some(root.join("a")));
        assert_eq!(resolve_in_root(root, "/missing"), None);
        std::fs::remove_dir_all(&d).expect("test setup");
    }

    #[test]
    fn copies_tree_with_links() {
        let d = tempdir("copy");
        let src = d.join("src");
        std::fs::create_dir_all(src.join("sub")).expect("test setup");
        std::fs::write(src.join("sub/f"), b"x").expect("test setup");
        std::os::unix::fs::symlink("sub/f", src.join("l")).expect("test setup");
        let dst = d.join("dst");
        std::fs::create_dir(&dst).expect("test setup");
        copy_tree(&src, &dst).expect("test setup");
        assert_eq!(std::fs::read(dst.join("sub/f")).expect("test setup"), b"x");
        assert_eq!(
            std::fs::read_link(dst.join("l")).expect("test setup"),
            PathBuf::from("sub/f")
        );
        std::fs::remove_dir_all(&d).expect("test setup");
    }
}
