//! One daemon per data root (an flock on `<data-root>/berthd.lock`), and the daemon's
//! persistent ID.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Holds the lock while alive.
pub struct Lock(#[allow(dead_code)] File);

/// Takes the data-root lock or fails with one line naming the holder.
pub fn acquire(data_root: &Path) -> Result<Lock> {
    let path = data_root.join("berthd.lock");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(held(&mut f, data_root));
    }
    f.set_len(0)?;
    f.rewind()?;
    write!(f, "{}", std::process::id())?;
    Ok(Lock(f))
}

/// Fails if another berthd holds the lock of `data_root`, without creating anything (used
/// before the plugins are loaded, when nothing may be written yet).
pub fn check_free(data_root: &Path) -> Result<()> {
    let path = data_root.join("berthd.lock");
    let Ok(mut f) = File::open(&path) else {
        return Ok(());
    };
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc != 0 {
        return Err(held(&mut f, data_root));
    }
    Ok(())
}

/// The daemon's ID, created once and kept in the data root.
pub fn daemon_id(data_root: &Path) -> Result<String> {
    let path = data_root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if !s.trim().is_empty() {
            return Ok(s.trim().to_string());
        }
    }
    let id: String = (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    berth_core::atomic::write_atomic(&path, id.as_bytes())?;
    Ok(id)
}

/// The error for a data root whose lock another berthd holds, naming its pid.
fn held(f: &mut File, data_root: &Path) -> anyhow::Error {
    let mut holder = String::new();
    let _ = f.read_to_string(&mut holder);
    anyhow::anyhow!(
        "another berthd is running on data root {} (pid {})",
        data_root.display(),
        holder.trim()
    )
}
