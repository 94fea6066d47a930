//! Builds the plugin libraries the loader tests open, with the cargo and target dir of the
//! running test (so dependencies are shared), once per test binary, into its own folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The target dir of the running test (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target tmpdir has a parent")
        .to_path_buf()
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo {args:?} failed");
}

fn manifest(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

/// Builds one library and copies it to `<dir>/<name>` (the build output is overwritten by
/// the next feature set).
fn build_copy(args: &[&str], built: &str, dir: &Path, name: &str) -> PathBuf {
    cargo(args);
    let out = dir.join(name);
    std::fs::copy(target_dir().join("debug").join(built), &out).expect("copy library");
    out
}

/// The built libraries.
pub struct Libs {
    /// The folder they are in (a search dir holding only plugins).
    pub dir: PathBuf,
    /// The fixture library (failing, panic-init, panicky, memnet).
    pub fixture: PathBuf,
    /// The fixture claiming interface version 999.
    pub bad_abi: PathBuf,
    /// The in-tree vfs plugin.
    pub vfs: PathBuf,
    /// The out-of-tree hello-storage example.
    pub hello: PathBuf,
}

/// Builds everything once.
pub fn libs() -> &'static Libs {
    static LIBS: OnceLock<Libs> = OnceLock::new();
    LIBS.get_or_init(|| {
        let dir = target_dir().join("tmp").join("berth-plugin-fixtures");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir fixtures");
        let fixture_manifest = manifest("examples/fixture-plugin/Cargo.toml");
        let fixture_lib = "libberth_fixture_plugin.so";
        let fixture = build_copy(
            &["build", "--manifest-path", &fixture_manifest],
            fixture_lib,
            &dir,
            "libberth_fixture.so",
        );
        let bad_abi = build_copy(
            &[
                "build",
                "--manifest-path",
                &fixture_manifest,
                "--features",
                "bad-abi",
            ],
            fixture_lib,
            &dir,
            "libberth_fixture_bad_abi.so",
        );
        let vfs = build_copy(
            &[
                "build",
                "--manifest-path",
                &manifest("../Cargo.toml"),
                "-p",
                "berth-storage-vfs",
            ],
            "libberth_storage_vfs.so",
            &dir,
            "libberth_storage_vfs.so",
        );
        let hello = build_copy(
            &[
                "build",
                "--manifest-path",
                &manifest("examples/hello-storage/Cargo.toml"),
            ],
            "libhello_storage.so",
            &dir,
            "libhello_storage.so",
        );
        Libs {
            dir,
            fixture,
            bad_abi,
            vfs,
            hello,
        }
    })
}
