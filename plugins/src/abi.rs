//! The C-level vtable a plugin library exports, with its abi_stable layout.

use abi_stable::std_types::{RResult, RStr, RString};
use abi_stable::StableAbi;

/// Symbol of `extern "C" fn() -> &'static PluginVTable`.
pub const VTABLE_SYMBOL: &[u8] = b"berth_plugin_v1\0";
/// Symbol of `extern "C" fn() -> &'static TypeLayout` (the vtable's layout).
pub const LAYOUT_SYMBOL: &[u8] = b"berth_plugin_layout\0";

/// What a plugin library exports.
#[repr(C)]
#[derive(StableAbi)]
pub struct PluginVTable {
    /// The interface version the library was built against.
    pub abi_version: u32,
    /// JSON `{"name","version","drivers":[{"kind","name"}]}`.
    pub describe: extern "C" fn() -> RString,
    /// Opens driver `name` of `kind` with a JSON configuration; returns a handle.
    pub open:
        extern "C" fn(kind: RStr<'_>, name: RStr<'_>, config: RStr<'_>) -> RResult<u64, RString>,
    /// Calls a storage driver method: handle, method, JSON args, stream fd (-1 if none).
    pub storage_call: extern "C" fn(
        handle: u64,
        method: RStr<'_>,
        args: RStr<'_>,
        fd: i32,
    ) -> RResult<RString, RString>,
    /// Calls a network driver method.
    pub network_call: extern "C" fn(
        handle: u64,
        method: RStr<'_>,
        args: RStr<'_>,
        fd: i32,
    ) -> RResult<RString, RString>,
}

/// The layout of [`PluginVTable`] as this build of the crate sees it.
pub fn layout() -> &'static abi_stable::type_layout::TypeLayout {
    <PluginVTable as StableAbi>::LAYOUT
}

/// Re-exports for the export macro (plugins never name abi_stable themselves).
#[doc(hidden)]
pub mod reexport {
    pub use abi_stable::std_types::{RResult, RStr, RString};
    pub use abi_stable::type_layout::TypeLayout;
}
