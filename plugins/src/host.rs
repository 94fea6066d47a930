//! The host side of the ABI: proxies that implement the `core` traits by calling a loaded
//! library's vtable, carrying streams over pipes.

use crate::abi::PluginVTable;
use abi_stable::std_types::{RResult, RStr, RString};
use berth_core::network::{EndpointInfo, EndpointSpec, NetworkInfo, NetworkSpec};
use berth_core::storage::{Change, CreateOpts, Mount, Usage};
use berth_core::{DriverError, DriverResult, NetworkDriver, StorageDriver};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

type CallFn = extern "C" fn(u64, RStr<'_>, RStr<'_>, i32) -> RResult<RString, RString>;

fn call<T: DeserializeOwned>(
    f: CallFn,
    handle: u64,
    method: &str,
    args: Value,
    fd: i32,
) -> DriverResult<T> {
    let args = args.to_string();
    match f(handle, RStr::from(method), RStr::from(args.as_str()), fd) {
        RResult::ROk(s) => serde_json::from_str(s.as_str()).map_err(|e| {
            DriverError::Internal(format!("plugin answered {method} with bad JSON: {e}"))
        }),
        RResult::RErr(s) => Err(serde_json::from_str::<DriverError>(s.as_str())
            .unwrap_or_else(|_| DriverError::Internal(s.to_string()))),
    }
}

/// A storage driver living in a plugin library.
pub struct StorageProxy {
    pub(crate) vt: &'static PluginVTable,
    pub(crate) handle: u64,
}

impl StorageProxy {
    fn call<T: DeserializeOwned>(&self, method: &str, args: Value) -> DriverResult<T> {
        call(self.vt.storage_call, self.handle, method, args, -1)
    }
}

fn pipe() -> DriverResult<(std::io::PipeReader, std::io::PipeWriter)> {
    std::io::pipe().map_err(|e| DriverError::io("creating a pipe", e))
}

impl StorageDriver for StorageProxy {
    fn name(&self) -> String {
        self.call("name", json!({})).unwrap_or_default()
    }
    fn status(&self) -> Vec<(String, String)> {
        self.call("status", json!({})).unwrap_or_default()
    }
    fn create(&self, id: &str, parent: Option<&str>, opts: &CreateOpts) -> DriverResult<()> {
        self.call("create", json!({"id": id, "parent": parent, "opts": opts}))
    }
    fn remove(&self, id: &str) -> DriverResult<()> {
        self.call("remove", json!({"id": id}))
    }
    fn exists(&self, id: &str) -> bool {
        self.call("exists", json!({"id": id})).unwrap_or(false)
    }
    fn list(&self) -> DriverResult<Vec<String>> {
        self.call("list", json!({}))
    }
    fn mounts(&self, id: &str) -> DriverResult<Vec<Mount>> {
        self.call("mounts", json!({"id": id}))
    }
    fn apply_diff(&self, id: &str, diff: &mut dyn Read) -> DriverResult<u64> {
        let (r, mut w) = pipe()?;
        let (vt, handle) = (self.vt, self.handle);
        let args = json!({"id": id});
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let out = call::<u64>(vt.storage_call, handle, "apply_diff", args, r.as_raw_fd());
                drop(r);
                out
            });
            // Pump the caller's stream into the pipe; the plugin reading end may stop early
            // (an error): then writing fails with EPIPE and the plugin's error wins.
            let pumped = std::io::copy(diff, &mut w);
            drop(w);
            let result = worker.join().unwrap_or_else(|_| {
                Err(DriverError::Internal("plugin call thread panicked".into()))
            });
            match (result, pumped) {
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) => Err(DriverError::io("reading the layer stream", e)),
                (Ok(n), Ok(_)) => Ok(n),
            }
        })
    }
    fn diff(&self, id: &str, out: &mut dyn Write) -> DriverResult<()> {
        let (mut r, w) = pipe()?;
        let (vt, handle) = (self.vt, self.handle);
        let args = json!({"id": id});
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let res = call::<()>(vt.storage_call, handle, "diff", args, w.as_raw_fd());
                drop(w);
                res
            });
            let copied = std::io::copy(&mut r, out);
            drop(r);
            let result = worker.join().unwrap_or_else(|_| {
                Err(DriverError::Internal("plugin call thread panicked".into()))
            });
            result?;
            copied
                .map(|_| ())
                .map_err(|e| DriverError::io("writing the diff stream", e))
        })
    }
    fn changes(&self, id: &str) -> DriverResult<Vec<Change>> {
        self.call("changes", json!({"id": id}))
    }
    fn usage(&self, id: &str) -> DriverResult<Usage> {
        self.call("usage", json!({"id": id}))
    }
    fn cleanup(&self) -> DriverResult<()> {
        self.call("cleanup", json!({}))
    }
}

/// A network driver living in a plugin library.
pub struct NetworkProxy {
    pub(crate) vt: &'static PluginVTable,
    pub(crate) handle: u64,
}

impl NetworkProxy {
    fn call<T: DeserializeOwned>(&self, method: &str, args: Value) -> DriverResult<T> {
        call(self.vt.network_call, self.handle, method, args, -1)
    }
}

impl NetworkDriver for NetworkProxy {
    fn name(&self) -> String {
        self.call("name", json!({})).unwrap_or_default()
    }
    fn status(&self) -> Vec<(String, String)> {
        self.call("status", json!({})).unwrap_or_default()
    }
    fn create_network(&self, spec: &NetworkSpec) -> DriverResult<NetworkInfo> {
        self.call("create_network", json!({"spec": spec}))
    }
    fn delete_network(&self, network_id: &str) -> DriverResult<()> {
        self.call("delete_network", json!({"id": network_id}))
    }
    fn join(&self, spec: &EndpointSpec) -> DriverResult<EndpointInfo> {
        self.call("join", json!({"spec": spec}))
    }
    fn leave(&self, network_id: &str, endpoint_id: &str) -> DriverResult<()> {
        self.call(
            "leave",
            json!({"network_id": network_id, "endpoint_id": endpoint_id}),
        )
    }
    fn reconcile(&self, keep: &[String]) -> DriverResult<()> {
        self.call("reconcile", json!({"keep": keep}))
    }
}
