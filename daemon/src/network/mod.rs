//! The daemon-side network manager: the network store (`<data-root>/network/networks/<id>.json`,
//! each file Docker's `NetworkResource` plus the driver's network id), the predefined networks
//! `bridge`, `host` and `none`, lookup by id / name / id prefix, and filters.
//!
//! README — how the rest of berthd uses this:
//! * `ctx.networks.get(key)` finds a network (Docker's 404 text otherwise); `list()` returns
//!   them all; records are typed [`NetworkRecord`]s (Docker's `NetworkResource` plus the
//!   driver's id), read through the migration's tolerant parse.
//! * A network's kernel side belongs to its driver (`ctx.network` for `bridge`, third-party
//!   drivers through [`Networks::driver`]), keyed by [`NetworkRecord::driver_id`]: the default network's
//!   driver id is `"bridge"`, user networks use their 64-hex id. Containers join and leave
//!   through [`endpoints`] (`plan` at create, `join_all` at start, `leave_all` at exit,
//!   `join_one` for `network connect`).
//! * `Containers` in `GET /networks/{id}` is computed from the containers' records, so a
//!   container appears there exactly when its `NetworkSettings.Networks` has a live endpoint
//!   (non-empty `EndpointID`) on the network.

pub mod dns;
mod dns_msg;
pub mod endpoints;
mod filter;
pub mod ipam;
pub mod mac;

pub use filter::{prunable, NetworkFilter};

use crate::error::ServiceError;
use crate::model::network::NetworkRecord;
use berth_api::types::network::NetworkResource;
use berth_core::NetworkDriver;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Names Docker reserves for its predefined networks.
pub const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// The network store.
pub struct Networks {
    dir: PathBuf,
    map: RwLock<BTreeMap<String, NetworkRecord>>,
    /// Third-party network drivers by name (the bridge driver is `Ctx::network`).
    drivers: RwLock<BTreeMap<String, Arc<dyn NetworkDriver>>>,
    /// The embedded DNS servers of running containers.
    pub dns: dns::Servers,
}

/// A fresh 64-hex id.
pub fn random_id() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Docker's timestamp format.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A new network record (Docker's defaults: local scope, IPv4 only, default IPAM).
pub fn record(id: &str, name: &str, driver: &str) -> NetworkRecord {
    NetworkRecord {
        resource: NetworkResource {
            name: name.into(),
            id: id.into(),
            created: now(),
            driver: driver.into(),
            ..NetworkResource::default()
        },
        ..NetworkRecord::default()
    }
}

impl Networks {
    /// Opens the store under `<data_root>/network/networks`, creating the predefined networks.
    /// `icc` is the daemon's setting, shown as the default network's `enable_icc` option.
    pub fn open(data_root: &Path, bridge_device: &str, icc: bool) -> anyhow::Result<Networks> {
        let dir = data_root.join("network").join("networks");
        std::fs::create_dir_all(&dir)?;
        berth_core::atomic::clean_temps(&dir);
        let mut map = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let p = entry.path();
            if p.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            if let Ok(b) = std::fs::read(&p) {
                match crate::model::migrate::parse::<NetworkRecord>(&b) {
                    Ok(rec) if !rec.id.is_empty() => {
                        map.insert(rec.id.clone(), rec);
                    }
                    _ => tracing::warn!("skipping unreadable network file {}", p.display()),
                }
            }
        }
        let nets = Networks {
            dir,
            map: RwLock::new(map),
            drivers: RwLock::new(BTreeMap::new()),
            dns: dns::Servers::default(),
        };
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if nets.find_name(name).is_none() {
                let mut rec = record(&random_id(), name, driver);
                if name == "bridge" {
                    rec.driver_network_id = "bridge".into();
                    rec.options = [
                        ("com.docker.network.bridge.default_bridge", "true"),
                        ("com.docker.network.bridge.enable_icc", &icc.to_string()),
                        ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                        ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                        ("com.docker.network.bridge.name", bridge_device),
                        ("com.docker.network.driver.mtu", "1500"),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                }
                nets.save(&rec)
                    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            }
        }
        // The default network follows the daemon's current `icc` (as Docker re-creates it).
        if let Some(mut rec) = nets.find_name("bridge") {
            let key = "com.docker.network.bridge.enable_icc";
            let want = icc.to_string();
            if rec.options.get(key) != Some(&want) {
                rec.options.insert(key.to_string(), want);
                nets.save(&rec)
                    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            }
        }
        Ok(nets)
    }

    /// Registers a third-party network driver.
    pub fn add_driver(&self, name: &str, d: Arc<dyn NetworkDriver>) {
        if let Ok(mut m) = self.drivers.write() {
            m.insert(name.to_string(), d);
        }
    }

    /// The driver called `name` (`bridge` is `bridge`, the loaded bridge driver).
    pub fn driver_named(
        &self,
        name: &str,
        bridge: Option<&Arc<dyn NetworkDriver>>,
    ) -> Option<Arc<dyn NetworkDriver>> {
        match name {
            "bridge" => bridge.cloned(),
            other => self.drivers.read().ok()?.get(other).cloned(),
        }
    }

    /// The driver of network record `rec` (`None` for `host`/`none`, or a driver not loaded).
    pub fn driver(
        &self,
        rec: &NetworkRecord,
        bridge: Option<&Arc<dyn NetworkDriver>>,
    ) -> Option<Arc<dyn NetworkDriver>> {
        if rec.name == "host" || rec.name == "none" {
            return None;
        }
        self.driver_named(&rec.driver, bridge)
    }

    fn find_name(&self, name: &str) -> Option<NetworkRecord> {
        let map = self.map.read().ok()?;
        map.values().find(|v| v.name == name).cloned()
    }

    /// Every network.
    pub fn list(&self) -> Vec<NetworkRecord> {
        self.map
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Finds by full id, exact name, or unique id prefix.
    pub fn get(&self, key: &str) -> Result<NetworkRecord, ServiceError> {
        let map = self
            .map
            .read()
            .map_err(|_| ServiceError::internal("network store poisoned"))?;
        if let Some(v) = map.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = map.values().find(|v| v.name == key) {
            return Ok(v.clone());
        }
        let hits: Vec<&NetworkRecord> = if key.is_empty() {
            Vec::new()
        } else {
            map.iter()
                .filter(|(id, _)| id.starts_with(key))
                .map(|(_, v)| v)
                .collect()
        };
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ServiceError::not_found(format!("network {key} not found"))),
            _ => Err(ServiceError::bad_request(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                hits.len()
            ))),
        }
    }

    /// Whether a network called `name` exists.
    pub fn name_taken(&self, name: &str) -> bool {
        self.find_name(name).is_some()
    }

    /// Writes a record atomically and durably (`berth_core::atomic`) and caches it.
    pub fn save(&self, rec: &NetworkRecord) -> Result<(), ServiceError> {
        let id = rec.id.clone();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::internal(format!("invalid network id {id:?}")));
        }
        let path = self.dir.join(format!("{id}.json"));
        berth_core::atomic::write_json_atomic(&path, rec)
            .map_err(|e| ServiceError::internal(format!("saving network {id}: {e}")))?;
        if let Ok(mut m) = self.map.write() {
            m.insert(id, rec.clone());
        }
        Ok(())
    }

    /// Forgets a network.
    pub fn remove(&self, id: &str) -> Result<(), ServiceError> {
        let path = self.dir.join(format!("{id}.json"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ServiceError::internal(format!(
                    "removing network {id}: {e}"
                )));
            }
            _ => {}
        }
        if let Ok(mut m) = self.map.write() {
            m.remove(id);
        }
        Ok(())
    }

    /// The driver ids of every bridge-driver network (what `reconcile` must keep).
    pub fn bridge_driver_ids(&self) -> Vec<String> {
        self.list()
            .iter()
            .filter(|v| v.driver == "bridge")
            .map(|v| v.driver_id().to_string())
            .collect()
    }
}

/// Re-creates (idempotently) the networks of third-party drivers at start-up.
pub async fn recreate_plugin_networks(ctx: &crate::state::Ctx) {
    for rec in ctx.networks.list() {
        if rec.driver == "bridge" {
            continue;
        }
        let (Some(spec), Some(d)) = (spec_of(&rec), ctx.networks.driver(&rec, None)) else {
            continue;
        };
        match tokio::task::spawn_blocking(move || d.create_network(&spec)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("re-creating network {}: {e}", rec.name),
            Err(e) => tracing::warn!("re-creating network {}: {e}", rec.name),
        }
    }
}

/// The driver spec that re-creates a user bridge network at start-up (`None` for the
/// predefined ones and other drivers).
pub fn bridge_spec(rec: &NetworkRecord) -> Option<berth_core::network::NetworkSpec> {
    if rec.driver != "bridge" {
        return None;
    }
    spec_of(rec)
}

/// The driver spec of a user network's record (`None` for the predefined ones): its pools
/// as the create checked them (a record whose configuration no longer passes — written by an
/// older berth — keeps its first subnet, gateway and range).
pub fn spec_of(rec: &NetworkRecord) -> Option<berth_core::network::NetworkSpec> {
    if PREDEFINED.contains(&rec.name.as_str()) {
        return None;
    }
    let mut spec = berth_core::network::NetworkSpec {
        id: rec.driver_id().to_string(),
        name: rec.name.clone(),
        internal: rec.internal,
        options: rec.options.clone(),
        ..Default::default()
    };
    match ipam::check(&rec.ipam.config, rec.enable_ipv6, &[]) {
        Ok(pools) => ipam::fill_spec(&mut spec, &pools),
        Err(_) => {
            let cfg = rec.ipam.config.first();
            let opt = |f: fn(&berth_api::types::network::IpamConfig) -> &String| {
                cfg.map(f).filter(|s| !s.is_empty()).cloned()
            };
            spec.subnet = opt(|c| &c.subnet);
            spec.gateway = opt(|c| &c.gateway);
            spec.ip_range = opt(|c| &c.ip_range);
        }
    }
    Some(spec)
}
