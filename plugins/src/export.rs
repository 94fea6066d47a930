//! The plugin side of the ABI: what [`export_plugin!`](crate::export_plugin) expands to calls
//! into these functions, which keep the driver objects, decode calls and catch panics.

use crate::abi::reexport::{RResult, RStr, RString};
use berth_core::network::{EndpointSpec, NetworkSpec};
use berth_core::storage::CreateOpts;
use berth_core::{DriverError, NetworkDriver, StorageDriver};
use serde_json::{json, Value};
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// A storage driver constructor.
pub type StorageCtor = fn(&Value) -> Result<Box<dyn StorageDriver>, DriverError>;
/// A network driver constructor.
pub type NetworkCtor = fn(&Value) -> Result<Box<dyn NetworkDriver>, DriverError>;

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
}

enum Handle {
    Storage(Arc<dyn StorageDriver>),
    Network(Arc<dyn NetworkDriver>),
}

static HANDLES: Mutex<Vec<Handle>> = Mutex::new(Vec::new());

fn guarded(
    what: &str,
    f: impl FnOnce() -> Result<Value, DriverError>,
) -> RResult<RString, RString> {
    let result = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(DriverError::Internal(format!(
            "plugin panicked in {what}: {}",
            panic_text(&p)
        ))),
    };
    match result {
        Ok(v) => RResult::ROk(RString::from(v.to_string())),
        Err(e) => RResult::RErr(RString::from(
            serde_json::to_string(&e).unwrap_or_else(|_| e.to_string()),
        )),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// `describe` for a library.
pub fn describe(e: &Exported) -> RString {
    let drivers: Vec<Value> = e
        .storage
        .iter()
        .map(|(n, _)| json!({"kind": "storage", "name": n}))
        .chain(
            e.network
                .iter()
                .map(|(n, _)| json!({"kind": "network", "name": n})),
        )
        .collect();
    RString::from(json!({"name": e.name, "version": e.version, "drivers": drivers}).to_string())
}

/// `open` for a library.
pub fn open(
    e: &Exported,
    kind: RStr<'_>,
    name: RStr<'_>,
    config: RStr<'_>,
) -> RResult<u64, RString> {
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<u64, String> {
        let config: Value = serde_json::from_str(config.as_str())
            .map_err(|e| format!("bad configuration JSON: {e}"))?;
        let handle = match kind.as_str() {
            "storage" => {
                let ctor = e
                    .storage
                    .iter()
                    .find(|(n, _)| *n == name.as_str())
                    .ok_or("no such storage driver")?;
                Handle::Storage(Arc::from((ctor.1)(&config).map_err(|e| e.to_string())?))
            }
            "network" => {
                let ctor = e
                    .network
                    .iter()
                    .find(|(n, _)| *n == name.as_str())
                    .ok_or("no such network driver")?;
                Handle::Network(Arc::from((ctor.1)(&config).map_err(|e| e.to_string())?))
            }
            other => return Err(format!("unsupported driver kind {other}")),
        };
        let mut handles = HANDLES
            .lock()
            .map_err(|_| "plugin state poisoned".to_string())?;
        handles.push(handle);
        Ok(handles.len() as u64 - 1)
    }));
    match r {
        Ok(Ok(h)) => RResult::ROk(h),
        Ok(Err(e)) => RResult::RErr(RString::from(e)),
        Err(p) => RResult::RErr(RString::from(format!(
            "plugin panicked in init: {}",
            panic_text(&p)
        ))),
    }
}

fn storage_of(handle: u64) -> Result<Arc<dyn StorageDriver>, DriverError> {
    let handles = HANDLES
        .lock()
        .map_err(|_| DriverError::Internal("plugin state poisoned".into()))?;
    match handles.get(handle as usize) {
        Some(Handle::Storage(d)) => Ok(d.clone()),
        _ => Err(DriverError::Internal(format!(
            "bad storage handle {handle}"
        ))),
    }
}

fn network_of(handle: u64) -> Result<Arc<dyn NetworkDriver>, DriverError> {
    let handles = HANDLES
        .lock()
        .map_err(|_| DriverError::Internal("plugin state poisoned".into()))?;
    match handles.get(handle as usize) {
        Some(Handle::Network(d)) => Ok(d.clone()),
        _ => Err(DriverError::Internal(format!(
            "bad network handle {handle}"
        ))),
    }
}

fn arg<T: serde::de::DeserializeOwned>(args: &Value, key: &str) -> Result<T, DriverError> {
    serde_json::from_value(args.get(key).cloned().unwrap_or(Value::Null))
        .map_err(|e| DriverError::Internal(format!("bad argument {key}: {e}")))
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, DriverError> {
    serde_json::to_value(v).map_err(|e| DriverError::Internal(format!("encoding result: {e}")))
}

/// Takes a duplicate of the host's stream fd as a File.
fn stream(fd: i32) -> Result<File, DriverError> {
    if fd < 0 {
        return Err(DriverError::Internal(
            "stream call without a file descriptor".into(),
        ));
    }
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor the host keeps open for this call.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(DriverError::io(
            "duplicating stream fd",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `dup` is a fresh descriptor we own.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(dup) }))
}

/// `storage_call` for a library.
pub fn storage_call(
    handle: u64,
    method: RStr<'_>,
    args: RStr<'_>,
    fd: i32,
) -> RResult<RString, RString> {
    let method = method.as_str().to_string();
    guarded(&method.clone(), || {
        let d = storage_of(handle)?;
        let args: Value = serde_json::from_str(args.as_str())
            .map_err(|e| DriverError::Internal(format!("bad args: {e}")))?;
        let id = || arg::<String>(&args, "id");
        match method.as_str() {
            "name" => to_value(d.name()),
            "status" => to_value(d.status()),
            "create" => {
                let parent: Option<String> = arg(&args, "parent")?;
                let opts: CreateOpts = arg(&args, "opts")?;
                to_value(d.create(&id()?, parent.as_deref(), &opts)?)
            }
            "remove" => to_value(d.remove(&id()?)?),
            "exists" => to_value(d.exists(&id()?)),
            "list" => to_value(d.list()?),
            "mounts" => to_value(d.mounts(&id()?)?),
            "apply_diff" => {
                let mut f = stream(fd)?;
                to_value(d.apply_diff(&id()?, &mut f)?)
            }
            "diff" => {
                let mut f = stream(fd)?;
                to_value(d.diff(&id()?, &mut f)?)
            }
            "changes" => to_value(d.changes(&id()?)?),
            "usage" => to_value(d.usage(&id()?)?),
            "cleanup" => to_value(d.cleanup()?),
            other => Err(DriverError::Unsupported(format!(
                "unknown storage method {other}"
            ))),
        }
    })
}

/// `network_call` for a library.
pub fn network_call(
    handle: u64,
    method: RStr<'_>,
    args: RStr<'_>,
    _fd: i32,
) -> RResult<RString, RString> {
    let method = method.as_str().to_string();
    guarded(&method.clone(), || {
        let d = network_of(handle)?;
        let args: Value = serde_json::from_str(args.as_str())
            .map_err(|e| DriverError::Internal(format!("bad args: {e}")))?;
        match method.as_str() {
            "name" => to_value(d.name()),
            "status" => to_value(d.status()),
            "create_network" => to_value(d.create_network(&arg::<NetworkSpec>(&args, "spec")?)?),
            "delete_network" => to_value(d.delete_network(&arg::<String>(&args, "id")?)?),
            "join" => to_value(d.join(&arg::<EndpointSpec>(&args, "spec")?)?),
            "leave" => to_value(d.leave(
                &arg::<String>(&args, "network_id")?,
                &arg::<String>(&args, "endpoint_id")?,
            )?),
            "reconcile" => to_value(d.reconcile(&arg::<Vec<String>>(&args, "keep")?)?),
            other => Err(DriverError::Unsupported(format!(
                "unknown network method {other}"
            ))),
        }
    })
}

/// Exports a plugin library. See the crate documentation.
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:expr,
        version: $ver:expr,
        storage: { $($sname:literal => $sctor:path),* $(,)? },
        network: { $($nname:literal => $nctor:path),* $(,)? } $(,)?
    ) => {
        $crate::export_plugin! { @abi $crate::ABI_VERSION, name: $name, version: $ver,
            storage: { $($sname => $sctor),* }, network: { $($nname => $nctor),* } }
    };
    (
        @abi $abi:expr, name: $name:expr, version: $ver:expr,
        storage: { $($sname:literal => $sctor:path),* $(,)? },
        network: { $($nname:literal => $nctor:path),* $(,)? } $(,)?
    ) => {
        static __BERTH_EXPORTED: $crate::export::Exported = $crate::export::Exported {
            name: $name,
            version: $ver,
            storage: &[$(($sname, $sctor as $crate::export::StorageCtor)),*],
            network: &[$(($nname, $nctor as $crate::export::NetworkCtor)),*],
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
        static __BERTH_VTABLE: $crate::abi::PluginVTable = $crate::abi::PluginVTable {
            abi_version: $abi,
            describe: __berth_describe,
            open: __berth_open,
            storage_call: $crate::export::storage_call_c,
            network_call: $crate::export::network_call_c,
        };
        /// The plugin's vtable (berth plugin ABI).
        #[no_mangle]
        pub extern "C" fn berth_plugin_v1() -> &'static $crate::abi::PluginVTable {
            &__BERTH_VTABLE
        }
        /// The vtable's layout, checked by the loader before anything else.
        #[no_mangle]
        pub extern "C" fn berth_plugin_layout() -> &'static $crate::abi::reexport::TypeLayout {
            $crate::abi::layout()
        }
    };
}

/// C entry for storage calls (shared by every exporting library).
pub extern "C" fn storage_call_c(
    handle: u64,
    method: RStr<'_>,
    args: RStr<'_>,
    fd: i32,
) -> RResult<RString, RString> {
    storage_call(handle, method, args, fd)
}

/// C entry for network calls.
pub extern "C" fn network_call_c(
    handle: u64,
    method: RStr<'_>,
    args: RStr<'_>,
    fd: i32,
) -> RResult<RString, RString> {
    network_call(handle, method, args, fd)
}
