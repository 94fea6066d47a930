//! The daemon-side network manager: the network store (`<data-root>/network/networks/<id>.json`,
//! each file Docker's `NetworkResource` plus the driver's network id), the predefined networks
//! `bridge`, `host` and `none`, lookup by id / name / id prefix, and filters.
//!
//! README — how the rest of berthd uses this:
//! * `ctx.networks.get(key)` finds a network (Docker's 404 text otherwise); `list()` returns
//!   them all; records are `serde_json::Value`s in Docker's `NetworkResource` shape.
//! * A network's kernel side belongs to its driver (`ctx.network` for `bridge`, third-party
//!   drivers through [`Networks::driver`]), keyed by [`driver_id`]: the default network's
//!   driver id is `"bridge"`, user networks use their 64-hex id. Containers join and leave
//!   through [`endpoints`] (`plan` at create, `join_all` at start, `leave_all` at exit,
//!   `join_one` for `network connect`).
//! * `Containers` in `GET /networks/{id}` is computed from the containers' records, so a
//!   container appears there exactly when its `NetworkSettings.Networks` has a live endpoint
//!   (non-empty `EndpointID`) on the network.

pub mod dns;
mod dns_msg;
pub mod endpoints;

use crate::error::ServiceError;
use crate::filters::LabelFilter;
use berth_core::NetworkDriver;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Names Docker reserves for its predefined networks.
pub const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// The network store.
pub struct Networks {
    dir: PathBuf,
    map: RwLock<BTreeMap<String, Value>>,
    /// Third-party network drivers by name (the bridge driver is `Ctx::network`).
    drivers: RwLock<BTreeMap<String, Arc<dyn NetworkDriver>>>,
    /// The embedded DNS servers of running containers.
    pub dns: dns::Servers,
}

/// The id the network's driver knows it by.
pub fn driver_id(rec: &Value) -> String {
    rec["DriverNetworkID"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| rec["Id"].as_str())
        .unwrap_or_default()
        .to_string()
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

/// A new network record in Docker's `NetworkResource` shape.
pub fn record(id: &str, name: &str, driver: &str) -> Value {
    json!({
        "Name": name, "Id": id, "Created": now(), "Scope": "local", "Driver": driver,
        "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false, "Attachable": false, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": {}, "Options": {}, "Labels": {},
    })
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
            if let Ok(v) = std::fs::read(&p).map(|b| serde_json::from_slice::<Value>(&b)) {
                match v {
                    Ok(v) if v["Id"].is_string() => {
                        map.insert(v["Id"].as_str().unwrap_or_default().to_string(), v);
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
                    rec["DriverNetworkID"] = json!("bridge");
                    rec["Options"] = json!({
                        "com.docker.network.bridge.default_bridge": "true",
                        "com.docker.network.bridge.enable_icc": icc.to_string(),
                        "com.docker.network.bridge.enable_ip_masquerade": "true",
                        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                        "com.docker.network.bridge.name": bridge_device,
                        "com.docker.network.driver.mtu": "1500",
                    });
                }
                nets.save(&rec)
                    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            }
        }
        // The default network follows the daemon's current `icc` (as Docker re-creates it).
        if let Some(mut rec) = nets.find_name("bridge") {
            let key = "com.docker.network.bridge.enable_icc";
            let want = json!(icc.to_string());
            if rec["Options"].is_object() && rec["Options"][key] != want {
                rec["Options"][key] = want;
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
        rec: &Value,
        bridge: Option<&Arc<dyn NetworkDriver>>,
    ) -> Option<Arc<dyn NetworkDriver>> {
        if rec["Name"] == "host" || rec["Name"] == "none" {
            return None;
        }
        self.driver_named(rec["Driver"].as_str().unwrap_or_default(), bridge)
    }

    fn find_name(&self, name: &str) -> Option<Value> {
        let map = self.map.read().ok()?;
        map.values().find(|v| v["Name"] == name).cloned()
    }

    /// Every network.
    pub fn list(&self) -> Vec<Value> {
        self.map
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Finds by full id, exact name, or unique id prefix.
    pub fn get(&self, key: &str) -> Result<Value, ServiceError> {
        let map = self
            .map
            .read()
            .map_err(|_| ServiceError::internal("network store poisoned"))?;
        if let Some(v) = map.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = map.values().find(|v| v["Name"] == key) {
            return Ok(v.clone());
        }
        let hits: Vec<&Value> = if key.is_empty() {
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
    pub fn save(&self, rec: &Value) -> Result<(), ServiceError> {
        let id = rec["Id"].as_str().unwrap_or_default().to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::internal(format!("invalid network id {id:?}")));
        }
        let path = self.dir.join(format!("{id}.json"));
        let data = serde_json::to_vec_pretty(rec).unwrap_or_default();
        berth_core::atomic::write_atomic(&path, &data)
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
            .filter(|v| v["Driver"] == "bridge")
            .map(driver_id)
            .collect()
    }
}

/// `docker network ls` filters, parsed. Each field is one filter: empty passes everything,
/// otherwise a network passes when any of its values matches.
#[derive(Debug, Clone, Default)]
pub struct NetworkFilter {
    /// `driver`: the driver's name.
    pub drivers: Vec<String>,
    /// `id`: ID prefixes.
    pub ids: Vec<String>,
    /// `name`: substrings of the name.
    pub names: Vec<String>,
    /// `scope` (only `local` matches).
    pub scopes: Vec<String>,
    /// `type`: `Some(true)` builtin, `Some(false)` custom, `None` a value that matches nothing.
    pub builtin: Vec<Option<bool>>,
    /// `label`: `key` or `key=value`.
    pub labels: Vec<LabelFilter>,
    /// `dangling`.
    pub dangling: Vec<bool>,
}

impl NetworkFilter {
    /// Whether `rec` passes; `dangling`: no container is attached to it.
    pub fn matches(&self, rec: &Value, dangling: bool) -> bool {
        fn any<T>(vals: &[T], test: impl Fn(&T) -> bool) -> bool {
            vals.is_empty() || vals.iter().any(test)
        }
        let s = |k: &str| rec[k].as_str().unwrap_or_default().to_string();
        let name = s("Name");
        let predefined = PREDEFINED.contains(&name.as_str());
        let label = |k: &str| rec["Labels"].get(k).map(|v| v.as_str().unwrap_or_default());
        any(&self.drivers, |v| s("Driver") == *v)
            && any(&self.ids, |v| s("Id").starts_with(v.as_str()))
            && any(&self.names, |v| name.contains(v.as_str()))
            && any(&self.scopes, |v| v == "local")
            && any(&self.builtin, |v| *v == Some(predefined))
            && any(&self.labels, |l| l.matches(label))
            && any(&self.dangling, |want| match want {
                true => dangling && !predefined,
                false => !dangling || predefined,
            })
    }
}

/// Re-creates (idempotently) the networks of third-party drivers at start-up.
pub async fn recreate_plugin_networks(ctx: &crate::state::Ctx) {
    for rec in ctx.networks.list() {
        if rec["Driver"] == "bridge" {
            continue;
        }
        let (Some(spec), Some(d)) = (spec_of(&rec), ctx.networks.driver(&rec, None)) else {
            continue;
        };
        match tokio::task::spawn_blocking(move || d.create_network(&spec)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("re-creating network {}: {e}", rec["Name"]),
            Err(e) => tracing::warn!("re-creating network {}: {e}", rec["Name"]),
        }
    }
}

/// The driver spec that re-creates a user bridge network at start-up (`None` for the
/// predefined ones and other drivers).
pub fn bridge_spec(rec: &Value) -> Option<berth_core::network::NetworkSpec> {
    if rec["Driver"] != "bridge" {
        return None;
    }
    spec_of(rec)
}

/// The driver spec of a user network's record (`None` for the predefined ones).
pub fn spec_of(rec: &Value) -> Option<berth_core::network::NetworkSpec> {
    let name = rec["Name"].as_str()?;
    if PREDEFINED.contains(&name) {
        return None;
    }
    let cfg = &rec["IPAM"]["Config"][0];
    let opt = |k: &str| {
        cfg[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(berth_core::network::NetworkSpec {
        id: driver_id(rec),
        name: name.to_string(),
        subnet: opt("Subnet"),
        gateway: opt("Gateway"),
        ip_range: opt("IPRange"),
        internal: rec["Internal"].as_bool().unwrap_or(false),
        options: rec["Options"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        ..Default::default()
    })
}
