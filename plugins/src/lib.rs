//! berth-plugins: the stable plugin ABI and the loader.
//!
//! This is the only crate that knows the ABI. A plugin library is a `cdylib` that implements
//! one or more `berth_core` driver traits and exports them with [`export_plugin!`]; the daemon
//! opens libraries with [`Loader`] and receives ordinary `Arc<dyn StorageDriver>` /
//! `Arc<dyn NetworkDriver>` objects. Neither side names abi_stable: swapping it touches only
//! this crate.
//!
//! # The ABI (interface version [`ABI_VERSION`])
//! - A library exports two C symbols: `berth_plugin_layout` (the abi_stable `TypeLayout` of
//!   the vtable it was built with) and `berth_plugin_v1` (the vtable). The loader first checks
//!   the layout against its own with abi_stable's layout checker, then the vtable's
//!   `abi_version` number: a library built against another interface is refused with a clear
//!   error before any of its code runs.
//! - The vtable has four functions: `describe` (JSON: plugin name, version, drivers),
//!   `open` (driver kind + name + configuration as JSON → handle), and one call entry per
//!   driver kind (`storage_call`, `network_call`: handle + method + JSON arguments + an
//!   optional file descriptor for streams → JSON result or a serialised `DriverError`).
//! - Streams (`apply_diff`, `diff`) cross as pipe file descriptors; the host copies between the
//!   pipe and the caller's reader/writer on its side, so nothing is buffered whole.
//! - Every exported function catches panics and returns them as `DriverError::Internal`.
//! - Libraries are never unloaded.
//!
//! # Writing a plugin
//! ```ignore
//! use berth_plugins::core::{DriverError, StorageDriver};
//! fn new_hello(config: &serde_json::Value) -> Result<Box<dyn StorageDriver>, DriverError> { ... }
//! berth_plugins::export_plugin! {
//!     name: "hello-storage",
//!     version: env!("CARGO_PKG_VERSION"),
//!     storage: { "hello" => new_hello },
//!     network: { },
//! }
//! ```
//! with `crate-type = ["cdylib"]` and a dependency on `berth-plugins` (and `serde_json`).

#[doc(hidden)]
pub mod abi;
mod check;
mod error;
#[doc(hidden)]
pub mod export;
mod export_calls;
mod host;
mod host_more;
mod loader;

pub use berth_core as core;
pub use error::PluginError;
pub use loader::{Loader, PluginInfo};

/// The interface version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// The JSON crate the constructors' configuration comes in (so a plugin needs no other
/// dependency than this crate).
pub use serde_json;
