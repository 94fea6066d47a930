//! Atomic file and folder writes, leftover clean-up, and a size-limiting reader.

use crate::ImageError;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A fresh temp name in `dir` (`.tmp-<pid>-<random><suffix>`), cleaned at the next open.
pub fn temp_name(dir: &Path, suffix: &str) -> PathBuf {
    dir.join(format!(
        ".tmp-{}-{:08x}{suffix}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// fsyncs a folder so a rename inside it is durable (best effort).
pub fn sync_dir(dir: &Path) {
    let _ = berth_core::atomic::sync_dir(dir);
}

/// Writes `data` to `path` atomically and durably ([`berth_core::atomic::write_atomic`]),
/// creating its folder first.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(ImageError::io(format!("creating {}", dir.display())))?;
    berth_core::atomic::write_atomic(path, data)
        .map_err(ImageError::io(format!("writing {}", path.display())))
}

/// Writes small files into a temp folder next to `dest`, then renames the folder into place:
/// `dest` appears complete or not at all. An existing `dest` is left as it is.
pub fn write_dir_atomic(
    dest: &Path,
    files: &[(&str, &[u8])],
    moved: Option<(&Path, &str)>,
) -> Result<(), ImageError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = temp_name(parent, "");
    let res = (|| -> io::Result<()> {
        fs::create_dir_all(&tmp)?;
        for (name, data) in files {
            let mut f = File::create(tmp.join(name))?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        if let Some((src, name)) = moved {
            fs::rename(src, tmp.join(name))?;
        }
        sync_dir(&tmp);
        fs::rename(&tmp, dest)
    })();
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&tmp);
        return Err(ImageError::Io {
            context: format!("recording {}", dest.display()),
            source: e,
        });
    }
    sync_dir(parent);
    Ok(())
}

/// Removes temp files and folders left by interrupted writes in `dir`.
pub fn clean_temps(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with(".tmp-")
                || berth_core::atomic::is_temp_name(&name)
            {
                let p = e.path();
                if p.is_dir() {
                    let _ = fs::remove_dir_all(&p);
                } else {
                    let _ = fs::remove_file(&p);
                }
            }
        }
    }
}

/// Fails the stream once more than `limit` bytes came through (decompression bombs).
pub struct LimitReader<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> LimitReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, limit: u64) -> Self {
        LimitReader {
            inner,
            left: limit,
            limit,
        }
    }
}

/// The message of a stream that exceeded its limit (recognised by [`is_too_large`]).
fn too_large(limit: u64) -> io::Error {
    io::Error::other(format!(
        "layer is larger than the configured limit of {limit} bytes (max-layer-size; tar bomb?)"
    ))
}

impl<R: Read> Read for LimitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Allow a clean EOF exactly at the limit; anything more is refused.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(too_large(self.limit)),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_reader_refuses_overflow() {
        let mut ok = LimitReader::new(&[1u8; 10][..], 10);
        assert_eq!(io::copy(&mut ok, &mut io::sink()).expect("exact"), 10);
        let mut bad = LimitReader::new(&[1u8; 11][..], 10);
        let err = io::copy(&mut bad, &mut io::sink()).expect_err("too large");
        assert!(err.to_string().contains("configured limit"));
    }

    #[test]
    fn dir_appears_whole() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dest = tmp.path().join("x");
        write_dir_atomic(&dest, &[("a", b"1"), ("b", b"2")], None).expect("write");
        assert_eq!(fs::read(dest.join("b")).expect("b"), b"2");
        fs::create_dir(tmp.path().join(".tmp-9-1")).expect("mk");
        clean_temps(tmp.path());
        assert!(!tmp.path().join(".tmp-9-1").exists());
    }
}
