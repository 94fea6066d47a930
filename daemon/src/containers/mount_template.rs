//! The template mount namespace monitors create containers from (`core::mountns`).
//!
//! berthd mounts every container's rootfs under `<exec-root>/containers`, so its own mount
//! namespace grows with the running containers, and a copy of it (`CLONE_NEWNS`, at every
//! start) with it. The template is a copy made at start-up with the rootfs found then
//! detached; monitors enter it and copy it instead (monitor/PROTOCOL.md, `mount_ns`). So that
//! no later rootfs reaches it, the mount holding `<exec-root>/containers` must not propagate
//! to peers: the folder is bound onto itself and made private, as dockerd does with its
//! storage folders; that mount stays (a restart finds it private already). Its own mount also
//! keeps the rootfs mounts off the mount holding the layers (`/` when data root and exec root
//! share a file system): at every overlay mount the kernel walks each mount below the one
//! holding each layer (`clone_private_mount` → `has_locked_children`), which otherwise grows
//! with the running containers.
//!
//! The template also holds the read-only mounts every container shares
//! (`berth_runtime::shared_mounts`), under `<exec-root>/shared`: mounted in the template only
//! (kept from propagating the same way), so berthd's and the host's namespaces never hold them
//! and nothing is left to unmount when berthd ends.
//!
//! Last, the template is *staged* (`berth_core::stage`): its root becomes an empty read-only
//! tmpfs with the host's tree under it, so that containers' inits switch to their rootfs
//! without `pivot_root`, whose cost grows with the tasks on the host.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The template namespace, held open by berthd.
pub struct MountTemplate {
    ns: File,
    /// The folder of the shared mounts, when they were made.
    shared: Option<PathBuf>,
    /// The template's root is a stage.
    staged: bool,
}

/// The stage's folder (`berth_core::stage`) under the shared mounts' folder, whose mount does
/// not propagate (`pivot_root` requires it).
const STAGE: &str = "stage";

impl MountTemplate {
    /// Makes the template for rootfs mounted under `dir`, with the shared mounts in `shared`.
    pub fn make(dir: &Path, shared: &Path) -> io::Result<MountTemplate> {
        let dir = std::fs::canonicalize(dir)?;
        keep_private(&dir, true)?;
        std::fs::create_dir_all(shared)?;
        let shared = std::fs::canonicalize(shared)?;
        let private = keep_private(&shared, false)
            .inspect_err(|e| tracing::warn!("no shared mounts for containers: {e}"))
            .is_ok();
        let layout = berth_runtime::mounts::CgroupLayout::host();
        let made = std::sync::atomic::AtomicBool::new(false);
        let staged = std::sync::atomic::AtomicBool::new(false);
        let ns = berth_core::mountns::template(&mounts_under(&dir)?, || {
            if !private {
                return;
            }
            match berth_runtime::shared_mounts::make(&shared, &layout) {
                Ok(()) => made.store(true, std::sync::atomic::Ordering::Relaxed),
                Err(e) => tracing::warn!("no shared mounts for containers: {e}"),
            }
            // Last: the stage becomes the template's root, the host's tree goes under it.
            match berth_core::stage::make(&shared.join(STAGE)) {
                Ok(()) => staged.store(true, std::sync::atomic::Ordering::Relaxed),
                Err(e) => tracing::warn!("containers' roots are switched with pivot_root: {e}"),
            }
        })?;
        let shared = made.into_inner().then_some(shared);
        let staged = staged.into_inner();
        Ok(MountTemplate { ns, shared, staged })
    }

    /// The template's root is a stage (`berth_core::stage`): monitors `chroot` into its host
    /// tree, and a container's init makes its rootfs `/` without `pivot_root`.
    pub fn staged(&self) -> bool {
        self.staged
    }

    /// The folder of the shared mounts (in the template only), when they were made.
    pub fn shared_mounts(&self) -> Option<&Path> {
        self.shared.as_deref()
    }

    /// The path by which a monitor opens the template: this process's descriptor of it.
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.ns.as_raw_fd())
    }
}

/// Takes away the mount [`MountTemplate::make`] gave `<exec-root>/containers`, when berthd
/// ends with no container's rootfs left under it (as dockerd unmounts its storage folders);
/// with one left the kernel refuses (busy) and it stays for the next start.
pub fn release(exec_root: &Path) {
    let Ok(dir) = std::fs::canonicalize(exec_root.join("containers")) else {
        return;
    };
    let is_point = berth_runtime::mounts::holder(&dir).is_ok_and(|(p, _)| Path::new(&p) == dir);
    if is_point {
        // Not MNT_DETACH: the kernel refuses while anything is mounted under it or open in it.
        if let Err(e) = nix::mount::umount2(&dir, nix::mount::MntFlags::empty()) {
            tracing::debug!("{} stays mounted: {e}", dir.display());
        }
    }
}

/// Makes sure that what is mounted under `dir` does not propagate to other namespaces;
/// `own`: `dir` is given a mount of its own (bound onto itself) even when nothing propagates.
fn keep_private(dir: &Path, own: bool) -> io::Result<()> {
    let (point, fields) = berth_runtime::mounts::holder(dir)?;
    let shared = fields.iter().any(|f| f.starts_with("shared:"));
    if !shared && (!own || Path::new(&point) == dir) {
        return Ok(());
    }
    let flags = |f: libc::c_ulong, src: Option<&Path>| {
        nix::mount::mount(
            src,
            dir,
            None::<&str>,
            nix::mount::MsFlags::from_bits_truncate(f),
            None::<&str>,
        )
        .map_err(io::Error::from)
    };
    if Path::new(&point) != dir {
        // Recursive, so the rootfs of containers still running from before stay visible.
        flags(libc::MS_BIND | libc::MS_REC, Some(dir))?;
    }
    flags(libc::MS_PRIVATE, None)
}

/// The mount points strictly under `dir`, in mount-table order.
fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(berth_runtime::mounts::unescape(p)))
        .filter(|p| p.starts_with(dir) && p.as_path() != dir)
        .collect())
}
