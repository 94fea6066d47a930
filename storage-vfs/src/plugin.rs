//! Exports the vfs driver as a berth plugin library.

berth_plugins::export_plugin! {
    name: "berth-storage-vfs",
    version: env!("CARGO_PKG_VERSION"),
    storage: { "vfs" => crate::new_driver },
    network: { },
}
