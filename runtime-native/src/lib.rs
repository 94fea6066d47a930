//! The native isolation runtime as a berth plugin library: driver `native`, berth-runtime's
//! `NativeRuntime` (clone into new namespaces, cgroups, `pivot_root`, capabilities, seccomp —
//! no external binary) behind `core::Runtime`, exported through berth-plugins' ABI like every
//! other driver.
//!
//! berthd loads this library (found next to it, or where `plugins` says) to list and check the
//! runtime; a container's monitor, which must stay small, does not open the library when it is
//! this very build: the monitor links berth-runtime already and registers the same constructor
//! under the same plugin and driver name (`monitor/src/runtimes.rs`), so `native` is looked up
//! and selected exactly like an out-of-tree runtime.

berth_plugins::export_plugin! {
    name: berth_runtime::native::PLUGIN,
    version: env!("CARGO_PKG_VERSION"),
    runtime: { "native" => berth_runtime::native::open },
}
