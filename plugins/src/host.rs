//! The host side of the ABI: the call helper and stream pumps, and the proxies that implement
//! the storage and network traits by calling a loaded library's root module. (Registry and
//! runtime proxies are in `host_more`.)

use crate::abi::CallFn;
use abi_stable::std_types::{RResult, RStr};
use berth_core::network::{
    EndpointInfo, EndpointSpec, NetworkCapabilities, NetworkInfo, NetworkSpec,
};
use berth_core::storage::{Change, CreateOpts, Mount, Usage};
use berth_core::stream::{produce, Produced};
use berth_core::{DriverError, DriverResult, NetworkDriver, StorageDriver};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;

/// Calls `method` on driver `handle` through `f`; `fd` is a stream or -1.
pub(crate) fn call<T: DeserializeOwned>(
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

/// A pipe for a stream, enlarged to 1 MiB when the system allows (fewer wake-ups per layer).
fn pipe() -> DriverResult<(std::io::PipeReader, std::io::PipeWriter)> {
    let (r, w) = std::io::pipe().map_err(|e| DriverError::io("creating a pipe", e))?;
    // SAFETY: F_SETPIPE_SZ on a pipe we own; failure (a lower pipe-max-size) is harmless.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    Ok((r, w))
}

fn joined<T>(r: std::thread::Result<DriverResult<T>>) -> DriverResult<T> {
    r.unwrap_or_else(|_| Err(DriverError::Internal("plugin call thread panicked".into())))
}

/// Calls a method that reads a stream: `src` is pumped into a pipe the plugin reads.
pub(crate) fn call_reading<T: DeserializeOwned + Send>(
    f: CallFn,
    handle: u64,
    method: &str,
    args: Value,
    src: &mut dyn Read,
) -> DriverResult<T> {
    let (r, mut w) = pipe()?;
    std::thread::scope(|s| {
        let worker = s.spawn(move || call::<T>(f, handle, method, args, r.as_raw_fd()));
        let mut buf = vec![0u8; 64 * 1024];
        let mut plugin_stopped = false;
        let pumped: std::io::Result<()> = loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            if plugin_stopped {
                continue; // draining: the caller's reader sees its whole stream
            }
            if let Err(e) = w.write_all(&buf[..n]) {
                if e.kind() != ErrorKind::BrokenPipe {
                    break Err(e);
                }
                plugin_stopped = true;
            }
        };
        drop(w);
        let result = joined(worker.join());
        let value = result?;
        pumped.map_err(|e| DriverError::io(format!("reading the {method} stream"), e))?;
        Ok(value)
    })
}

/// Calls a method that writes a stream: the plugin writes into a pipe copied to `dst`.
pub(crate) fn call_writing<T: DeserializeOwned + Send>(
    f: CallFn,
    handle: u64,
    method: &str,
    args: Value,
    dst: &mut dyn Write,
) -> DriverResult<T> {
    let (mut r, w) = pipe()?;
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let out = call::<T>(f, handle, method, args, w.as_raw_fd());
            drop(w);
            out
        });
        let copied = std::io::copy(&mut r, dst);
        // Closing our end makes a plugin still writing fail with EPIPE instead of blocking.
        drop(r);
        let value = joined(worker.join())?;
        copied.map_err(|e| DriverError::io(format!("writing the {method} stream"), e))?;
        Ok(value)
    })
}

/// Calls a method that writes a stream, on its own thread; returns the reader of that stream
/// (its end is reported once the method has returned; its error is the last `read`'s).
pub(crate) fn call_streaming(
    f: CallFn,
    handle: u64,
    method: &'static str,
    args: Value,
) -> DriverResult<Produced<Value>> {
    produce(&format!("plugin-{method}"), pipe()?, move |w| {
        call::<Value>(f, handle, method, args, w.as_raw_fd())
    })
}

/// A storage driver living in a plugin library.
pub struct StorageProxy {
    pub(crate) call: CallFn,
    pub(crate) handle: u64,
}

impl StorageProxy {
    fn call<T: DeserializeOwned>(&self, method: &str, args: Value) -> DriverResult<T> {
        call(self.call, self.handle, method, args, -1)
    }
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
        call_reading(
            self.call,
            self.handle,
            "apply_diff",
            json!({"id": id}),
            diff,
        )
    }
    fn independent_diffs(&self) -> bool {
        // A plugin built before the method existed answers "unknown method": false.
        self.call("independent_diffs", json!({})).unwrap_or(false)
    }
    fn diff_dir(&self, id: &str) -> DriverResult<Option<std::path::PathBuf>> {
        // A plugin built before the method existed answers "unknown method": no folder, so
        // the image store keeps whole tars for its layers, as it did then.
        Ok(self.call("diff_dir", json!({"id": id})).unwrap_or(None))
    }
    fn diff(&self, id: &str, out: &mut dyn Write) -> DriverResult<()> {
        call_writing(self.call, self.handle, "diff", json!({"id": id}), out)
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
    pub(crate) call: CallFn,
    pub(crate) handle: u64,
}

impl NetworkProxy {
    fn call<T: DeserializeOwned>(&self, method: &str, args: Value) -> DriverResult<T> {
        call(self.call, self.handle, method, args, -1)
    }
}

impl NetworkDriver for NetworkProxy {
    fn name(&self) -> String {
        self.call("name", json!({})).unwrap_or_default()
    }
    fn status(&self) -> Vec<(String, String)> {
        self.call("status", json!({})).unwrap_or_default()
    }
    fn capabilities(&self) -> NetworkCapabilities {
        // A plugin built before the call existed answers `Unsupported`: it claims nothing.
        self.call("capabilities", json!({})).unwrap_or_default()
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
