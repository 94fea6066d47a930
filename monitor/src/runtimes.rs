//! The monitor's runtime registry: the runtime plugins linked into berth-monitor, and opening
//! the runtime berthd chose by name (`monitor.json`'s `runtime`).
//!
//! `native` and `runc` are plugin libraries like any other (`runtime-native`, `runtime-oci`):
//! berthd loads them, lists them in `info` and resolves a container's runtime name to one of
//! them. The monitor, which must stay at about half a megabyte, opens the linked constructor
//! when berthd's choice is one of these builds (same plugin name, version and driver) instead
//! of mapping a second copy of std and of the runtime code with `dlopen` (whose relocated data
//! would stay resident for the container's life); any other library — an out-of-tree runtime — is opened from its file.

use berth_core::Runtime;
use berth_plugins::{open_runtime, Linked, PluginError, RuntimeChoice};
use std::sync::Arc;

/// The native runtime, linked.
const NATIVE: Linked = Linked {
    plugin: berth_runtime::native::PLUGIN,
    version: env!("CARGO_PKG_VERSION"),
    driver: "native",
    open: berth_runtime::native::open,
};

/// The runtime plugins linked into this program: the constructors `runtime-native` and
/// `runtime-oci` export, under the names they export them with.
const LINKED: [Linked; 2] = [
    NATIVE,
    Linked {
        plugin: berth_runtime::oci::PLUGIN,
        version: env!("CARGO_PKG_VERSION"),
        driver: "runc",
        open: berth_runtime::oci::open,
    },
];

/// Whether `choice` is the native runtime linked here, whose init makes the rootfs `/` in a
/// staged template's copy itself (`berth_core::stage::switch`); any other runtime is given
/// the host's tree on the stage's `/` (`berth_core::stage::cover`).
pub fn switches_staged(choice: &RuntimeChoice) -> bool {
    NATIVE.serves(choice)
}

/// Opens the runtime berthd chose.
pub fn open(choice: &RuntimeChoice) -> Result<Arc<dyn Runtime>, PluginError> {
    open_runtime(choice, &LINKED)
}
