//! Exports the bridge network driver as a berth plugin library.

berth_plugins::export_plugin! {
    name: "berth-net-bridge",
    version: env!("CARGO_PKG_VERSION"),
    network: { "bridge" => crate::new_driver },
}
