//! Atomic file replacement: the one way berth's stores and drivers write a file that readers
//! (or a daemon restarted after a crash) must see whole or not at all.
//!
//! The recipe: a temp file with a unique name in the target's own folder
//! (`.<name>.tmp-<pid>-<counter>`, created exclusively), the bytes, an fsync of the file, a
//! rename over the target, an fsync of the folder so the rename itself survives a power
//! loss. On any error the temp file is removed. [`Flush`] names the two documented
//! exceptions that skip the fsyncs for speed (a record flushed later by a background thread;
//! run-time files on a tmpfs), and the case of a file inside a temp folder that is synced and
//! renamed as a whole.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How much of the write is made durable before the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// fsync the file, rename, fsync the folder: the new content survives a power loss.
    Full,
    /// fsync the file but not the folder: for files inside a temp folder that the caller
    /// syncs ([`sync_dir`]) and renames into place whole.
    File,
    /// No fsync at all, only the rename: for hot paths whose files are flushed later by the
    /// caller (the daemon's container records) or live on a tmpfs (the monitor's run-time
    /// files). Readers and a crashed process still see the old or the new file, never a mix.
    None,
}

/// Bytes of the target's name kept in the temp name (file names are limited to 255 bytes).
const NAME_KEEP: usize = 200;

/// The marker between the target's name and the pid/counter in a temp name.
const MARKER: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temp path next to `path`: `.<name>.tmp-<pid>-<counter>` in the same folder, so the
/// final rename never crosses a file system. Unique within this process; the pid keeps it
/// unique between processes, and [`write_atomic_with`] creates it exclusively anyway.
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = parent_of(path);
    let name = path.file_name().map(OsStr::as_bytes).unwrap_or(b"file");
    let keep = &name[..name.len().min(NAME_KEEP)];
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut t = Vec::with_capacity(keep.len() + 32);
    t.push(b'.');
    t.extend_from_slice(keep);
    t.extend_from_slice(format!("{MARKER}{}-{n}", std::process::id()).as_bytes());
    dir.join(OsStr::from_bytes(&t))
}

/// Whether `name` (a file name, not a path) is a temp name made by [`temp_path`]: leftovers of
/// a process killed mid-write, which a store may delete when it opens.
pub fn is_temp_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    if b.first() != Some(&b'.') {
        return false;
    }
    let Some(at) = b
        .windows(MARKER.len())
        .rposition(|w| w == MARKER.as_bytes())
    else {
        return false;
    };
    let tail = &b[at + MARKER.len()..];
    let mut parts = tail.split(|&c| c == b'-');
    let digits =
        |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// Removes the leftover temp files ([`is_temp_name`]) directly inside `dir`; returns how many.
pub fn clean_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| is_temp_name(&e.file_name()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// fsyncs a folder, making the creations, renames and removals inside it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `data` atomically and durably ([`Flush::Full`]).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_with(path, Flush::Full, |f| f.write_all(data))
}

/// Replaces `path` with `data` atomically, without any fsync ([`Flush::None`]).
pub fn write_atomic_unflushed(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_with(path, Flush::None, |f| f.write_all(data))
}

/// Replaces `path` with the compact JSON of `value`, atomically and durably.
pub fn write_json_atomic<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Replaces `path` with what `fill` writes into the (new, empty, mode 0666 less the umask)
/// temp file, made durable as `flush` says. The temp file is gone when this returns, whether
/// it succeeded or not.
pub fn write_atomic_with(
    path: &Path,
    flush: Flush,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let (tmp, mut f) = create_temp(path)?;
    let res = fill(&mut f)
        .and_then(|()| match flush {
            Flush::Full | Flush::File => f.sync_all(),
            Flush::None => Ok(()),
        })
        .and_then(|()| {
            drop(f);
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if flush == Flush::Full {
        sync_dir(parent_of(path))?;
    }
    Ok(())
}

/// Creates a fresh temp file for `path`, retrying on the (rare) name taken by a leftover.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let mut tries = 0;
    loop {
        let tmp = temp_path(path);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The folder holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
#[path = "atomic_tests.rs"]
mod tests;
