//! The plugin side's per-kind method dispatch: decode `(handle, method, JSON args, fd)`, call
//! the driver object, encode the result — with panics caught at the boundary.

use crate::abi::reexport::{RResult, RStr, RString};
use crate::export::{panicked, Handle, HANDLES};
use berth_core::network::{EndpointSpec, NetworkSpec};
use berth_core::reference::Reference;
use berth_core::registry::Credentials;
use berth_core::runtime::{Spec, StdioFds};
use berth_core::storage::CreateOpts;
use berth_core::{DriverError, NetworkDriver, Registry, Runtime, StorageDriver};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fs::File;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

type Outcome = Result<Value, DriverError>;

/// Runs `f` with panics caught, encoding its outcome for the host.
fn guarded(method: &str, f: impl FnOnce() -> Outcome) -> RResult<RString, RString> {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panicked(method, &p)));
    match result {
        Ok(v) => RResult::ROk(RString::from(v.to_string())),
        Err(e) => RResult::RErr(RString::from(
            serde_json::to_string(&e).unwrap_or_else(|_| e.to_string()),
        )),
    }
}

fn handle<T>(h: u64, pick: fn(&Handle) -> Option<T>) -> Result<T, DriverError> {
    let handles = HANDLES
        .lock()
        .map_err(|_| DriverError::Internal("plugin state poisoned".into()))?;
    handles
        .get(h as usize)
        .and_then(pick)
        .ok_or_else(|| DriverError::Internal(format!("bad driver handle {h}")))
}

fn arg<T: DeserializeOwned>(args: &Value, key: &str) -> Result<T, DriverError> {
    serde_json::from_value(args.get(key).cloned().unwrap_or(Value::Null))
        .map_err(|e| DriverError::Internal(format!("bad argument {key}: {e}")))
}

fn out<T: serde::Serialize>(v: T) -> Outcome {
    serde_json::to_value(v).map_err(|e| DriverError::Internal(format!("encoding result: {e}")))
}

fn parse(args: RStr<'_>) -> Result<Value, DriverError> {
    serde_json::from_str(args.as_str())
        .map_err(|e| DriverError::Internal(format!("bad arguments: {e}")))
}

/// A duplicate of the host's stream fd as a File (the host keeps its own open for the call).
fn stream(fd: i32) -> Result<File, DriverError> {
    if fd < 0 {
        return Err(DriverError::Internal(
            "stream method called without a file descriptor".into(),
        ));
    }
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only reads `fd`, which the host keeps open for this call.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        let e = std::io::Error::last_os_error();
        return Err(DriverError::io("duplicating the stream fd", e));
    }
    // SAFETY: `dup` is a fresh descriptor nobody else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(dup) }))
}

fn unknown(kind: &str, method: &str) -> Outcome {
    Err(DriverError::Unsupported(format!(
        "unknown {kind} method {method}"
    )))
}

fn storage(d: &dyn StorageDriver, method: &str, a: &Value, fd: i32) -> Outcome {
    let id = || arg::<String>(a, "id");
    match method {
        "name" => out(d.name()),
        "status" => out(d.status()),
        "create" => {
            let parent: Option<String> = arg(a, "parent")?;
            let opts: CreateOpts = arg(a, "opts")?;
            out(d.create(&id()?, parent.as_deref(), &opts)?)
        }
        "remove" => out(d.remove(&id()?)?),
        "exists" => out(d.exists(&id()?)),
        "list" => out(d.list()?),
        "mounts" => out(d.mounts(&id()?)?),
        "apply_diff" => out(d.apply_diff(&id()?, &mut stream(fd)?)?),
        "independent_diffs" => out(d.independent_diffs()),
        "diff_dir" => out(d.diff_dir(&id()?)?),
        "diff" => out(d.diff(&id()?, &mut stream(fd)?)?),
        "changes" => out(d.changes(&id()?)?),
        "usage" => out(d.usage(&id()?)?),
        "cleanup" => out(d.cleanup()?),
        other => unknown("storage", other),
    }
}

fn network(d: &dyn NetworkDriver, method: &str, a: &Value, _fd: i32) -> Outcome {
    match method {
        "name" => out(d.name()),
        "status" => out(d.status()),
        "capabilities" => out(d.capabilities()),
        "create_network" => out(d.create_network(&arg::<NetworkSpec>(a, "spec")?)?),
        "delete_network" => out(d.delete_network(&arg::<String>(a, "id")?)?),
        "join" => out(d.join(&arg::<EndpointSpec>(a, "spec")?)?),
        "leave" => out(d.leave(
            &arg::<String>(a, "network_id")?,
            &arg::<String>(a, "endpoint_id")?,
        )?),
        "reconcile" => out(d.reconcile(&arg::<Vec<String>>(a, "keep")?)?),
        other => unknown("network", other),
    }
}

fn registry(d: &dyn Registry, method: &str, a: &Value, fd: i32) -> Outcome {
    let r = || arg::<Reference>(a, "reference");
    let creds = || arg::<Credentials>(a, "creds");
    let digest = || arg::<String>(a, "digest");
    match method {
        "name" => out(d.name()),
        "login" => out(d.login(&arg::<String>(a, "server")?, &creds()?)?),
        "fetch_manifest" => out(d.fetch_manifest(&r()?, &creds()?)?),
        "fetch_blob" => out(d.fetch_blob(&r()?, &digest()?, &creds()?, &mut stream(fd)?)?),
        "blob_exists" => out(d.blob_exists(&r()?, &digest()?, &creds()?)?),
        "push_blob" => {
            let size: u64 = arg(a, "size")?;
            out(d.push_blob(&r()?, &digest()?, size, &creds()?, &mut stream(fd)?)?)
        }
        "push_manifest" => {
            let bytes: Vec<u8> = arg(a, "bytes")?;
            let media_type: String = arg(a, "media_type")?;
            out(d.push_manifest(&r()?, &media_type, &bytes, &creds()?)?)
        }
        other => unknown("registry", other),
    }
}

fn runtime(d: &dyn Runtime, method: &str, a: &Value, _fd: i32) -> Outcome {
    let id = || arg::<String>(a, "id");
    match method {
        "name" => out(d.name()),
        "create" => {
            let bundle: PathBuf = arg(a, "bundle")?;
            let spec: Spec = arg(a, "spec")?;
            let [stdin, stdout, stderr]: [i32; 3] = arg(a, "stdio")?;
            let stdio = StdioFds {
                stdin,
                stdout,
                stderr,
            };
            out(d.create(&id()?, &bundle, &spec, stdio)?)
        }
        "start" => out(d.start(&id()?)?),
        "kill" => out(d.kill(&id()?, arg(a, "signal")?, arg(a, "all")?)?),
        "delete" => out(d.delete(&id()?)?),
        "state" => out(d.state(&id()?)?),
        "pause" => out(d.pause(&id()?)?),
        "resume" => out(d.resume(&id()?)?),
        // The descriptor crosses as a number (same process); the host takes it over.
        "take_console" => out(d.take_console(&id()?).map(IntoRawFd::into_raw_fd)),
        "set_up_error" => out(d.set_up_error(&id()?)),
        other => unknown("runtime", other),
    }
}

/// Finds the handle's driver with `pick` and runs `run` on it, panics caught.
fn dispatch<D: ?Sized>(
    h: u64,
    method: RStr<'_>,
    args: RStr<'_>,
    fd: i32,
    pick: fn(&Handle) -> Option<Arc<D>>,
    run: fn(&D, &str, &Value, i32) -> Outcome,
) -> RResult<RString, RString> {
    guarded(method.as_str(), || {
        let d = handle(h, pick)?;
        run(&d, method.as_str(), &parse(args)?, fd)
    })
}

/// Defines one `extern "C"` entry that dispatches to the handle's driver of one kind.
macro_rules! c_entry {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $run:ident) => {
        $(#[$doc])*
        pub extern "C" fn $name(
            h: u64,
            method: RStr<'_>,
            args: RStr<'_>,
            fd: i32,
        ) -> RResult<RString, RString> {
            let pick = |x: &Handle| match x {
                Handle::$variant(d) => Some(d.clone()),
                _ => None,
            };
            dispatch(h, method, args, fd, pick, $run)
        }
    };
}

c_entry!(
    /// C entry for storage calls (shared by every exporting library).
    storage_call_c, Storage, storage
);
c_entry!(
    /// C entry for network calls.
    network_call_c, Network, network
);
c_entry!(
    /// C entry for registry calls.
    registry_call_c, Registry, registry
);
c_entry!(
    /// C entry for isolation runtime calls.
    runtime_call_c, Runtime, runtime
);
