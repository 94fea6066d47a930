//! Start-up migration of the data root to the current format ([`super::format`]): run after
//! the data-root lock is taken and before any store opens.
//!
//! From format 1 (no format file: the records berthd built by hand before the typed model)
//! each container, network and volume record is parsed as its typed record — missing fields
//! take their defaults, `null`s where a value belongs are read as missing, unknown fields of
//! the open-ended objects are kept — and rewritten atomically and durably in place; only once
//! every record is rewritten is the new version written, so a crash half-way just runs the
//! (idempotent) conversion again. A record that does not parse even so is left untouched with
//! a warning (the stores skip it as before: nothing is deleted). A data root in a format newer
//! than this berthd knows is refused.

use super::container::ContainerRecord;
use super::format::{self, FormatError, CURRENT, UNVERSIONED};
use super::network::NetworkRecord;
use super::volume::VolumeRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why the migration stopped (the daemon does not start).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("migrating {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The format found.
    pub from: u32,
    /// Records rewritten.
    pub converted: usize,
    /// Records left as they were (unparseable).
    pub skipped: usize,
}

/// Brings `data_root` to [`CURRENT`].
pub fn run(data_root: &Path) -> Result<Outcome, MigrateError> {
    let from = format::read(data_root)?;
    let mut out = Outcome {
        from,
        ..Outcome::default()
    };
    if from == CURRENT {
        return Ok(out);
    }
    if from == UNVERSIONED {
        for dir in subdirs(&data_root.join("containers"))? {
            let id = file_name(&dir);
            let fix = |r: &mut ContainerRecord| {
                if r.inspect.id.is_empty() {
                    r.inspect.id = id.clone();
                }
            };
            convert(&dir.join("config.v2.json"), fix, false, &mut out)?;
        }
        for path in files(&data_root.join("network").join("networks"), "json")? {
            let id = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let fix = |r: &mut NetworkRecord| {
                if r.resource.id.is_empty() {
                    r.resource.id = id.clone();
                }
            };
            convert(&path, fix, true, &mut out)?;
        }
        for dir in subdirs(&data_root.join("volumes"))? {
            let name = file_name(&dir);
            let fix = |r: &mut VolumeRecord| {
                if r.name.is_empty() {
                    r.name = name.clone();
                }
            };
            convert(&dir.join("volume.json"), fix, false, &mut out)?;
        }
    }
    format::write(data_root, CURRENT)?;
    if out.converted + out.skipped > 0 {
        tracing::info!(
            "data root migrated from format {from} to {CURRENT}: {} records rewritten, {} left as they were",
            out.converted,
            out.skipped
        );
    }
    Ok(out)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MigrateError + '_ {
    move |source| MigrateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The folders in `dir` (none if it does not exist), skipping atomic-write temp names.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, MigrateError> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok_and(|m| m.is_dir()))
        .collect())
}

/// The regular `*.ext` files in `dir` (none if it does not exist).
fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, MigrateError> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .filter(|p| p.symlink_metadata().is_ok_and(|m| m.is_file()))
        .collect())
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>, MigrateError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(io_err(dir))?;
        if !berth_core::atomic::is_temp_name(&e.file_name()) {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Rewrites the record at `path` (if there is one) as its typed form `T`.
fn convert<T: DeserializeOwned + Serialize>(
    path: &Path,
    fix: impl FnOnce(&mut T),
    pretty: bool,
    out: &mut Outcome,
) -> Result<(), MigrateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut rec: T = match parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                "migration: {} does not parse as a record ({e}); left as it was",
                path.display()
            );
            out.skipped += 1;
            return Ok(());
        }
    };
    fix(&mut rec);
    let data = if pretty {
        serde_json::to_vec_pretty(&rec)
    } else {
        serde_json::to_vec(&rec)
    }
    .map_err(|e| io_err(path)(std::io::Error::other(e)))?;
    berth_core::atomic::write_atomic(path, &data).map_err(io_err(path))?;
    out.converted += 1;
    Ok(())
}

/// Parses `bytes` as `T`; failing that, once more with every `null` member dropped (format 1
/// wrote `null` where the typed record has a plain value, which then takes its default).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match serde_json::from_slice(bytes) {
        Ok(t) => Ok(t),
        Err(first) => {
            let mut v: Value = serde_json::from_slice(bytes)?;
            crate::jsonv::drop_nulls(&mut v);
            serde_json::from_value(v).map_err(|_| first)
        }
    }
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
