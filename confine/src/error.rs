//! Why an operation inside a [`crate::Root`] failed.

use std::io;
use std::path::{Path, PathBuf};

/// Why an operation inside a root failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// A system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A file to read whole is larger than its limit.
    #[error("{path}: larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    /// A file that must be a regular file is not (a device, a fifo, a folder...).
    #[error("{path}: not a regular file")]
    NotRegular { path: PathBuf },
    /// A path that must name a folder does not.
    #[error("{path}: not a directory")]
    NotADirectory { path: PathBuf },
    /// A path that must end in a name (to create or remove) does not (`/`, `..`).
    #[error("{path}: not a valid path for this operation")]
    InvalidPath { path: PathBuf },
}

impl ConfineError {
    pub(crate) fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> ConfineError {
        ConfineError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The OS error behind it, if any (`ENOENT` for a missing file...).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            ConfineError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether it says that the path does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ConfineError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

impl From<ConfineError> for io::Error {
    fn from(e: ConfineError) -> io::Error {
        let kind = match &e {
            ConfineError::Io { source, .. } => source.kind(),
            ConfineError::TooLarge { .. } => io::ErrorKind::InvalidData,
            ConfineError::NotRegular { .. } => io::ErrorKind::InvalidInput,
            ConfineError::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            ConfineError::InvalidPath { .. } => io::ErrorKind::InvalidInput,
        };
        let raw = e.raw_os_error();
        match raw {
            // Keep the errno for callers that map it (EEXIST, ENOENT...), with the context.
            Some(n) => io::Error::new(io::Error::from_raw_os_error(n).kind(), e.to_string()),
            None => io::Error::new(kind, e.to_string()),
        }
    }
}
