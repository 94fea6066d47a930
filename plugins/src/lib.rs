//! berth-plugins: the stable plugin ABI and the loader.
//!
//! This is the only crate that knows the ABI. A plugin library is a `cdylib` that implements
//! one or more `berth_core` driver traits and exports them with [`export_plugin!`]; the daemon
//! opens libraries with a [`Loader`] and gets ordinary `Arc<dyn StorageDriver>` (or network,
//! registry, runtime) objects back. Neither side names abi_stable: swapping it for another
//! ABI crate touches only this crate.
//!
//! # Writing a plugin
//! 1. A crate with `crate-type = ["cdylib"]` depending on `berth-plugins` only (it re-exports
//!    [`core`] — the traits and types — and [`serde_json`]).
//! 2. Implement a trait — say `core::StorageDriver` — and a constructor taking the JSON
//!    configuration berthd passes (`{"root": "<data-root>/<driver>", "storage_opts": {..}}` for
//!    storage; `{"root": "<data-root>/network", "bridge", "bip", "default_address_pools"}` for
//!    network). Return `DriverError`s for bad configuration: they reach the administrator as
//!    berthd's one-line start-up error.
//! 3. Export it (every section is optional; they come in this order):
//!    ```ignore
//!    use berth_plugins::core::{DriverError, StorageDriver};
//!    fn new_hello(config: &berth_plugins::serde_json::Value)
//!        -> Result<Box<dyn StorageDriver>, DriverError> { /* ... */ }
//!    berth_plugins::export_plugin! {
//!        name: "hello-storage",
//!        version: env!("CARGO_PKG_VERSION"),
//!        storage: { "hello" => new_hello },
//!        network: { },   // "name" => constructor, ...
//!        registry: { },
//!        runtime: { },
//!    }
//!    ```
//! 4. `cargo build`, then name the library in `daemon.json`
//!    (`"plugins": {"drivers": {"hello": "/path/libhello_storage.so"}}` plus
//!    `"storage-driver": "hello"`), or drop it in a search folder (`"search-paths"`, berthd's
//!    own folder, `/usr/local/lib/berth`, `/usr/lib/berth`).
//!
//! `plugins/examples/hello-storage` is a complete out-of-tree storage plugin that passes the
//! storage conformance suite; `berth-storage-vfs`, `berth-storage-overlay` and
//! `berth-net-bridge` export themselves the same way from their `plugin.rs`. Drivers may
//! panic: every call is wrapped in `catch_unwind` and a panic comes back as
//! `DriverError::Internal("plugin <name> panicked in <method>: ...")`.
//!
//! # Loading (the daemon's side)
//! ```ignore
//! let mut loader = Loader::new(explicit /* driver → .so */, search_dirs);
//! let (storage, info) = loader.storage("overlay2", &json!({"root": ..., "storage_opts": {}}))?;
//! let (network, _) = loader.network("bridge", &net_config)?;
//! let for_info: Vec<PluginInfo> = loader.loaded();
//! ```
//! A driver named in `explicit` is opened from that file, and any failure is an error. Else
//! the `*.so` files of the search folders are tried in order (sorted by name); files there that
//! are not berth plugins are skipped with a warning. Each failure is a distinct
//! [`PluginError`] whose message is one line naming the driver, the library and the reason:
//! missing file, not a plugin (not a shared object, or no berth root module), another
//! interface version (found N, expected [`ABI_VERSION`]), no such driver, failed init.
//! Libraries are never unloaded; one library may serve several drivers and several opens.
//!
//! Before any library is opened, it, the folder it is in and (for a link) the file it
//! resolves to and that file's folder must be owned by root and writable neither by their
//! group nor by everyone; so must each search folder and every `*.so` in it. A path that
//! fails is [`PluginError::Untrusted`] (one line naming the path and why), whatever driver
//! was asked for. The search folders are scanned whole once: two files claiming one driver
//! name are [`PluginError::Duplicate`], unless the configuration names a library for that
//! driver. [`Loader::check`] runs all of this up front, so a caller can refuse to start
//! before any driver touched the disk.
//!
//! # The ABI (interface version [`ABI_VERSION`])
//! - A library exports one abi_stable root module (a prefix type, `abi::PluginMod`). Before
//!   any plugin code runs the loader checks abi_stable's header, that the module is a berth
//!   plugin's, abi_stable's version number (major = interface version) and the module's
//!   type layout, and then the module's own `abi_version` field.
//! - The module holds `describe` (JSON: plugin name, version, drivers as kind + name), `open`
//!   (kind + driver + JSON configuration → handle, or the constructor's error text) and one
//!   call entry per driver kind (`storage_call`, `network_call`, `registry_call`,
//!   `runtime_call`): handle + method + JSON arguments + a stream file descriptor (or -1) →
//!   JSON result or a serialised `DriverError`, which comes out as the same variant.
//! - Streams (`apply_diff`, `diff`, `fetch_blob`, `push_blob`) cross as pipe file descriptors:
//!   the host copies between the pipe and the caller's reader or writer on a second thread, so
//!   nothing is held whole in memory; when the plugin stops reading early the host drains the
//!   caller's reader, so a verifying reader still sees its whole stream.
//! - Runtime stdio descriptors cross as plain numbers (plugins run in berthd's process).

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
mod runtimes;
mod trust;

pub use berth_core as core;
pub use error::PluginError;
pub use loader::{Loader, PluginInfo};
pub use runtimes::{open_runtime, Linked, RuntimeChoice};
pub use trust::Distrust;

/// The interface version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// The JSON crate the constructors' configuration comes in (so a plugin needs no other
/// dependency than this crate).
pub use serde_json;
