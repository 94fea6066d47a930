//! Who may reach berthd's folders: the data root and the exec root are `0710 root:root`, as
//! Docker's, and every folder directly in them (containers, volumes, image, network, the
//! storage driver's layers, the run-time state) is `0710` too (or stays `0700`), set at every
//! start, also on a data root that existed before. Other host users can then neither list nor
//! open anything below: layer contents, files containers wrote, volume data, logs. Containers
//! are not affected (their monitors and inits are root; a `-u nobody` process reaches its
//! rootfs and volumes through its mounts, never through these paths). A container's folders
//! and a volume's folder are made `0710` as well (the volume's `_data`, which is the volume's
//! root inside containers, keeps its own mode).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The mode of the roots and of the folders in them.
const PRIVATE: u32 = 0o710;

/// `dir` is root's and `0710`.
fn restrict(dir: &Path) -> io::Result<()> {
    std::os::unix::fs::chown(dir, Some(0), Some(0))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE))
}

/// Creates `dir` and any missing parent as `0710` folders (a container's or a volume's own
/// folder, whose contents other users have no business listing).
pub fn private_dir_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE)
        .create(dir)
}

/// Restricts `root` (which must exist) and the folders directly in it; the ones already
/// stricter (`0700`) are left alone.
pub fn lock_down(root: &Path) -> io::Result<()> {
    restrict(root)?;
    for e in std::fs::read_dir(root)?.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & !PRIVATE != 0 {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(PRIVATE))?;
        }
    }
    Ok(())
}
