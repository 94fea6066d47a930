//! The isolation runtimes berthd offers, by the names containers ask for (`--runtime`,
//! `HostConfig.Runtime`, `default-runtime`): each is a runtime plugin driver, loaded through
//! the same `Loader` as storage and network drivers.
//!
//! - `native` is driver `native` (the `runtime-native` library);
//! - `runc` is driver `runc` (the `runtime-oci` library) driving the host's runc;
//! - a `runtimes` entry of daemon.json (Docker's key) whose `path` is a plugin library
//!   (`*.so`) is that library's runtime driver of the entry's name; any other `path` is an OCI
//!   runtime binary, driven by the `runc` driver with `{"path", "args"}`;
//! - a runtime driver named in the `plugins` section (`"drivers": {"name": "/lib.so"}`) is a
//!   runtime of that name.
//!
//! Each is loaded (its constructor run once) at start: one that fails is left out with a
//! warning and berthd keeps the others, unless it is the default runtime, which stops berthd
//! with the loader's one-line error. A container's monitor gets the [`RuntimeChoice`] and
//! opens the same driver (`monitor/src/runtimes.rs`).

use crate::config::Config;
use anyhow::{anyhow, Result};
use berth_plugins::{Loader, PluginError, PluginInfo, RuntimeChoice};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The runtimes by name.
pub type Runtimes = BTreeMap<String, RuntimeChoice>;

/// Docker's error for a runtime name berthd does not know (a 400 at create and start).
pub fn unknown(name: &str) -> String {
    format!("Unknown runtime specified {name}")
}

fn is_library(path: &str) -> bool {
    path.ends_with(".so")
}

/// One runtime to load.
struct Wanted {
    name: String,
    driver: String,
    config: Value,
    /// The library a `runtimes` entry names (else the shared loader's lookup).
    library: Option<PathBuf>,
    /// Whether a missing driver is worth a warning (not for names of the `plugins` section,
    /// which may be drivers of other kinds).
    warn: bool,
}

/// What to load (see the module doc); a `runtimes` entry overrides a built-in name.
fn wanted(cfg: &Config, taken: &[&str]) -> Vec<Wanted> {
    let mut out: BTreeMap<String, Wanted> = BTreeMap::new();
    let mut add = |name: &str, driver: &str, config: Value, library, warn| {
        let w = Wanted {
            name: name.into(),
            driver: driver.into(),
            config,
            library,
            warn,
        };
        out.insert(name.to_string(), w);
    };
    add("native", "native", json!({}), None, true);
    add("runc", "runc", json!({}), None, true);
    for name in cfg.plugin_drivers.keys() {
        if !taken.contains(&name.as_str()) {
            add(name, name, json!({}), None, false);
        }
    }
    for (name, r) in &cfg.runtimes {
        if is_library(&r.path) {
            let c = json!({"args": r.runtime_args});
            add(name, name, c, Some(PathBuf::from(&r.path)), true);
        } else {
            let c = json!({"path": r.path, "args": r.runtime_args});
            add(name, "runc", c, None, true);
        }
    }
    out.into_values().collect()
}

/// Loads every runtime (see the module doc); `taken` are the names of the `plugins` section
/// already used by storage, network or registry drivers. Returns them with the plugins opened
/// from `runtimes` libraries (the shared loader lists its own).
pub fn load(
    loader: &mut Loader,
    cfg: &Config,
    taken: &[&str],
    notes: &mut Vec<String>,
) -> Result<(Runtimes, Vec<PluginInfo>)> {
    let mut out = Runtimes::new();
    let mut infos = Vec::new();
    for w in wanted(cfg, taken) {
        let Wanted {
            name,
            driver,
            config,
            library,
            warn,
        } = w;
        let loaded = match library {
            // A library of the `runtimes` section: its own loader, so that its failure does
            // not stop berthd (the `plugins` section's libraries are checked up front).
            Some(lib) => {
                let mut own = Loader::new(BTreeMap::from([(driver.clone(), lib)]), Vec::new());
                let r = own.check().and_then(|()| own.runtime(&driver, &config));
                infos.extend(own.loaded());
                r
            }
            None => loader.runtime(&driver, &config),
        };
        match loaded {
            Ok((_, info)) => {
                let choice = RuntimeChoice {
                    name: name.clone(),
                    driver,
                    plugin: info.plugin,
                    version: info.version,
                    library: info.library,
                    config,
                };
                out.insert(name, choice);
            }
            Err(e) if name == cfg.default_runtime => {
                return Err(anyhow!("failed to load the default runtime {name:?}: {e}"))
            }
            Err(PluginError::NoSuchDriver { .. }) if !warn => {}
            Err(e) => notes.push(format!("runtime {name:?} is not available: {e}")),
        }
    }
    Ok((out, infos))
}

/// The configuration a container's monitor opens `choice` with: the loaded one plus `root`,
/// a folder of the container's own run-time state the runtime may keep its files in.
pub fn for_container(choice: &RuntimeChoice, root: PathBuf) -> RuntimeChoice {
    let mut c = choice.clone();
    if !c.config.is_object() {
        c.config = json!({});
    }
    c.config["root"] = json!(root);
    c
}

/// `info`'s view of a runtime: Docker's `path` (the OCI binary, or the plugin library) and
/// `runtimeArgs`.
pub fn info_path(choice: &RuntimeChoice) -> (String, Vec<String>) {
    let path = choice.config["path"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| choice.library.display().to_string());
    let args = serde_json::from_value(choice.config["args"].clone()).unwrap_or_default();
    (path, args)
}
