//! Whether a plugin library may be opened at all: before anything is `dlopen`ed, the library
//! (and, for a symbolic link, the file it resolves to) and the folder it is in must be owned
//! by root and writable by no one else; a search folder the same. Anyone who could write
//! there could make berthd run their code as root.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a path is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distrust {
    /// Owned by another user than root.
    NotRoot {
        /// The path checked.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// Writable by its group or by everyone.
    Writable {
        /// The path checked.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// "its group" or "everyone".
        by: &'static str,
    },
    /// Not a regular file (a library) or not a folder (a search folder).
    WrongType {
        /// The path checked.
        path: PathBuf,
        /// What was expected.
        expected: &'static str,
    },
    /// Its metadata could not be read (or a link could not be resolved).
    Unreadable {
        /// The path checked.
        path: PathBuf,
        /// The error.
        reason: String,
    },
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distrust::NotRoot { path, uid } => {
                write!(f, "{} is owned by uid {uid}, not root", path.display())
            }
            Distrust::Writable { path, mode, by } => write!(
                f,
                "{} is writable by {by} (mode {:04o})",
                path.display(),
                mode & 0o7777
            ),
            Distrust::WrongType { path, expected } => {
                write!(f, "{} is not {expected}", path.display())
            }
            Distrust::Unreadable { path, reason } => {
                write!(f, "{} cannot be checked: {reason}", path.display())
            }
        }
    }
}

/// Checks the owner and mode of one existing path (following links).
fn owned_by_root(path: &Path, dir: bool) -> Result<(), Distrust> {
    let meta = std::fs::metadata(path).map_err(|e| Distrust::Unreadable {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let (ok_type, expected) = match dir {
        true => (meta.is_dir(), "a folder"),
        false => (meta.is_file(), "a regular file"),
    };
    if !ok_type {
        return Err(Distrust::WrongType {
            path: path.into(),
            expected,
        });
    }
    if meta.uid() != 0 {
        return Err(Distrust::NotRoot {
            path: path.into(),
            uid: meta.uid(),
        });
    }
    let mode = meta.mode();
    let by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (_, true) => Some("everyone"),
        (true, false) => Some("its group"),
        _ => None,
    };
    match by {
        Some(by) => Err(Distrust::Writable {
            path: path.into(),
            mode,
            by,
        }),
        None => Ok(()),
    }
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks a search folder (which must exist).
pub(crate) fn folder(dir: &Path) -> Result<(), Distrust> {
    owned_by_root(dir, true)
}

/// Checks library `path` (which must exist) and its folder, and for a link also the file it
/// resolves to and that file's folder. Returns the resolved path, which is what gets opened.
pub(crate) fn library(path: &Path) -> Result<PathBuf, Distrust> {
    owned_by_root(&folder_of(path), true)?;
    let real = std::fs::canonicalize(path).map_err(|e| Distrust::Unreadable {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if real != path {
        owned_by_root(&folder_of(&real), true)?;
    }
    owned_by_root(&real, false)?;
    Ok(real)
}
