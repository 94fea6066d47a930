//! The data root's on-disk format version, `<data-root>/berth-format.json` (`{"version":2}`,
//! written with `berth_core::atomic`). A data root without the file was written before the
//! typed records (format 1); [`crate::model::migrate`] brings it up to [`CURRENT`].
//!
//! Versions: 1 — records as berthd built them by hand (fields missing or `null` at will);
//! 2 — every container, network and volume record is the serialisation of its typed record
//! (`crate::model`).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file's name inside the data root.
pub const FILE: &str = "berth-format.json";

/// The format this berthd writes.
pub const CURRENT: u32 = 2;

/// The format of a data root without [`FILE`].
pub const UNVERSIONED: u32 = 1;

/// The file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct FormatFile {
    version: u32,
}

/// Why the data root's format cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("reading {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a berth format file ({reason}); refusing to guess the data root's format"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("the data root {root} is in format {found}, written by a newer berthd; this berthd knows formats up to {known}: run a newer berthd or use another --data-root")]
    TooNew {
        root: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The format of the data root (`UNVERSIONED` when it has no format file).
pub fn read(data_root: &Path) -> Result<u32, FormatError> {
    let path = data_root.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UNVERSIONED),
        Err(source) => return Err(FormatError::Unreadable { path, source }),
    };
    if bytes.len() > 4096 {
        return Err(FormatError::Corrupt {
            path,
            reason: format!("{} bytes", bytes.len()),
        });
    }
    let f: FormatFile = serde_json::from_slice(&bytes).map_err(|e| FormatError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if f.version > CURRENT {
        return Err(FormatError::TooNew {
            root: data_root.to_path_buf(),
            found: f.version,
            known: CURRENT,
        });
    }
    Ok(f.version)
}

/// Records that the data root is in format `version` (atomically and durably).
pub fn write(data_root: &Path, version: u32) -> Result<(), FormatError> {
    let path = data_root.join(FILE);
    berth_core::atomic::write_json_atomic(&path, &FormatFile { version })
        .map_err(|source| FormatError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_format_1_and_written_reads_back() {
        let d = tempfile::tempdir().expect("t");
        assert_eq!(read(d.path()).expect("t"), UNVERSIONED);
        write(d.path(), CURRENT).expect("t");
        assert_eq!(read(d.path()).expect("t"), CURRENT);
        let text = std::fs::read_to_string(d.path().join(FILE)).expect("t");
        assert_eq!(text, r#"{"version":2}"#);
    }

    #[test]
    fn newer_or_garbage_is_refused() {
        let d = tempfile::tempdir().expect("t");
        std::fs::write(d.path().join(FILE), r#"{"version":99}"#).expect("t");
        let e = read(d.path()).expect_err("too new");
        assert!(matches!(e, FormatError::TooNew { found: 99, .. }), "{e}");
        assert!(e.to_string().contains("newer berthd"), "{e}");
        std::fs::write(d.path().join(FILE), "nope").expect("t");
        assert!(matches!(read(d.path()), Err(FormatError::Corrupt { .. })));
    }
}
