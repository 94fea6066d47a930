//! Exports the distribution client as a berth plugin library (registry driver `distribution`).

berth_plugins::export_plugin! {
    name: "berth-registry-distribution",
    version: env!("CARGO_PKG_VERSION"),
    registry: { "distribution" => crate::new_driver },
}
