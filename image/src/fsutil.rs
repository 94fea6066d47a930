//! Atomic file writes and small file helpers.

use crate::ImageError;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` atomically: temp file in the same folder, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(ImageError::io(format!("creating {}", dir.display())))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut f =
        File::create(&tmp).map_err(ImageError::io(format!("creating {}", tmp.display())))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(ImageError::io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(ImageError::io(format!("renaming to {}", path.display())))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes temp files left by interrupted writes in `dir`.
pub fn clean_temps(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}
