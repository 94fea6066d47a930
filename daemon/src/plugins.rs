//! Loading the driver plugins named by the configuration. This runs before logging is set
//! up and before anything is written, so that a failure is exactly one line on stderr
//! (`berthd: failed to load plugin "<driver>": <library>: <reason>`); what is worth logging
//! comes back as [`Drivers::notes`]. A library (or its folder, or a search folder) that is not
//! root's or that others could write, and a driver name two search-folder libraries claim,
//! stop berthd the same way (`berthd: failed to load plugin library <path> refused: ...`).
//! The isolation runtimes load last (`crate::runtimes`): one that fails is a warning, unless
//! it is the default one.

use crate::config::Config;
use anyhow::{anyhow, Result};
use berth_core::{NetworkDriver, Registry, StorageDriver};
use berth_plugins::{Loader, PluginError, PluginInfo};
use serde_json::json;
use std::sync::Arc;

/// The loaded drivers.
pub struct Drivers {
    pub storage: Arc<dyn StorageDriver>,
    pub network: Option<Arc<dyn NetworkDriver>>,
    /// Third-party network drivers, by name.
    pub extra_networks: Vec<(String, Arc<dyn NetworkDriver>)>,
    pub registry: Arc<dyn Registry>,
    /// The isolation runtimes, by name.
    pub runtimes: crate::runtimes::Runtimes,
    pub infos: Vec<PluginInfo>,
    /// Warnings to log once logging is up.
    pub notes: Vec<String>,
}

fn failed(e: PluginError) -> anyhow::Error {
    anyhow!("failed to load {e}")
}

/// Loads the storage driver (overlay2, falling back to vfs when none was configured and
/// overlay2 cannot work here), the bridge network driver and the registry client
/// (`registry-driver`, default `distribution`).
pub fn load(cfg: &Config) -> Result<Drivers> {
    let mut notes = Vec::new();
    let mut loader = Loader::new(cfg.plugin_drivers.clone(), cfg.plugin_search.clone());
    // Every library is checked (owner, mode, duplicates) before any driver starts, so a
    // refusal leaves the data root untouched.
    loader.check().map_err(failed)?;
    // The registry first: it touches no disk, so a failure leaves the data root untouched.
    let registry_config = json!({
        "insecure_registries": cfg.insecure_registries,
        "registry_mirrors": cfg.registry_mirrors,
        "certs_dirs": ["/etc/berth/certs.d", "/etc/docker/certs.d"],
    });
    let (registry, _) = loader
        .registry(&cfg.registry_driver, &registry_config)
        .map_err(failed)?;
    let storage_config = |name: &str| json!({"root": cfg.data_root.join(name), "storage_opts": cfg.storage_opts, "max_layer_size": cfg.max_layer_size});
    let storage = match &cfg.storage_driver {
        Some(name) => {
            loader
                .storage(name, &storage_config(name))
                .map_err(failed)?
                .0
        }
        None => match loader.storage("overlay2", &storage_config("overlay2")) {
            Ok((d, _)) => d,
            Err(PluginError::Init { reason, .. }) => {
                notes.push(format!(
                    "overlay2 is not usable here ({reason}); falling back to vfs"
                ));
                let _ = std::fs::remove_dir(cfg.data_root.join("overlay2").join("l"));
                let _ = std::fs::remove_dir(cfg.data_root.join("overlay2"));
                loader
                    .storage("vfs", &storage_config("vfs"))
                    .map_err(failed)?
                    .0
            }
            Err(e) => return Err(failed(e)),
        },
    };
    let net_config = json!({
        "root": cfg.data_root.join("network"),
        "bridge": cfg.bridge,
        "bip": cfg.bip,
        "icc": cfg.icc,
        "default_address_pools": cfg.default_address_pools,
    });
    let network = match loader.network("bridge", &net_config) {
        Ok((d, _)) => Some(d),
        Err(PluginError::NoSuchDriver { .. }) if !cfg.plugin_drivers.contains_key("bridge") => {
            notes.push("no bridge network plugin found; containers get no network".into());
            None
        }
        Err(e) => return Err(failed(e)),
    };
    // Third-party network drivers named in the configuration load too.
    let mut extra_networks = Vec::new();
    for name in cfg.plugin_drivers.keys() {
        if name != "bridge"
            && Some(name) != cfg.storage_driver.as_ref()
            && name != &cfg.registry_driver
        {
            match loader.network(
                name,
                &json!({"root": cfg.data_root.join("network").join(name)}),
            ) {
                Ok((d, _)) => extra_networks.push((name.clone(), d)),
                Err(PluginError::NoSuchDriver { .. }) => {}
                Err(other) => return Err(failed(other)),
            }
        }
    }
    let mut taken: Vec<&str> = vec!["bridge", &cfg.registry_driver];
    taken.extend(cfg.storage_driver.as_deref());
    taken.extend(extra_networks.iter().map(|(n, _)| n.as_str()));
    let (runtimes, runtime_infos) = crate::runtimes::load(&mut loader, cfg, &taken, &mut notes)?;
    let mut infos = loader.loaded();
    infos.extend(runtime_infos);
    Ok(Drivers {
        runtimes,
        storage,
        network,
        extra_networks,
        registry,
        infos,
        notes,
    })
}
