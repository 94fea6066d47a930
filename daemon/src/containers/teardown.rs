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
//! the same lock: a restart holds it from its stop to its start).
//!
//! A removed container's rootfs is let go, and its rw layer and folders deleted, in the
//! background too ([`purge`], a few at once), after it has left the store: `docker rm` (and
//! AutoRemove) answer once the container is gone for every client, not once its files are.
//! The rootfs's flush is wasted work then, but the kernel does it at the overlay's last
//! unmount whatever berth asks (only a `volatile` overlay skips it, and that would also make
//! `fsync` inside every container a no-op). If berthd dies before the purge, the next
//! start finishes it: `docker rm` first renames the record folder to a tombstone
//! ([`bury`], purged by [`purge_buried`]), and an AutoRemove container, still recorded,
//! is removed by `exit::restore`, as dockerd does.

use super::Container;
use crate::state::Ctx;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
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

/// [`detach`] on a blocking thread: the unmount waits for an RCU grace period, which on one of
/// the runtime's two workers would hold up every other task behind it (with many containers
/// exiting at once, `rm -f` of many, their detaches would wait one behind the other).
pub async fn detach_blocking(root: PathBuf) -> Detached {
    tokio::task::spawn_blocking(move || detach(&root))
        .await
        .unwrap_or(Detached(None))
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

/// Removals whose disk work (the overlay's last unmount, which flushes the data root's disk,
/// and the `rm -rf` of the rw layer and folders) runs at once: a thousand `rm -f` at once
/// must not become a thousand threads flushing and deleting on the same disk.
static PURGES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);

/// The prefix of a removed container's record folder, renamed out of the store
/// ([`bury`]) until [`purge`] has deleted it.
const TOMBSTONE: &str = ".removed-";

/// Takes a removed container's record folder out of the store by renaming it to a
/// tombstone in the same folder (one rename, no flush: a berthd crash after it never
/// brings the container back; start-up purges the tombstone, [`purge_buried`]). The path
/// the folder now has.
pub fn bury(ctx: &Ctx, id: &str) -> std::io::Result<PathBuf> {
    let dir = ctx.containers.dir(id);
    let tomb = ctx.containers.root.join(format!("{TOMBSTONE}{id}"));
    match std::fs::rename(&dir, &tomb) {
        Ok(()) => Ok(tomb),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(dir),
        Err(e) => Err(e),
    }
}

/// The detached rootfs of `c`'s last run, if it is still held (the caller holds the op lock).
pub fn take_detached(c: &Container) -> Detached {
    c.detached
        .lock()
        .ok()
        .and_then(|mut s| s.take())
        .unwrap_or(Detached(None))
}

/// Removes what is left of a container already gone from the store, in the background once
/// its monitor is gone: the detached rootfs (its flush), the rootfs mount if one is left,
/// its rw layer, its state folder and its record folder `record` (the store's folder, or
/// its tombstone). `docker rm` and `wait?condition=removed` do not wait for it.
pub fn purge(ctx: &Ctx, c: &Arc<Container>, d: Detached, record: PathBuf) {
    let (storage, id, c) = (ctx.storage.clone(), c.id.clone(), c.clone());
    let state = ctx.containers.state_dir(&id);
    tokio::spawn(async move {
        c.monitor_gone().await;
        let _permit = PURGES.acquire().await;
        let _ = tokio::task::spawn_blocking(move || {
            drop(d);
            let _ = berth_core::mount::unmount(&state.join("bundle").join("rootfs"));
            if let Err(e) = storage.remove(&id) {
                tracing::warn!("removing the rw layer of {id}: {e}");
            }
            for dir in [state, record] {
                let _ = std::fs::remove_dir_all(dir);
            }
        })
        .await;
    });
}

/// At start-up: deletes what containers removed before a berthd crash left (their
/// tombstones, rw layers and state folders). In the background; no id is ever reused.
pub fn purge_buried(ctx: &Ctx) {
    let Ok(entries) = std::fs::read_dir(&ctx.containers.root) else {
        return;
    };
    let buried: Vec<(String, PathBuf, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_prefix(TOMBSTONE)?.to_string();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let state = ctx.containers.state_dir(&id);
            Some((id, e.path(), state))
        })
        .collect();
    if buried.is_empty() {
        return;
    }
    let storage = ctx.storage.clone();
    tokio::task::spawn_blocking(move || {
        for (id, tomb, state) in buried {
            tracing::info!("purging container {id}, removed before berthd stopped");
            let _ = berth_core::mount::unmount(&state.join("bundle").join("rootfs"));
            let _ = storage.remove(&id);
            let _ = std::fs::remove_dir_all(state);
            let _ = std::fs::remove_dir_all(tomb);
        }
    });
}
