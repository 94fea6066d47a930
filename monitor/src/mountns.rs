//! The monitor's own mount namespace (PROTOCOL.md "Files", `mount_ns`): a copy of berthd's
//! template namespace, which holds no other container's rootfs, with berthd's mount of this
//! container's rootfs attached — so the runtime's `CLONE_NEWNS` copies a few mounts however
//! many containers run.

use berth_core::mountns;
use std::fs::File;
use std::path::Path;

/// The monitor is in a mount namespace of its own; berthd's is kept to take its rootfs down.
pub struct OwnNs {
    host: File,
}

/// Moves the monitor into a copy of the template namespace at `template` (a path such as
/// `/proc/<berthd>/fd/N`), with berthd's mount at `rootfs` attached there when
/// `clone_rootfs` (else the monitor mounts the rootfs itself, in its own namespace). Called
/// while the monitor is single-threaded. `Ok(None)` when a step fails: the monitor is then
/// still, or back, in berthd's namespace and goes on there (its start costs more with every
/// running container, as before templates existed); an error when it could not go back.
pub fn enter(template: &str, rootfs: &Path, clone_rootfs: bool) -> std::io::Result<Option<OwnNs>> {
    let Ok(host) = mountns::current() else {
        return Ok(None);
    };
    let tree = match clone_rootfs {
        true => match mountns::clone_tree(rootfs) {
            Ok(t) => Some(t),
            Err(_) => return Ok(None),
        },
        false => None,
    };
    let entered = File::open(template).and_then(|t| mountns::enter(&t));
    if entered.is_err() {
        return Ok(None);
    }
    let attached = mountns::unshare()
        .and_then(|()| tree.as_ref().map_or(Ok(()), |t| mountns::attach(t, rootfs)));
    if attached.is_err() {
        // Back where berthd's rootfs is; the half-made namespace goes with its last user.
        return mountns::enter(&host).map(|()| None);
    }
    Ok(Some(OwnNs { host }))
}

impl OwnNs {
    /// Detaches the rootfs in berthd's namespace (the mount berthd made, which nobody else
    /// will take down once berthd is gone).
    pub fn unmount_host(&self, rootfs: &Path) {
        let _ = mountns::run_in(&self.host, || berth_core::mount::unmount(rootfs));
    }
}
