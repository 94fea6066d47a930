//! null-network: an out-of-tree berth network plugin, written against `berth-plugins` only.
//!
//! The `null` driver gives containers no interface at all: a container on a `null` network
//! keeps only the loopback device of its own network namespace (like `--network none`, but as
//! a user-created network: `docker network create -d null x`). Networks are remembered in
//! memory; berthd re-creates its networks at every start, so nothing needs to be on disk.
//!
//! Build it with `cargo build` and name it in daemon.json:
//! `"plugins": {"drivers": {"null": "/path/libnull_network.so"}}`.

use berth_plugins::core::network::{
    EndpointInfo, EndpointSpec, NetworkCapabilities, NetworkInfo, NetworkSpec,
};
use berth_plugins::core::{DriverError, DriverResult, NetworkDriver};
use berth_plugins::serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

/// The driver: network ids and, per network, the endpoints joined.
#[derive(Default)]
struct Null {
    networks: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

/// The constructor berthd calls with `{"root": ...}` (unused: the driver keeps no files).
fn new_null(_config: &Value) -> Result<Box<dyn NetworkDriver>, DriverError> {
    Ok(Box::new(Null::default()))
}

berth_plugins::export_plugin! {
    name: "null-network",
    version: env!("CARGO_PKG_VERSION"),
    network: { "null" => new_null },
}

impl Null {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.networks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl NetworkDriver for Null {
    fn name(&self) -> String {
        "null".into()
    }

    fn status(&self) -> Vec<(String, String)> {
        vec![("Networks".into(), self.lock().len().to_string())]
    }

    fn capabilities(&self) -> NetworkCapabilities {
        // No interface, no addresses, no ports: the conformance suite checks only the
        // lifecycle (create, join, leave, delete, typed errors) and that nothing is left.
        NetworkCapabilities::default()
    }

    fn create_network(&self, spec: &NetworkSpec) -> DriverResult<NetworkInfo> {
        if spec.subnet.is_some()
            || spec.gateway.is_some()
            || spec.ip_range.is_some()
            || spec.subnet_v6.is_some()
        {
            return Err(DriverError::InvalidInput(
                "the null driver hands out no addresses: --subnet, --gateway and --ip-range are not supported".into(),
            ));
        }
        // Idempotent: berthd re-creates its networks at start.
        self.lock().entry(spec.id.clone()).or_default();
        Ok(NetworkInfo::default())
    }

    fn delete_network(&self, network_id: &str) -> DriverResult<()> {
        let mut nets = self.lock();
        if nets.get(network_id).is_some_and(|eps| !eps.is_empty()) {
            return Err(DriverError::Conflict(format!(
                "network {network_id} has active endpoints"
            )));
        }
        nets.remove(network_id)
            .map(|_| ())
            .ok_or_else(|| DriverError::NotFound(format!("network {network_id} not found")))
    }

    fn join(&self, spec: &EndpointSpec) -> DriverResult<EndpointInfo> {
        if spec.ip.is_some() || !spec.ports.is_empty() {
            return Err(DriverError::InvalidInput(
                "the null driver has no addresses or ports to give".into(),
            ));
        }
        let mut nets = self.lock();
        let eps = nets.get_mut(&spec.network_id).ok_or_else(|| {
            DriverError::NotFound(format!("network {} not found", spec.network_id))
        })?;
        if !eps.insert(spec.endpoint_id.clone()) {
            return Err(DriverError::AlreadyExists(format!(
                "endpoint {} already exists in network {}",
                spec.endpoint_id, spec.network_id
            )));
        }
        // Nothing to create: the namespace keeps only its loopback device, and the answer
        // (no interface, no routes, no DNS wishes) says so.
        Ok(EndpointInfo::default())
    }

    fn leave(&self, network_id: &str, endpoint_id: &str) -> DriverResult<()> {
        if let Some(eps) = self.lock().get_mut(network_id) {
            eps.remove(endpoint_id);
        }
        Ok(())
    }

    fn reconcile(&self, keep: &[String]) -> DriverResult<()> {
        self.lock().retain(|id, _| keep.contains(id));
        Ok(())
    }
}
