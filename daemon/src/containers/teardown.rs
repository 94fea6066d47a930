//! Taking a stopped container's filesystem down without making its waiters pay for it.
//!
//! The last unmount of an overlay flushes the upper filesystem (`syncfs` of the disk holding
//! the data root): tens of milliseconds on a busy disk, and the rw layer's `rm -rf` costs a
//! journal operation per entry. Neither has to happen before `docker run`/`wait` hear of the
//! exit, nor before an AutoRemove container is gone from the store. So the rootfs is
//! *detached* at once (`umount2(MNT_DETACH)` while an `O_PATH` descriptor into it keeps the
//! superblock alive, so the detach itself does no I/O), and the descriptor is closed — which
//! is when the kernel flushes and frees the overlay — on the blocking pool afterwards.
//!
//! A later start of the same container mounts a new overlay on the same upper and work
//! folders; it must not race the old one's flush, so the detached rootfs waits in the
//! container ([`Container::detached`]) and is let go either by a background task under the
//! container's `op` lock or, first, by the next start or removal ([`flush_detached`], under
//! the same lock: a restart holds it from its stop to its start). An AutoRemove container's rw layer and folders are removed
//! in the same background step; if berthd dies before that, `exit::restore` removes the
//! (still recorded, stopped) AutoRemove container at the next start, as dockerd does.

use super::Container;
use crate::state::Ctx;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

/// A detached rootfs whose superblock is still referenced (see the module doc).
pub struct Detached(Option<OwnedFd>);

/// Detaches the rootfs mounted at `root` (if any) from berthd's mount namespace, keeping the
/// overlay alive through an `O_PATH` descriptor until the returned value is [`finish`]ed.
pub fn detach(root: &Path) -> Detached {
    let Ok(path) = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()) else {
        return Detached(None);
    };
    // SAFETY: open(2) with a valid NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    // SAFETY: a descriptor open(2) just returned, owned from here on.
    let fd = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
    // Asking the kernel is cheaper than reading the mount table first: when nothing is mounted
    // there the unmount fails, and the descriptor (of a plain folder) goes at once.
    // SAFETY: umount2(2) with a valid NUL-terminated path.
    match unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } {
        0 => Detached(fd),
        _ => Detached(None),
    }
}

/// Closes the last reference to the detached rootfs (the flush happens here) in the
/// background under the container's `op` lock, unless the next start or removal of `c` does
/// it first ([`flush_detached`]).
pub fn finish(c: &Arc<Container>, d: Detached) {
    if d.0.is_none() {
        return;
    }
    let older = match c.detached.lock() {
        Ok(mut slot) => slot.replace(d),
        Err(_) => return,
    };
    let c = c.clone();
    tokio::spawn(async move {
        let _op = c.op.lock().await;
        if let Some(o) = older {
            let _ = tokio::task::spawn_blocking(move || drop(o)).await;
        }
        flush_detached(&c).await;
    });
}

/// Lets go of the rootfs of `c`'s last run if it is still detached (the caller holds the op
/// lock): a new mount of the same layer comes after the old one's flush.
pub async fn flush_detached(c: &Container) {
    let d = c.detached.lock().ok().and_then(|mut s| s.take());
    if let Some(d) = d {
        let _ = tokio::task::spawn_blocking(move || drop(d)).await;
    }
}

/// Removes what is left of a container already gone from the store: the detached rootfs, its
/// rw layer, its state and record folders — once its monitor is gone. Runs in the background.
pub fn purge(ctx: &Ctx, c: &Arc<Container>, d: Detached) {
    let (storage, id, c) = (ctx.storage.clone(), c.id.clone(), c.clone());
    let dirs = [ctx.containers.state_dir(&id), ctx.containers.dir(&id)];
    tokio::spawn(async move {
        c.monitor_gone().await;
        let _ = tokio::task::spawn_blocking(move || {
            drop(d);
            if let Err(e) = storage.remove(&id) {
                tracing::warn!("removing the rw layer of {id}: {e}");
            }
            for dir in dirs {
                let _ = std::fs::remove_dir_all(dir);
            }
        })
        .await;
    });
}
