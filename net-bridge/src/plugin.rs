//! Exports the bridge network driver as a berth plugin library.
//!
//! The driver is not committed yet: until `crate::new_driver` lands this library exports no
//! driver, so berthd starts without networking (with a warning) rather than failing.

berth_plugins::export_plugin! {
    name: "berth-net-bridge",
    version: env!("CARGO_PKG_VERSION"),
}
