//! Seeding a new volume from the image (Docker's copy-up): what the image has at the mount
//! path, resolved inside the container's rootfs, copied into the volume's folder with
//! [`berth_confine::Root::copy_in`] (owners, modes, times and symlinks kept). The image's
//! symlinks are followed only inside its rootfs and copied as symlinks, never followed into
//! the host.

use berth_confine::{ConfineError, CopyOptions, FileKind, Root};
use std::path::Path;

/// Copies the folder `dest` (a path in the container, symlinks followed inside `image`) into
/// the volume folder `data`, which also gets its owner and mode. Nothing happens when the
/// image has no folder there.
pub fn seed_from(image: &Root, dest: &str, data: &Path) -> Result<(), ConfineError> {
    match image.stat(dest)? {
        Some(st) if st.kind == FileKind::Dir => {}
        _ => return Ok(()),
    }
    let volume = Root::open(data)?;
    let opts = CopyOptions {
        owner: None,
        follow_top: true,
    };
    volume.copy_in("", image, dest, &opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn seeds_inside_the_image_and_keeps_links() {
        let host = tempfile::tempdir().expect("tmp");
        let canary = host.path().join("canary");
        std::fs::create_dir(&canary).expect("canary");
        std::fs::write(canary.join("secret"), b"host").expect("host file");
        let image = tempfile::tempdir().expect("tmp");
        let r = image.path();
        std::fs::create_dir_all(r.join("a/b")).expect("a/b");
        std::fs::write(r.join("a/b/f"), b"x").expect("f");
        std::os::unix::fs::symlink("b/f", r.join("a/l")).expect("l");
        std::os::unix::fs::symlink(&canary, r.join("a/out")).expect("out");
        std::os::unix::fs::symlink("/a", r.join("link")).expect("link");
        std::os::unix::fs::symlink(&canary, r.join("escape")).expect("escape");
        let root = Root::open(r).expect("root");

        let vol = tempfile::tempdir().expect("tmp");
        seed_from(&root, "/link", vol.path()).expect("seed");
        assert_eq!(std::fs::read(vol.path().join("b/f")).expect("f"), b"x");
        assert_eq!(
            std::fs::read_link(vol.path().join("l")).expect("l"),
            PathBuf::from("b/f")
        );
        // A symlink out is copied as a link, not followed.
        assert_eq!(
            std::fs::read_link(vol.path().join("out")).expect("out"),
            canary
        );

        // A mount path that is a symlink to a host folder is resolved inside the image,
        // where it names nothing: nothing is copied.
        let vol = tempfile::tempdir().expect("tmp");
        seed_from(&root, "/escape", vol.path()).expect("seed");
        assert_eq!(std::fs::read_dir(vol.path()).expect("vol").count(), 0);
        assert_eq!(std::fs::read(canary.join("secret")).expect("host"), b"host");
    }
}
