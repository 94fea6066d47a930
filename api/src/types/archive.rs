//! `docker cp` wire pieces shared by the CLI and the daemon: the JSON carried (base64) in the
//! `X-Docker-Container-Path-Stat` header, Go's `os.FileMode` type bits, and Go's path-name
//! rules as the archive endpoints apply them (a trailing `/.` names a folder's contents).

use serde::{Deserialize, Serialize};

/// The response header holding the base64 (standard alphabet) JSON [`PathStat`].
pub const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";
/// `os.ModeDir`.
pub const MODE_DIR: u32 = 1 << 31;
/// `os.ModeSymlink`.
pub const MODE_SYMLINK: u32 = 1 << 27;

/// Docker's `ContainerPathStat`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    /// Base name of the path as asked.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go `os.FileMode`: permission bits plus type bits.
    pub mode: u32,
    /// Modification time, RFC 3339.
    pub mtime: String,
    /// For a symlink, its target fully resolved inside the container.
    #[serde(rename = "linkTarget", default)]
    pub link_target: String,
}

impl PathStat {
    /// Whether it is a folder.
    pub fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }
    /// Whether it is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & MODE_SYMLINK != 0
    }
}

/// Go's `filepath.Base`, keeping a trailing `.` (`/a/b/` → `b`, `/a/b/.` → `.`, `/` → `/`).
pub fn base(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// The folder part of a path (`/a/b` → `/a`, `/a` → `/`, `b` → `.`).
pub fn dir(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((d, _)) => d.to_string(),
        None => ".".into(),
    }
}

/// Whether the path insists on a folder: a trailing `/` or `/.` (moby's `assertsDirectory`).
pub fn asserts_dir(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_names() {
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("a/."), ".");
        assert_eq!(base("/"), "/");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("/a"), "/");
        assert_eq!(dir("b"), ".");
        assert!(asserts_dir("/a/.") && asserts_dir("/a/") && !asserts_dir("/a"));
    }
}
