//! Storage drivers loaded through the plugin ABI pass the storage conformance suite: the
//! in-tree vfs and overlay2 plugins and the out-of-tree hello-storage example, each opened by
//! the loader from its `.so` (needs root: the suite mounts layers).

mod support;

use berth_plugins::core::storage::{Change, CreateOpts, Mount, Usage};
use berth_plugins::core::{DriverResult, StorageDriver};
use berth_plugins::Loader;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use support::libs;

/// The suite wants a `Box<dyn StorageDriver>`; the loader hands out `Arc`s.
struct Shared(Arc<dyn StorageDriver>);

impl StorageDriver for Shared {
    fn name(&self) -> String {
        self.0.name()
    }
    fn status(&self) -> Vec<(String, String)> {
        self.0.status()
    }
    fn create(&self, id: &str, parent: Option<&str>, opts: &CreateOpts) -> DriverResult<()> {
        self.0.create(id, parent, opts)
    }
    fn remove(&self, id: &str) -> DriverResult<()> {
        self.0.remove(id)
    }
    fn exists(&self, id: &str) -> bool {
        self.0.exists(id)
    }
    fn list(&self) -> DriverResult<Vec<String>> {
        self.0.list()
    }
    fn mounts(&self, id: &str) -> DriverResult<Vec<Mount>> {
        self.0.mounts(id)
    }
    fn apply_diff(&self, id: &str, diff: &mut dyn Read) -> DriverResult<u64> {
        self.0.apply_diff(id, diff)
    }
    fn independent_diffs(&self) -> bool {
        self.0.independent_diffs()
    }
    fn diff(&self, id: &str, out: &mut dyn Write) -> DriverResult<()> {
        self.0.diff(id, out)
    }
    fn changes(&self, id: &str) -> DriverResult<Vec<Change>> {
        self.0.changes(id)
    }
    fn usage(&self, id: &str) -> DriverResult<Usage> {
        self.0.usage(id)
    }
    fn cleanup(&self) -> DriverResult<()> {
        self.0.cleanup()
    }
}

fn conformance(driver: &str, library: &Path) {
    let map = BTreeMap::from([(driver.to_string(), library.to_path_buf())]);
    let loader = std::sync::Mutex::new(Loader::new(map, Vec::new()));
    berth_storage_conformance::run_all(&|root| {
        let config = json!({"root": root, "storage_opts": {}});
        let (d, info) = loader
            .lock()
            .expect("loader")
            .storage(driver, &config)
            .expect("driver loads");
        assert_eq!(info.library, library);
        Box::new(Shared(d))
    });
}

#[test]
fn vfs_plugin_passes_conformance() {
    conformance("vfs", &libs().vfs);
}

#[test]
fn overlay2_plugin_passes_conformance() {
    conformance("overlay2", &libs().overlay);
}

#[test]
fn hello_storage_example_passes_conformance() {
    conformance("hello", &libs().hello);
}
