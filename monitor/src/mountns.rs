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

/// A template's stage (`berth_core::stage`), and what the runtime does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// The template is not staged.
    No,
    /// Staged, and the runtime's init switches to the rootfs itself (`stage::switch`): the
    /// thread works in the stage's host tree (`stage::enter`).
    Switch,
    /// Staged, and the runtime uses `pivot_root` (`stage::cover`).
    Cover,
}

/// Runs `create` on a thread in a copy of the template namespace at `template` (a path such
/// as `/proc/<berthd>/fd/N`), with berthd's mount at `rootfs` cloned and attached there;
/// `staged`: what to do about the template's stage.
/// `None`, with `create` not called, when the copy cannot be made: the caller then creates
/// the container in berthd's namespace, as before templates existed.
pub fn create_in<T: Send>(
    template: &str,
    staged: Staged,
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
            // A staged template's root is the stage, the host's tree under it: the native
            // init (a copy of this thread) learns of it from the mark `stage::enter` sets.
            let stage = match staged {
                Staged::No => None,
                Staged::Switch => Some(berth_core::stage::enter().ok()?),
                Staged::Cover => {
                    berth_core::stage::cover().ok()?;
                    None
                }
            };
            mountns::attach(&tree, rootfs).ok()?;
            drop(tree);
            let made = create();
            drop(stage);
            Some(made)
        })
        .join()
        .ok()
        .flatten()
    })
}
