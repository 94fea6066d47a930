//! Exports the bridge network driver as a berth plugin library.

use berth_core::{DriverError, NetworkDriver};

/// The bridge driver's constructor as the plugin exports it.
// Until the driver lands this answers Unsupported; it becomes `crate::new_driver` then.
fn new_bridge(_config: &serde_json::Value) -> Result<Box<dyn NetworkDriver>, DriverError> {
    Err(DriverError::Unsupported(
        "the bridge network driver is not implemented yet".into(),
    ))
}

berth_plugins::export_plugin! {
    name: "berth-net-bridge",
    version: env!("CARGO_PKG_VERSION"),
    network: { "bridge" => new_bridge },
}
