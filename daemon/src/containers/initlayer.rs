//! Init layers: the mount points and files every container needs (`/proc`, `/sys`, `/dev`,
//! `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/etc/mtab`) made once in a layer between
//! an image and its containers' rw layers, as Docker's `-init` layers. So a container's own
//! changes (`diff`, `commit`, build steps) never show the runtime's mount points, while its
//! full filesystem (`export`, the running rootfs) has them.
//!
//! One init layer serves every container of the same image top layer: it is named
//! `<parent layer>-init` and made once (the second create of an image costs nothing). It is
//! recorded as complete by a marker file under `<data-root>/init-layers/` written after it was
//! filled, so a crash mid-way leaves a layer that the next use re-makes. Init layers whose
//! parent layer is gone are removed at start-up and after image removals.

use berth_core::storage::{CreateOpts, StorageDriver};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Folders the runtime mounts over (created when the image lacks them).
const DIRS: &[&str] = &["proc", "sys", "dev", "dev/pts", "dev/shm", "etc"];
/// Files the daemon bind-mounts over.
const FILES: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf"];
/// The name suffix of init layers.
const SUFFIX: &str = "-init";
/// The layer name of containers of an image without layers.
const SCRATCH: &str = "scratch";

/// Serialises the making of init layers (two creates of one image at once).
static MAKING: Mutex<()> = Mutex::new(());

/// Why an init layer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InitLayerError {
    /// The storage driver refused.
    #[error("init layer {layer}: {source}")]
    Storage {
        layer: String,
        source: berth_core::DriverError,
    },
    /// Mounting it or filling it in failed.
    #[error("init layer {layer}: {what}: {source}")]
    Io {
        layer: String,
        what: String,
        source: std::io::Error,
    },
}

/// Places init layers are kept track of.
pub struct InitLayers {
    /// `<data-root>/init-layers`: a marker file per complete init layer.
    markers: PathBuf,
    /// A scratch folder to mount layers on while filling them (under the exec root).
    scratch: PathBuf,
}

impl InitLayers {
    /// Init layers of the daemon with these roots.
    pub fn new(data_root: &Path, exec_root: &Path) -> InitLayers {
        InitLayers {
            markers: data_root.join("init-layers"),
            scratch: exec_root.join("init-mnt"),
        }
    }

    /// The init layers of the running daemon.
    pub fn of(ctx: &crate::state::Ctx) -> InitLayers {
        InitLayers::new(&ctx.config.data_root, &ctx.config.exec_root)
    }

    /// The init layer for containers on `parent` (the image's top storage layer), made if
    /// missing or incomplete. Returns its storage id, the parent of the container's rw layer.
    pub fn ensure(
        &self,
        storage: &dyn StorageDriver,
        parent: Option<&str>,
    ) -> Result<String, InitLayerError> {
        let layer = format!("{}{SUFFIX}", parent.unwrap_or(SCRATCH));
        let marker = self.markers.join(&layer);
        if marker.exists() && storage.exists(&layer) {
            return Ok(layer);
        }
        let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        if marker.exists() && storage.exists(&layer) {
            return Ok(layer);
        }
        let io = |what: &str| {
            let (layer, what) = (layer.clone(), what.to_string());
            move |source| InitLayerError::Io {
                layer,
                what,
                source,
            }
        };
        let st = |source| InitLayerError::Storage {
            layer: layer.clone(),
            source,
        };
        let _ = std::fs::remove_file(&marker);
        storage.remove(&layer).map_err(st)?;
        storage
            .create(&layer, parent, &CreateOpts::default())
            .map_err(st)?;
        let mounts = storage.mounts(&layer).map_err(st)?;
        std::fs::create_dir_all(&self.scratch).map_err(io("creating the mount point"))?;
        berth_core::mount::mount_all(&mounts, &self.scratch).map_err(io("mounting"))?;
        let filled = fill(&self.scratch);
        let unmounted = berth_core::mount::unmount(&self.scratch);
        filled.map_err(io("filling"))?;
        unmounted.map_err(io("unmounting"))?;
        std::fs::create_dir_all(&self.markers).map_err(io("creating the marker folder"))?;
        berth_core::atomic::write_atomic(&marker, b"").map_err(io("writing the marker"))?;
        Ok(layer)
    }

    /// Removes init layers whose parent layer is gone (and their markers).
    pub fn remove_orphans(&self, storage: &dyn StorageDriver) {
        let Ok(ids) = storage.list() else { return };
        let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        // Leftover marker temp files of a crash; none is being written while we hold MAKING.
        berth_core::atomic::clean_temps(&self.markers);
        for id in ids {
            let Some(parent) = id.strip_suffix(SUFFIX) else {
                continue;
            };
            if parent == SCRATCH || storage.exists(parent) {
                continue;
            }
            tracing::info!("removing init layer {id}: its image layer is gone");
            let _ = std::fs::remove_file(self.markers.join(&id));
            let _ = storage.remove(&id);
        }
    }
}

/// Creates what the image lacks of [`DIRS`], [`FILES`] and the `/etc/mtab` link under `root`
/// (existing entries, even of another type, are left as the image has them).
///
/// The layer sits on the image, whose symlinks someone else chose (`/etc -> /host/dir`,
/// `/dev -> ../../..`): every path is resolved inside the layer's root through
/// [`berth_confine::Root`], so a symlinked `/etc` makes `hosts` in the folder it names inside
/// the container's filesystem, never in the host's.
fn fill(root: &Path) -> std::io::Result<()> {
    let root = berth_confine::Root::open(root)?;
    for d in DIRS {
        if root.lstat(d)?.is_none() {
            root.mkdir_all(d, 0o755)?;
        }
    }
    for f in FILES {
        if root.lstat(f)?.is_none() {
            if let Some(parent) = Path::new(f).parent() {
                root.mkdir_all(parent, 0o755)?;
            }
            root.create_new(f, 0o644)?;
        }
    }
    if root.lstat("etc/mtab")?.is_none() {
        root.symlink("/proc/mounts", "etc/mtab")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_inside_the_root_through_hostile_links() {
        let host = tempfile::tempdir().expect("tmp");
        let canary = host.path().join("canary");
        std::fs::create_dir(&canary).expect("canary");
        let climbing =
            PathBuf::from("../../../../../../../../").join(canary.strip_prefix("/").expect("abs"));
        // openat2, then the O_PATH walk of kernels without it.
        for (walk, etc, dev) in [
            (false, canary.clone(), canary.clone()),
            (false, climbing.clone(), PathBuf::from("/")),
            (true, canary.clone(), canary.clone()),
            (true, climbing, PathBuf::from("/")),
        ] {
            berth_confine::resolve::force_walk(walk);
            let root = tempfile::tempdir().expect("tmp");
            std::os::unix::fs::symlink(&etc, root.path().join("etc")).expect("etc link");
            std::os::unix::fs::symlink(&dev, root.path().join("dev")).expect("dev link");
            fill(root.path()).expect("fill");
            assert_eq!(
                std::fs::read_dir(&canary).expect("canary").count(),
                0,
                "nothing in the host folder"
            );
            // What the links name inside the root got the files.
            let inside = root.path().join(canary.strip_prefix("/").expect("abs"));
            assert!(inside.join("hosts").is_file(), "hosts inside the root");
            assert!(
                inside.join("mtab").symlink_metadata().is_ok(),
                "mtab inside"
            );
        }
        berth_confine::resolve::force_walk(false);
    }
}
