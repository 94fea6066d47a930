//! The plugin side of the ABI: [`export_plugin!`](crate::export_plugin) builds the root
//! module from these functions, which keep the driver objects, open them and catch panics.
//! The per-kind method dispatch lives in `export_calls`.

use crate::abi::reexport::{RResult, RStr, RString};
use berth_core::{DriverError, NetworkDriver, Registry, Runtime, StorageDriver};
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

pub use crate::export_calls::{network_call_c, registry_call_c, runtime_call_c, storage_call_c};

/// A storage driver constructor.
pub type StorageCtor = fn(&Value) -> Result<Box<dyn StorageDriver>, DriverError>;
/// A network driver constructor.
pub type NetworkCtor = fn(&Value) -> Result<Box<dyn NetworkDriver>, DriverError>;
/// A registry constructor.
pub type RegistryCtor = fn(&Value) -> Result<Box<dyn Registry>, DriverError>;
/// An isolation runtime constructor.
pub type RuntimeCtor = fn(&Value) -> Result<Box<dyn Runtime>, DriverError>;

/// What a library exports (built by the macro as a static).
pub struct Exported {
    /// Plugin name.
    pub name: &'static str,
    /// Plugin version.
    pub version: &'static str,
    /// Storage drivers by name.
    pub storage: &'static [(&'static str, StorageCtor)],
    /// Network drivers by name.
    pub network: &'static [(&'static str, NetworkCtor)],
    /// Registries by name.
    pub registry: &'static [(&'static str, RegistryCtor)],
    /// Isolation runtimes by name.
    pub runtime: &'static [(&'static str, RuntimeCtor)],
}

/// An opened driver object, addressed by the host through its index.
pub(crate) enum Handle {
    Storage(Arc<dyn StorageDriver>),
    Network(Arc<dyn NetworkDriver>),
    Registry(Arc<dyn Registry>),
    Runtime(Arc<dyn Runtime>),
}

/// The drivers this library opened (each library has its own copy of this crate's statics).
pub(crate) static HANDLES: Mutex<Vec<Handle>> = Mutex::new(Vec::new());
/// The library's plugin name, for panic messages.
static PLUGIN_NAME: OnceLock<&'static str> = OnceLock::new();

/// The text of a caught panic payload.
pub(crate) fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into())
}

/// The `DriverError` for a panic caught in `what`.
pub(crate) fn panicked(what: &str, p: &Box<dyn std::any::Any + Send>) -> DriverError {
    let name = PLUGIN_NAME.get().copied().unwrap_or("(unnamed)");
    DriverError::Internal(format!(
        "plugin {name} panicked in {what}: {}",
        panic_text(p)
    ))
}

/// `describe` for a library.
pub fn describe(e: &Exported) -> RString {
    let _ = PLUGIN_NAME.set(e.name);
    let names = |kind: &str, list: Vec<&str>| -> Vec<Value> {
        list.into_iter()
            .map(|n| json!({"kind": kind, "name": n}))
            .collect()
    };
    let mut drivers = names("storage", e.storage.iter().map(|d| d.0).collect());
    drivers.extend(names("network", e.network.iter().map(|d| d.0).collect()));
    drivers.extend(names("registry", e.registry.iter().map(|d| d.0).collect()));
    drivers.extend(names("runtime", e.runtime.iter().map(|d| d.0).collect()));
    RString::from(json!({"name": e.name, "version": e.version, "drivers": drivers}).to_string())
}

fn find<T: Copy>(list: &[(&str, T)], kind: &str, name: &str) -> Result<T, String> {
    list.iter()
        .find(|(n, _)| *n == name)
        .map(|d| d.1)
        .ok_or_else(|| format!("this library provides no {kind} driver {name:?}"))
}

fn construct(e: &Exported, kind: &str, name: &str, config: &Value) -> Result<Handle, String> {
    let err = |e: DriverError| e.to_string();
    Ok(match kind {
        "storage" => Handle::Storage(Arc::from(
            find(e.storage, kind, name)?(config).map_err(err)?,
        )),
        "network" => Handle::Network(Arc::from(
            find(e.network, kind, name)?(config).map_err(err)?,
        )),
        "registry" => Handle::Registry(Arc::from(
            find(e.registry, kind, name)?(config).map_err(err)?,
        )),
        "runtime" => Handle::Runtime(Arc::from(
            find(e.runtime, kind, name)?(config).map_err(err)?,
        )),
        other => return Err(format!("unknown driver kind {other:?}")),
    })
}

/// `open` for a library: runs the constructor, keeps the object, returns its handle.
pub fn open(
    e: &Exported,
    kind: RStr<'_>,
    name: RStr<'_>,
    config: RStr<'_>,
) -> RResult<u64, RString> {
    let _ = PLUGIN_NAME.set(e.name);
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<u64, String> {
        let config: Value = serde_json::from_str(config.as_str())
            .map_err(|e| format!("bad configuration JSON: {e}"))?;
        let handle = construct(e, kind.as_str(), name.as_str(), &config)?;
        let mut handles = HANDLES
            .lock()
            .map_err(|_| "plugin state poisoned".to_string())?;
        handles.push(handle);
        Ok(handles.len() as u64 - 1)
    }));
    match r {
        Ok(Ok(h)) => RResult::ROk(h),
        Ok(Err(e)) => RResult::RErr(RString::from(e)),
        Err(p) => RResult::RErr(RString::from(panicked("init", &p).to_string())),
    }
}

/// Exports a plugin library; see the crate documentation. Every section is optional but they
/// come in this order:
///
/// ```ignore
/// berth_plugins::export_plugin! {
///     name: "my-plugin",
///     version: env!("CARGO_PKG_VERSION"),
///     storage: { "mine" => crate::new_storage },
///     network: { "mynet" => crate::new_network },
///     registry: { },
///     runtime: { },
/// }
/// ```
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:expr,
        version: $ver:expr
        $(, storage: { $($sname:literal => $sctor:path),* $(,)? })?
        $(, network: { $($nname:literal => $nctor:path),* $(,)? })?
        $(, registry: { $($gname:literal => $gctor:path),* $(,)? })?
        $(, runtime: { $($rname:literal => $rctor:path),* $(,)? })?
        $(,)?
    ) => {
        $crate::export_plugin! { @abi $crate::ABI_VERSION; name: $name, version: $ver,
            storage: [$($(($sname, $sctor)),*)?], network: [$($(($nname, $nctor)),*)?],
            registry: [$($(($gname, $gctor)),*)?], runtime: [$($(($rname, $rctor)),*)?] }
    };
    (
        @abi $abi:expr; name: $name:expr, version: $ver:expr,
        storage: [$(($sname:literal, $sctor:path)),*], network: [$(($nname:literal, $nctor:path)),*],
        registry: [$(($gname:literal, $gctor:path)),*], runtime: [$(($rname:literal, $rctor:path)),*]
    ) => {
        static __BERTH_EXPORTED: $crate::export::Exported = $crate::export::Exported {
            name: $name,
            version: $ver,
            storage: &[$(($sname, $sctor as $crate::export::StorageCtor)),*],
            network: &[$(($nname, $nctor as $crate::export::NetworkCtor)),*],
            registry: &[$(($gname, $gctor as $crate::export::RegistryCtor)),*],
            runtime: &[$(($rname, $rctor as $crate::export::RuntimeCtor)),*],
        };
        extern "C" fn __berth_describe() -> $crate::abi::reexport::RString {
            $crate::export::describe(&__BERTH_EXPORTED)
        }
        extern "C" fn __berth_open(
            kind: $crate::abi::reexport::RStr<'_>,
            name: $crate::abi::reexport::RStr<'_>,
            config: $crate::abi::reexport::RStr<'_>,
        ) -> $crate::abi::reexport::RResult<u64, $crate::abi::reexport::RString> {
            $crate::export::open(&__BERTH_EXPORTED, kind, name, config)
        }
        const __BERTH_MODULE: &$crate::abi::reexport::WithMetadata<$crate::abi::PluginMod> =
            &$crate::abi::reexport::WithMetadata::new($crate::abi::PluginMod {
                abi_version: $abi,
                describe: __berth_describe,
                open: __berth_open,
                storage_call: $crate::export::storage_call_c,
                network_call: $crate::export::network_call_c,
                registry_call: $crate::export::registry_call_c,
                runtime_call: $crate::export::runtime_call_c,
            });
        fn __berth_root_module() -> $crate::abi::PluginModRef {
            $crate::abi::module_ref(__BERTH_MODULE)
        }
        extern "C" fn __berth_root_loader() -> $crate::abi::reexport::RootModuleResult {
            $crate::abi::reexport::__call_root_module_loader(__berth_root_module)
        }
        /// The library's root module header (the berth plugin ABI), as abi_stable lays it out;
        /// the name is abi_stable's mangled root-module symbol.
        #[no_mangle]
        #[allow(non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi::reexport::LibHeader =
            // SAFETY: the constructor returns the root module of type `PluginModRef`, the
            // type the header is declared with.
            unsafe {
                $crate::abi::reexport::LibHeader::from_constructor::<$crate::abi::PluginModRef>(
                    __berth_root_loader,
                    $crate::abi::reexport::CheckTypeLayout::Yes,
                )
            };
    };
}
