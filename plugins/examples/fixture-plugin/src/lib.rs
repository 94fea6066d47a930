//! Loader test fixtures: a plugin library whose drivers misbehave on purpose.
//!
//! - storage `failing`: its constructor always returns an error;
//! - storage `panic-init`: its constructor panics;
//! - storage `panicky`: constructs fine, then panics in `list` (other methods answer);
//! - network `memnet`: an in-memory network driver, to check network calls cross the ABI;
//! - registry `memreg` and runtime `fakert`: in-memory stand-ins, for the same purpose.
//!
//! Built with `--features bad-abi` the library claims interface version 999.

// The bad-abi build exports only `failing`.
#![cfg_attr(feature = "bad-abi", allow(dead_code))]

use berth_plugins::core::network::{EndpointInfo, EndpointSpec, NetworkInfo, NetworkSpec};
use berth_plugins::core::storage::{Change, CreateOpts, Mount, Usage};
use berth_plugins::core::{DriverError, DriverResult, NetworkDriver, StorageDriver};
use berth_plugins::serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Mutex;

mod others;

fn failing(_config: &Value) -> Result<Box<dyn StorageDriver>, DriverError> {
    Err(DriverError::InvalidInput(
        "fixture: this driver always refuses to start".into(),
    ))
}

fn panic_init(_config: &Value) -> Result<Box<dyn StorageDriver>, DriverError> {
    panic!("fixture: init panics on purpose")
}

fn panicky(_config: &Value) -> Result<Box<dyn StorageDriver>, DriverError> {
    Ok(Box::new(Panicky))
}

fn memnet(config: &Value) -> Result<Box<dyn NetworkDriver>, DriverError> {
    let prefix = config
        .get("prefix")
        .and_then(Value::as_str)
        .unwrap_or("mem")
        .to_string();
    Ok(Box::new(MemNet {
        prefix,
        networks: Mutex::new(BTreeMap::new()),
    }))
}

/// A storage driver that panics in `list`.
struct Panicky;

impl StorageDriver for Panicky {
    fn name(&self) -> String {
        "panicky".into()
    }
    fn status(&self) -> Vec<(String, String)> {
        vec![("Fixture".into(), "yes".into())]
    }
    fn create(&self, id: &str, _parent: Option<&str>, _opts: &CreateOpts) -> DriverResult<()> {
        Err(DriverError::Conflict(format!(
            "fixture: cannot create {id}"
        )))
    }
    fn remove(&self, _id: &str) -> DriverResult<()> {
        Ok(())
    }
    fn exists(&self, _id: &str) -> bool {
        false
    }
    fn list(&self) -> DriverResult<Vec<String>> {
        panic!("fixture: list panics on purpose")
    }
    fn mounts(&self, id: &str) -> DriverResult<Vec<Mount>> {
        Err(DriverError::NotFound(format!("layer {id} does not exist")))
    }
    fn apply_diff(&self, _id: &str, diff: &mut dyn Read) -> DriverResult<u64> {
        // Reads only the first byte, then stops: the host must cope with an early reader.
        let mut one = [0u8; 1];
        let n = diff
            .read(&mut one)
            .map_err(|e| DriverError::io("reading", e))?;
        Ok(n as u64)
    }
    fn diff(&self, _id: &str, out: &mut dyn Write) -> DriverResult<()> {
        // A stream larger than any pipe buffer, to exercise the host's copying thread.
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            out.write_all(&chunk)
                .map_err(|e| DriverError::io("writing", e))?;
        }
        Ok(())
    }
    fn changes(&self, _id: &str) -> DriverResult<Vec<Change>> {
        Ok(Vec::new())
    }
    fn usage(&self, _id: &str) -> DriverResult<Usage> {
        Ok(Usage::default())
    }
}

/// Networks kept in memory.
struct MemNet {
    prefix: String,
    networks: Mutex<BTreeMap<String, NetworkSpec>>,
}

impl MemNet {
    fn lock(&self) -> DriverResult<std::sync::MutexGuard<'_, BTreeMap<String, NetworkSpec>>> {
        self.networks
            .lock()
            .map_err(|_| DriverError::Internal("poisoned".into()))
    }
}

impl NetworkDriver for MemNet {
    fn name(&self) -> String {
        "memnet".into()
    }
    fn status(&self) -> Vec<(String, String)> {
        vec![("Prefix".into(), self.prefix.clone())]
    }
    fn create_network(&self, spec: &NetworkSpec) -> DriverResult<NetworkInfo> {
        let mut nets = self.lock()?;
        if nets.contains_key(&spec.id) {
            return Err(DriverError::AlreadyExists(format!(
                "network {} exists",
                spec.id
            )));
        }
        nets.insert(spec.id.clone(), spec.clone());
        let mut info = NetworkInfo {
            subnet: spec.subnet.clone().unwrap_or_default(),
            ..NetworkInfo::default()
        };
        info.details
            .insert("bridge".into(), format!("{}-{}", self.prefix, spec.name));
        Ok(info)
    }
    fn delete_network(&self, network_id: &str) -> DriverResult<()> {
        self.lock()?
            .remove(network_id)
            .map(|_| ())
            .ok_or_else(|| DriverError::NotFound(format!("network {network_id} not found")))
    }
    fn join(&self, spec: &EndpointSpec) -> DriverResult<EndpointInfo> {
        Err(DriverError::Unsupported(format!(
            "fixture: cannot join {}",
            spec.network_id
        )))
    }
    fn leave(&self, _network_id: &str, _endpoint_id: &str) -> DriverResult<()> {
        Ok(())
    }
    fn reconcile(&self, keep: &[String]) -> DriverResult<()> {
        self.lock()?.retain(|k, _| keep.contains(k));
        Ok(())
    }
}

#[cfg(not(feature = "bad-abi"))]
berth_plugins::export_plugin! {
    name: "berth-fixture",
    version: "0.0.1",
    storage: { "failing" => failing, "panic-init" => panic_init, "panicky" => panicky },
    network: { "memnet" => memnet },
    registry: { "memreg" => others::memreg },
    runtime: { "fakert" => others::fakert },
}

#[cfg(feature = "bad-abi")]
berth_plugins::export_plugin! {
    @abi 999; name: "berth-fixture-bad-abi", version: "0.0.1",
    storage: [("failing", failing)], network: [], registry: [], runtime: []
}
