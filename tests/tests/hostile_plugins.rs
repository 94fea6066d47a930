//! Hostile plugin libraries (issue #15): a library, its folder or a search folder that another
//! user owns or could write, a link to such a library, and two libraries claiming one driver
//! name each stop berthd before anything is opened: exit status 1, one line naming the path
//! and the reason, no data root written. A root-owned, non-writable set-up still starts.
//!
//! The libraries are copies of the in-tree vfs plugin next to `target/debug/berthd` (build the
//! workspace first).

use berth_tests::{berthd_refuses, TestDaemon};
use serde_json::json;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// The vfs plugin berthd finds next to itself.
fn vfs_lib() -> PathBuf {
    TestDaemon::berthd_bin()
        .parent()
        .expect("target/debug")
        .join("libberth_storage_vfs.so")
}

/// A root-owned folder `name` (mode `mode`) in `tmp` holding a copy of the vfs plugin as
/// `file`; returns the folder and the library.
fn folder_with_vfs(tmp: &Path, name: &str, mode: u32, file: &str) -> (PathBuf, PathBuf) {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).expect("chmod dir");
    let lib = dir.join(file);
    std::fs::copy(vfs_lib(), &lib).expect("copy the vfs plugin");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o755)).expect("chmod lib");
    (dir, lib)
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// berthd configured to take its vfs driver from `lib`.
fn explicit_vfs(lib: &Path) -> serde_json::Value {
    json!({"storage-driver": "vfs", "plugins": {"drivers": {"vfs": lib}}})
}

#[test]
fn world_writable_plugin_folder_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, lib) = folder_with_vfs(tmp.path(), "plugins", 0o755, "libvfs.so");
    chmod(&dir, 0o777);
    let line = berthd_refuses(
        explicit_vfs(&lib),
        &[
            &lib.display().to_string(),
            "refused",
            &format!("{} is writable by everyone (mode 0777)", dir.display()),
        ],
    );
    eprintln!("{line}");
}

#[test]
fn library_directly_in_tmp_is_refused() {
    let lib = std::env::temp_dir().join(format!("berth-hostile-{}.so", std::process::id()));
    std::fs::copy(vfs_lib(), &lib).expect("copy");
    chmod(&lib, 0o755);
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(lib.clone());
    berthd_refuses(
        explicit_vfs(&lib),
        &[
            &lib.display().to_string(),
            "is writable by everyone (mode 1777)",
        ],
    );
}

#[test]
fn group_writable_library_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, lib) = folder_with_vfs(tmp.path(), "plugins", 0o755, "libvfs.so");
    chmod(&lib, 0o775);
    berthd_refuses(
        explicit_vfs(&lib),
        &[
            "refused",
            &format!("{} is writable by its group (mode 0775)", lib.display()),
        ],
    );
}

#[test]
fn library_owned_by_another_user_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, lib) = folder_with_vfs(tmp.path(), "plugins", 0o755, "libvfs.so");
    chown(&lib, Some(65534), Some(65534)).expect("chown");
    berthd_refuses(
        explicit_vfs(&lib),
        &[&format!(
            "{} is owned by uid 65534, not root",
            lib.display()
        )],
    );
}

#[test]
fn link_to_a_library_in_a_writable_folder_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (bad_dir, target) = folder_with_vfs(tmp.path(), "drop", 0o755, "libvfs.so");
    chmod(&bad_dir, 0o777);
    let good = tmp.path().join("plugins");
    std::fs::create_dir_all(&good).expect("mkdir");
    chmod(&good, 0o755);
    let link = good.join("libvfs.so");
    symlink(&target, &link).expect("symlink");
    berthd_refuses(
        explicit_vfs(&link),
        &[
            &link.display().to_string(),
            &format!("{} is writable by everyone", bad_dir.display()),
        ],
    );
}

#[test]
fn search_folder_with_a_bad_file_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The bad file claims nothing the configuration asks for: it is refused all the same.
    let (dir, lib) = folder_with_vfs(tmp.path(), "search", 0o755, "libextra.so");
    chmod(&lib, 0o757);
    berthd_refuses(
        json!({"plugins": {"search-paths": [dir]}}),
        &[
            &lib.display().to_string(),
            "is writable by everyone (mode 0757)",
        ],
    );
}

#[test]
fn writable_search_folder_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("search");
    std::fs::create_dir_all(&dir).expect("mkdir");
    chmod(&dir, 0o770);
    berthd_refuses(
        json!({"plugins": {"search-paths": [dir]}}),
        &[&format!(
            "{} is writable by its group (mode 0770)",
            dir.display()
        )],
    );
}

#[test]
fn two_libraries_claiming_one_driver_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, a) = folder_with_vfs(tmp.path(), "search", 0o755, "liba.so");
    let b = dir.join("libb.so");
    std::fs::copy(&a, &b).expect("copy");
    berthd_refuses(
        json!({"plugins": {"search-paths": [dir]}}),
        &[
            "\"vfs\"",
            "claimed by two libraries",
            &a.display().to_string(),
            &b.display().to_string(),
        ],
    );
}

#[test]
fn root_owned_private_folders_still_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, lib) = folder_with_vfs(tmp.path(), "plugins", 0o755, "libvfs.so");
    // A private search folder holding a link to that same library is fine too (one file,
    // whatever the name it is reached by).
    let search = tmp.path().join("search");
    std::fs::create_dir_all(&search).expect("mkdir");
    chmod(&search, 0o700);
    symlink(&lib, search.join("libvfs-link.so")).expect("symlink");
    let d = TestDaemon::builder()
        .storage_driver("vfs")
        .config_json(json!({"plugins": {"drivers": {"vfs": lib}, "search-paths": [search]}}))
        .start();
    let out = d.docker(&["info", "--format", "{{.Driver}}"]);
    assert_eq!(out.ok().trim(), "vfs");
    let (code, _, body) = d.request("GET", "/info", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&lib.display().to_string()), "{body}");
    d.docker(&["version"]).ok();
}
