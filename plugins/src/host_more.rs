//! Host-side proxies for the registry and isolation runtime traits (see `host` for the call
//! helper and the stream pumps they share with storage).

use crate::abi::CallFn;
use crate::host::{call, call_reading, call_streaming, call_writing};
use berth_core::reference::Reference;
use berth_core::registry::{Credentials, FetchedManifest};
use berth_core::runtime::{Spec, State, StdioFds};
use berth_core::{DriverError, DriverResult, Registry, Runtime};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// A registry living in a plugin library.
pub struct RegistryProxy {
    pub(crate) call: CallFn,
    pub(crate) handle: u64,
}

impl RegistryProxy {
    fn call<T: DeserializeOwned>(&self, method: &str, args: Value) -> DriverResult<T> {
        call(self.call, self.handle, method, args, -1)
    }
}

impl Registry for RegistryProxy {
    fn name(&self) -> String {
        self.call("name", json!({})).unwrap_or_default()
    }
    fn login(&self, server: &str, creds: &Credentials) -> DriverResult<()> {
        self.call("login", json!({"server": server, "creds": creds}))
    }
    fn fetch_manifest(
        &self,
        reference: &Reference,
        creds: &Credentials,
    ) -> DriverResult<FetchedManifest> {
        self.call(
            "fetch_manifest",
            json!({"reference": reference, "creds": creds}),
        )
    }
    fn fetch_blob(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
        out: &mut dyn Write,
    ) -> DriverResult<u64> {
        let args = json!({"reference": reference, "digest": digest, "creds": creds});
        call_writing(self.call, self.handle, "fetch_blob", args, out)
    }
    fn open_blob(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
    ) -> DriverResult<Box<dyn Read + Send>> {
        let args = json!({"reference": reference, "digest": digest, "creds": creds});
        Ok(Box::new(call_streaming(
            self.call,
            self.handle,
            "fetch_blob",
            args,
        )?))
    }
    fn blob_exists(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
    ) -> DriverResult<bool> {
        self.call(
            "blob_exists",
            json!({"reference": reference, "digest": digest, "creds": creds}),
        )
    }
    fn push_blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        creds: &Credentials,
        data: &mut dyn Read,
    ) -> DriverResult<()> {
        let args = json!({"reference": reference, "digest": digest, "size": size, "creds": creds});
        call_reading(self.call, self.handle, "push_blob", args, data)
    }
    fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
        creds: &Credentials,
    ) -> DriverResult<String> {
        self.call(
            "push_manifest",
            json!({"reference": reference, "media_type": media_type, "bytes": bytes, "creds": creds}),
        )
    }
}

/// An isolation runtime living in a plugin library. Stdio descriptors cross as numbers: the
/// library runs in the same process.
pub struct RuntimeProxy {
    pub(crate) call: CallFn,
    pub(crate) handle: u64,
}

impl RuntimeProxy {
    fn call<T: DeserializeOwned>(&self, method: &str, args: Value) -> DriverResult<T> {
        call(self.call, self.handle, method, args, -1)
    }
}

impl Runtime for RuntimeProxy {
    fn name(&self) -> String {
        self.call("name", json!({})).unwrap_or_default()
    }
    fn create(&self, id: &str, bundle: &Path, spec: &Spec, stdio: StdioFds) -> DriverResult<i32> {
        let fds = [stdio.stdin, stdio.stdout, stdio.stderr];
        self.call(
            "create",
            json!({"id": id, "bundle": bundle, "spec": spec, "stdio": fds}),
        )
    }
    fn start(&self, id: &str) -> DriverResult<()> {
        self.call("start", json!({"id": id}))
    }
    fn kill(&self, id: &str, signal: i32, all: bool) -> DriverResult<()> {
        self.call("kill", json!({"id": id, "signal": signal, "all": all}))
    }
    fn delete(&self, id: &str) -> DriverResult<()> {
        self.call("delete", json!({"id": id}))
    }
    fn state(&self, id: &str) -> DriverResult<State> {
        self.call("state", json!({"id": id}))
    }
    fn pause(&self, id: &str) -> DriverResult<()> {
        self.call("pause", json!({"id": id}))
    }
    fn resume(&self, id: &str) -> DriverResult<()> {
        self.call("resume", json!({"id": id}))
    }
    fn take_console(&self, id: &str) -> Option<OwnedFd> {
        let fd: Option<RawFd> = self.call("take_console", json!({"id": id})).ok()?;
        // SAFETY: the plugin runs in this process and gave up the descriptor (`into_raw_fd`)
        // for us to own; it is not used by anybody else from now on.
        fd.filter(|f| *f >= 0)
            .map(|f| unsafe { OwnedFd::from_raw_fd(f) })
    }
    fn set_up_error(&self, id: &str) -> Option<DriverError> {
        self.call("set_up_error", json!({"id": id})).ok().flatten()
    }
}
