//! Exports the overlay2 driver as a berth plugin library.

berth_plugins::export_plugin! {
    name: "berth-storage-overlay",
    version: env!("CARGO_PKG_VERSION"),
    storage: { "overlay2" => crate::new_driver },
    network: { },
}
