//! berthd and its plugins: each way a plugin can fail stops berthd with exit status 1 and one
//! line on stderr naming the driver, the library and the reason, leaving the data root
//! untouched; the out-of-tree hello-storage plugin loads and shows in `docker info`, and
//! images imported through it land in its layers.
//!
//! berthd is the workspace's `target/debug/berthd` (build the workspace first, as for every
//! integration test); the plugin fixtures are built here with the same target dir.

#[path = "../../plugins/tests/support/mod.rs"]
mod plugin_fixtures;

use berth_tests::TestDaemon;
use plugin_fixtures::libs;
use serde_json::{json, Value};
use std::path::Path;

/// Starts berthd with `config`, expects exit 1 with one line naming `words` and an untouched
/// data root.
fn fails(config: Value, words: &[&str]) {
    berth_tests::berthd_refuses(config, words);
}

fn storage_config(driver: &str, library: &Path) -> Value {
    json!({"storage-driver": driver, "plugins": {"drivers": {driver: library}}})
}

#[test]
fn missing_library_stops_berthd() {
    let lib = Path::new("/nonexistent/berth/libgone.so");
    fails(
        storage_config("gone", lib),
        &["gone", "/nonexistent/berth/libgone.so", "does not exist"],
    );
}

#[test]
fn non_plugin_library_stops_berthd() {
    let tmp = tempfile::tempdir().expect("tmp");
    let lib = tmp.path().join("libx.so");
    std::fs::write(&lib, "not a library\n").expect("write");
    let path = lib.display().to_string();
    fails(
        storage_config("x", &lib),
        &["\"x\"", &path, "not a berth plugin"],
    );
}

#[test]
fn other_interface_version_stops_berthd() {
    let lib = &libs().bad_abi;
    let path = lib.display().to_string();
    fails(
        storage_config("failing", lib),
        &["failing", &path, "interface version 999, expected 1"],
    );
}

#[test]
fn failing_init_stops_berthd() {
    let lib = &libs().fixture;
    let path = lib.display().to_string();
    fails(
        storage_config("failing", lib),
        &[
            "failing",
            &path,
            "failed to initialise",
            "always refuses to start",
        ],
    );
}

#[test]
fn driver_missing_from_library_stops_berthd() {
    let lib = &libs().fixture;
    let path = lib.display().to_string();
    fails(
        storage_config("zfs", lib),
        &["zfs", &path, "no storage driver"],
    );
}

#[test]
fn driver_in_no_search_folder_stops_berthd() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::copy(&libs().hello, tmp.path().join("libhello_storage.so")).expect("copy");
    let dir = tmp.path().display().to_string();
    let config = json!({"storage-driver": "zfs", "plugins": {"search-paths": [tmp.path()]}});
    fails(config, &["zfs", &dir, "no storage driver"]);
}

#[test]
fn unknown_registry_driver_stops_berthd() {
    fails(
        json!({"registry-driver": "nope"}),
        &["nope", "no registry driver"],
    );
}

#[test]
fn hello_storage_plugin_serves_berthd() {
    let tmp = tempfile::tempdir().expect("tmp");
    let search = tmp.path().join("plugins");
    std::fs::create_dir_all(&search).expect("mkdir");
    let lib = search.join("libhello_storage.so");
    std::fs::copy(&libs().hello, &lib).expect("copy");
    // Found in a search folder, next to junk that is skipped.
    std::fs::write(search.join("libjunk.so"), "junk").expect("junk");
    let d = TestDaemon::builder()
        .storage_driver("hello")
        .config_json(json!({"plugins": {"search-paths": [search]}}))
        .start();

    let out = d.docker(&["info", "--format", "{{.Driver}}"]);
    assert_eq!(out.ok().trim(), "hello");
    let (code, _, body) = d.request("GET", "/info", None);
    assert_eq!(code, 200, "{body}");
    let info: Value = serde_json::from_str(&body).expect("info JSON");
    let plugins = info["BerthPlugins"].as_array().cloned().unwrap_or_default();
    assert!(
        plugins.iter().any(|p| p["Name"] == "hello-storage"
            && p["Driver"] == "hello"
            && p["Kind"] == "storage"
            && p["Library"] == lib.display().to_string()),
        "{plugins:?}"
    );

    // An image imported through the plugin: its layer is a hello layer folder.
    let mut b = tar::Builder::new(Vec::new());
    let data = b"hello from a plugin\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    b.append_data(&mut h, "greeting.txt", &data[..])
        .expect("tar");
    let tar = b.into_inner().expect("tar");
    d.docker_stdin(&["import", "-", "hello-img:1"], &tar).ok();
    let out = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        out.ok().lines().any(|l| l == "hello-img:1"),
        "{}",
        out.stdout
    );
    let layers = d.data_root().join("hello");
    let found = std::fs::read_dir(&layers)
        .expect("hello layers")
        .flatten()
        .any(|e| e.path().join("fs/greeting.txt").exists());
    assert!(found, "the imported layer is stored by the hello plugin");
}
