//! The root module a plugin library exports: an abi_stable prefix type, checked (abi_stable
//! header, module layout, then our own interface version) before any plugin code runs.
//!
//! Only this crate names abi_stable; the export macro reaches it through [`reexport`].

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString};
use abi_stable::StableAbi;

/// The root module of a berth plugin library.
///
/// Every method call crosses as `(handle, method, JSON arguments, stream fd)` and answers
/// JSON (`ROk`) or a serialised `DriverError` (`RErr`); the fd is `-1` when the method has no
/// stream. One call entry per driver kind.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(option))]
pub struct PluginMod {
    /// The interface version the library was built against ([`crate::ABI_VERSION`]).
    pub abi_version: u32,
    /// JSON `{"name","version","drivers":[{"kind","name"}]}`.
    pub describe: extern "C" fn() -> RString,
    /// Opens driver `name` of `kind` with a JSON configuration; returns a handle or the
    /// constructor's error text.
    pub open:
        extern "C" fn(kind: RStr<'_>, name: RStr<'_>, config: RStr<'_>) -> RResult<u64, RString>,
    /// Calls a storage driver method.
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
    /// Calls a registry method.
    pub registry_call: extern "C" fn(
        handle: u64,
        method: RStr<'_>,
        args: RStr<'_>,
        fd: i32,
    ) -> RResult<RString, RString>,
    /// Calls an isolation runtime method.
    #[sabi(last_prefix_field)]
    pub runtime_call: extern "C" fn(
        handle: u64,
        method: RStr<'_>,
        args: RStr<'_>,
        fd: i32,
    ) -> RResult<RString, RString>,
}

/// The type of the per-kind call entries.
pub(crate) type CallFn = extern "C" fn(u64, RStr<'_>, RStr<'_>, i32) -> RResult<RString, RString>;

impl RootModule for PluginModRef {
    abi_stable::declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "berth_plugin";
    const NAME: &'static str = "berth plugin";
    // The major number is the interface version: abi_stable refuses other majors itself.
    const VERSION_STRINGS: VersionStrings = VersionStrings {
        version: RStr::from_str("1.0.0"),
    };
}

/// Re-exports for the export macro (plugins never name abi_stable themselves).
#[doc(hidden)]
pub mod reexport {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
    pub use abi_stable::prefix_type::WithMetadata;
    pub use abi_stable::std_types::{RResult, RStr, RString};
}

/// Builds the module reference from the library's static module (used by the macro).
#[doc(hidden)]
pub const fn module_ref(
    m: &'static abi_stable::prefix_type::WithMetadata<PluginMod>,
) -> PluginModRef {
    PluginModRef(m.static_as_prefix())
}

#[cfg(test)]
mod tests {
    use abi_stable::library::RootModule;

    #[test]
    fn version_strings_major_is_the_interface_version() {
        let v = super::PluginModRef::VERSION_STRINGS.version.as_str();
        assert_eq!(
            v.split('.').next(),
            Some(crate::ABI_VERSION.to_string().as_str())
        );
    }

    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
