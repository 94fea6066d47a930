//! The OCI-binary isolation runtime as a berth plugin library: driver `runc`, berth-runtime's
//! `OciRuntime` (an OCI runtime CLI — runc by default, or the binary a Docker-style
//! `runtimes` entry names — driven with a bundle, a private `--root` and a console socket)
//! behind `core::Runtime`. Configuration: `{"path", "args", "root"}` (see
//! `berth_runtime::oci::open`).
//!
//! As for `runtime-native`, berthd opens this library and a container's monitor registers the
//! same constructor, linked, under the same names (`monitor/src/runtimes.rs`).

berth_plugins::export_plugin! {
    name: berth_runtime::oci::PLUGIN,
    version: env!("CARGO_PKG_VERSION"),
    runtime: { "runc" => berth_runtime::oci::open },
}
