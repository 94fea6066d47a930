//! In-memory registry and runtime fixtures, to check those interfaces cross the ABI.

use berth_plugins::core::reference::Reference;
use berth_plugins::core::registry::{Credentials, FetchedManifest};
use berth_plugins::core::runtime::{Spec, State, Status, StdioFds};
use berth_plugins::core::{DriverError, DriverResult, Registry, Runtime};
use berth_plugins::serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;

fn poisoned<T>(_: T) -> DriverError {
    DriverError::Internal("poisoned".into())
}

/// Blobs and manifests in memory; `push_blob` checks the announced size.
struct MemReg {
    blobs: Mutex<BTreeMap<String, Vec<u8>>>,
    manifests: Mutex<BTreeMap<String, (String, Vec<u8>)>>,
}

pub fn memreg(_config: &Value) -> Result<Box<dyn Registry>, DriverError> {
    Ok(Box::new(MemReg {
        blobs: Mutex::new(BTreeMap::new()),
        manifests: Mutex::new(BTreeMap::new()),
    }))
}

impl Registry for MemReg {
    fn name(&self) -> String {
        "memreg".into()
    }
    fn login(&self, server: &str, creds: &Credentials) -> DriverResult<()> {
        if creds.password == "secret" {
            Ok(())
        } else {
            Err(DriverError::Unauthorized(format!(
                "login to {server} refused"
            )))
        }
    }
    fn fetch_manifest(&self, r: &Reference, _c: &Credentials) -> DriverResult<FetchedManifest> {
        let tag = r.tag.clone().unwrap_or_default();
        let m = self.manifests.lock().map_err(poisoned)?;
        let (media_type, bytes) = m
            .get(&tag)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(format!("manifest {tag} not found")))?;
        Ok(FetchedManifest {
            media_type,
            digest: format!("tag:{tag}"),
            bytes,
        })
    }
    fn fetch_blob(
        &self,
        _r: &Reference,
        digest: &str,
        _c: &Credentials,
        out: &mut dyn Write,
    ) -> DriverResult<u64> {
        let blobs = self.blobs.lock().map_err(poisoned)?;
        let b = blobs
            .get(digest)
            .ok_or_else(|| DriverError::NotFound(format!("blob {digest} not found")))?;
        out.write_all(b)
            .map_err(|e| DriverError::io("writing", e))?;
        Ok(b.len() as u64)
    }
    fn blob_exists(&self, _r: &Reference, digest: &str, _c: &Credentials) -> DriverResult<bool> {
        Ok(self.blobs.lock().map_err(poisoned)?.contains_key(digest))
    }
    fn push_blob(
        &self,
        _r: &Reference,
        digest: &str,
        size: u64,
        _c: &Credentials,
        data: &mut dyn Read,
    ) -> DriverResult<()> {
        let mut b = Vec::new();
        data.read_to_end(&mut b)
            .map_err(|e| DriverError::io("reading", e))?;
        if b.len() as u64 != size {
            return Err(DriverError::InvalidInput(format!(
                "blob {digest}: got {} bytes, announced {size}",
                b.len()
            )));
        }
        self.blobs
            .lock()
            .map_err(poisoned)?
            .insert(digest.into(), b);
        Ok(())
    }
    fn push_manifest(
        &self,
        r: &Reference,
        media_type: &str,
        bytes: &[u8],
        _c: &Credentials,
    ) -> DriverResult<String> {
        let tag = r.tag.clone().unwrap_or_default();
        self.manifests
            .lock()
            .map_err(poisoned)?
            .insert(tag.clone(), (media_type.into(), bytes.to_vec()));
        Ok(format!("tag:{tag}"))
    }
}

/// Containers as states in memory; `create` answers the stdout fd as the "pid".
struct FakeRt {
    states: Mutex<BTreeMap<String, State>>,
}

pub fn fakert(_config: &Value) -> Result<Box<dyn Runtime>, DriverError> {
    Ok(Box::new(FakeRt {
        states: Mutex::new(BTreeMap::new()),
    }))
}

impl FakeRt {
    fn set(&self, id: &str, status: Status) -> DriverResult<()> {
        let mut states = self.states.lock().map_err(poisoned)?;
        let s = states
            .get_mut(id)
            .ok_or_else(|| DriverError::NotFound(format!("container {id} not found")))?;
        s.status = status;
        Ok(())
    }
}

impl Runtime for FakeRt {
    fn name(&self) -> String {
        "fakert".into()
    }
    fn create(&self, id: &str, bundle: &Path, spec: &Spec, stdio: StdioFds) -> DriverResult<i32> {
        if spec.version().is_empty() || !bundle.is_absolute() {
            return Err(DriverError::InvalidInput("bad spec or bundle".into()));
        }
        let state = State {
            id: id.into(),
            status: Status::Created,
            pid: stdio.stdout,
        };
        self.states
            .lock()
            .map_err(poisoned)?
            .insert(id.into(), state);
        Ok(stdio.stdout)
    }
    fn start(&self, id: &str) -> DriverResult<()> {
        self.set(id, Status::Running)
    }
    fn kill(&self, id: &str, _signal: i32, _all: bool) -> DriverResult<()> {
        self.set(id, Status::Stopped)
    }
    fn delete(&self, id: &str) -> DriverResult<()> {
        self.states
            .lock()
            .map_err(poisoned)?
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| DriverError::NotFound(format!("container {id} not found")))
    }
    fn state(&self, id: &str) -> DriverResult<State> {
        self.states
            .lock()
            .map_err(poisoned)?
            .get(id)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(format!("container {id} not found")))
    }
    fn pause(&self, id: &str) -> DriverResult<()> {
        self.set(id, Status::Paused)
    }
    fn resume(&self, id: &str) -> DriverResult<()> {
        self.set(id, Status::Running)
    }
}
