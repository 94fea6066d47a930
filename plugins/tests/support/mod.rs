//! Builds the plugin libraries the loader tests open, with the cargo and target dir of the
//! running test (so dependencies are shared), once per test binary, into its own folder.
//! Shared by berth-plugins' tests and tests/tests/plugins.rs (included by path; both crates
//! sit one level below the workspace root). Fixture libraries are *moved* out of
//! `target/debug`, so a berthd started from there never meets them in its search folder.

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

/// Runs cargo with the running test's target dir.
fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo {args:?} failed");
}

/// A path relative to the workspace root.
fn manifest(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

/// Builds one library and moves (`keep`: copies) it to `<dir>/<name>`.
fn build_into(args: &[&str], built: &str, dir: &Path, name: &str, keep: bool) -> PathBuf {
    cargo(args);
    let from = target_dir().join("debug").join(built);
    let out = dir.join(name);
    if keep || std::fs::rename(&from, &out).is_err() {
        std::fs::copy(&from, &out).expect("copy library");
    }
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
    /// The in-tree overlay2 plugin.
    pub overlay: PathBuf,
    /// The out-of-tree hello-storage example.
    pub hello: PathBuf,
    /// The out-of-tree null-network example.
    pub null: PathBuf,
}

/// Builds everything once.
pub fn libs() -> &'static Libs {
    static LIBS: OnceLock<Libs> = OnceLock::new();
    LIBS.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        let stem = exe.file_stem().map(|s| s.to_string_lossy().into_owned());
        let dir = target_dir()
            .join("tmp")
            .join(format!("plugin-fixtures-{}", stem.unwrap_or_default()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir fixtures");
        let fixture_manifest = manifest("plugins/examples/fixture-plugin/Cargo.toml");
        let fixture_lib = "libberth_fixture_plugin.so";
        let build = |manifest_path: &str, features: &[&str], package: Option<&str>| {
            let mut args = vec!["build", "--manifest-path", manifest_path];
            args.extend(features.iter().flat_map(|f| ["--features", f]));
            args.extend(package.iter().flat_map(|p| ["-p", p]));
            args.iter().map(|s| s.to_string()).collect::<Vec<String>>()
        };
        let run = |args: Vec<String>, built: &str, name: &str, keep: bool| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            build_into(&args, built, &dir, name, keep)
        };
        let fixture = run(
            build(&fixture_manifest, &[], None),
            fixture_lib,
            "libberth_fixture.so",
            false,
        );
        let bad_abi = run(
            build(&fixture_manifest, &["bad-abi"], None),
            fixture_lib,
            "libberth_fixture_bad_abi.so",
            false,
        );
        let vfs = run(
            build(&manifest("Cargo.toml"), &[], Some("berth-storage-vfs")),
            "libberth_storage_vfs.so",
            "libberth_storage_vfs.so",
            true,
        );
        let overlay = run(
            build(&manifest("Cargo.toml"), &[], Some("berth-storage-overlay")),
            "libberth_storage_overlay.so",
            "libberth_storage_overlay.so",
            true,
        );
        let hello = run(
            build(
                &manifest("plugins/examples/hello-storage/Cargo.toml"),
                &[],
                None,
            ),
            "libhello_storage.so",
            "libhello_storage.so",
            false,
        );
        let null = run(
            build(
                &manifest("plugins/examples/null-network/Cargo.toml"),
                &[],
                None,
            ),
            "libnull_network.so",
            "libnull_network.so",
            false,
        );
        Libs {
            null,
            dir,
            fixture,
            bad_abi,
            vfs,
            overlay,
            hello,
        }
    })
}
