//! Creating the container from a copy of berthd's template mount namespace (PROTOCOL.md
//! "Files", `mount_ns`), which holds no other container's rootfs — so the runtime's
//! `CLONE_NEWNS` copies a few mounts however many containers run.
//!
//! The copy is made by a thread of its own, which creates the container and ends: the
//! monitor itself stays in berthd's namespace (where berthd's rootfs mount is), and the copy,
//! with the clone of that mount attached in it, goes when the thread ends — off the container's
//! start and exit, so a container still has one mount namespace to take down when it ends.

use berth_core::mountns;
use std::fs::File;
use std::path::Path;

/// Runs `create` on a thread in a copy of the template namespace at `template` (a path such
/// as `/proc/<berthd>/fd/N`), with berthd's mount at `rootfs` cloned and attached there.
/// `None`, with `create` not called, when the copy cannot be made: the caller then creates
/// the container in berthd's namespace, as before templates existed.
pub fn create_in<T: Send>(
    template: &str,
    rootfs: &Path,
    create: impl FnOnce() -> T + Send,
) -> Option<T> {
    let tree = mountns::clone_tree(rootfs).ok()?;
    let tmpl = File::open(template).ok()?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: unshare(CLONE_FS) gives this thread its own root and working folder,
            // which setns into a mount namespace requires; it affects this thread only.
            if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
                return None;
            }
            mountns::enter(&tmpl).ok()?;
            mountns::unshare().ok()?;
            mountns::attach(&tree, rootfs).ok()?;
            drop(tree);
            Some(create())
        })
        .join()
        .ok()
        .flatten()
    })
}
