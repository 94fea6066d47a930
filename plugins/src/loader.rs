//! Finding plugin libraries (explicit files, then search folders), opening their drivers and
//! remembering what was loaded. No library is opened before it passed the ownership checks of
//! `trust`; the search folders are scanned whole, once, so that two libraries claiming one
//! driver name are refused instead of the first one silently winning.

use crate::abi::PluginModRef;
use crate::check;
use crate::error::one_line;
use crate::host::{NetworkProxy, StorageProxy};
use crate::host_more::{RegistryProxy, RuntimeProxy};
use crate::trust;
use crate::PluginError;
use abi_stable::std_types::{RResult, RStr};
use berth_core::{DriverKind, NetworkDriver, Registry, Runtime, StorageDriver};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What was loaded, for `info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The plugin's own name.
    pub plugin: String,
    /// Its version.
    pub version: String,
    /// The library file.
    pub library: PathBuf,
    /// Driver kind.
    pub kind: DriverKind,
    /// Driver name.
    pub driver: String,
}

#[derive(Debug, Clone, Deserialize)]
struct DriverDesc {
    kind: String,
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Description {
    name: String,
    version: String,
    drivers: Vec<DriverDesc>,
}

struct Lib {
    module: PluginModRef,
    desc: Description,
    /// The file it resolved to (what was opened).
    real: PathBuf,
}

/// Opens plugin libraries: explicitly configured files first, then search folders.
pub struct Loader {
    explicit: BTreeMap<String, PathBuf>,
    search_dirs: Vec<PathBuf>,
    libs: HashMap<PathBuf, Lib>,
    /// Driver name → the search-folder library claiming it, once the folders were scanned.
    found: Option<BTreeMap<String, PathBuf>>,
    loaded: Vec<PluginInfo>,
}

impl Loader {
    /// A loader with `explicit` (driver name → library file) and `search_dirs`.
    pub fn new(explicit: BTreeMap<String, PathBuf>, search_dirs: Vec<PathBuf>) -> Self {
        Loader {
            explicit,
            search_dirs,
            libs: HashMap::new(),
            found: None,
            loaded: Vec::new(),
        }
    }

    /// Checks and opens (without starting any driver) every configured library and every
    /// library of the search folders: the first untrusted path, unloadable configured library
    /// or driver name claimed twice is the error. After this, opening a driver fails only
    /// for the driver's own reasons (unknown name, failing initialisation).
    pub fn check(&mut self) -> Result<(), PluginError> {
        for (driver, path) in self.explicit.clone() {
            self.open_lib(&driver, &path)?;
        }
        self.scan()
    }

    /// Every driver opened so far, in order.
    pub fn loaded(&self) -> Vec<PluginInfo> {
        self.loaded.clone()
    }

    /// Opens storage driver `driver` with `config`.
    pub fn storage(
        &mut self,
        driver: &str,
        config: &serde_json::Value,
    ) -> Result<(Arc<dyn StorageDriver>, PluginInfo), PluginError> {
        let (m, handle, info) = self.open_driver(DriverKind::Storage, driver, config)?;
        let call = m.storage_call();
        Ok((Arc::new(StorageProxy { call, handle }), info))
    }

    /// Opens network driver `driver` with `config`.
    pub fn network(
        &mut self,
        driver: &str,
        config: &serde_json::Value,
    ) -> Result<(Arc<dyn NetworkDriver>, PluginInfo), PluginError> {
        let (m, handle, info) = self.open_driver(DriverKind::Network, driver, config)?;
        let call = m.network_call();
        Ok((Arc::new(NetworkProxy { call, handle }), info))
    }

    /// Opens registry `driver` with `config`.
    pub fn registry(
        &mut self,
        driver: &str,
        config: &serde_json::Value,
    ) -> Result<(Arc<dyn Registry>, PluginInfo), PluginError> {
        let (m, handle, info) = self.open_driver(DriverKind::Registry, driver, config)?;
        let call = m.registry_call();
        Ok((Arc::new(RegistryProxy { call, handle }), info))
    }

    /// Opens isolation runtime `driver` with `config`.
    pub fn runtime(
        &mut self,
        driver: &str,
        config: &serde_json::Value,
    ) -> Result<(Arc<dyn Runtime>, PluginInfo), PluginError> {
        let (m, handle, info) = self.open_driver(DriverKind::Runtime, driver, config)?;
        let call = m.runtime_call();
        Ok((Arc::new(RuntimeProxy { call, handle }), info))
    }

    fn open_driver(
        &mut self,
        kind: DriverKind,
        driver: &str,
        config: &serde_json::Value,
    ) -> Result<(PluginModRef, u64, PluginInfo), PluginError> {
        let path = match self.explicit.get(driver).cloned() {
            Some(p) => {
                self.open_lib(driver, &p)?;
                let provides = self
                    .libs
                    .get(&p)
                    .is_some_and(|l| provides(&l.desc, kind, driver));
                if !provides {
                    return Err(PluginError::NoSuchDriver {
                        driver: driver.into(),
                        kind: kind.to_string(),
                        searched: p.display().to_string(),
                    });
                }
                p
            }
            None => self.search(kind, driver)?,
        };
        let lib = self.libs.get(&path).ok_or_else(|| PluginError::Missing {
            driver: driver.into(),
            path: path.clone(),
        })?;
        let config_text = config.to_string();
        let handle = match (lib.module.open())(
            RStr::from(kind.as_str()),
            RStr::from(driver),
            RStr::from(config_text.as_str()),
        ) {
            RResult::ROk(h) => h,
            RResult::RErr(e) => {
                return Err(PluginError::Init {
                    driver: driver.into(),
                    path,
                    reason: one_line(e.as_str()),
                })
            }
        };
        let info = PluginInfo {
            plugin: lib.desc.name.clone(),
            version: lib.desc.version.clone(),
            library: path,
            kind,
            driver: driver.to_string(),
        };
        self.loaded.push(info.clone());
        Ok((lib.module, handle, info))
    }

    fn search(&mut self, kind: DriverKind, driver: &str) -> Result<PathBuf, PluginError> {
        self.scan()?;
        let hit = self.found.as_ref().and_then(|f| f.get(driver)).cloned();
        if let Some(path) = hit {
            if self
                .libs
                .get(&path)
                .is_some_and(|l| provides(&l.desc, kind, driver))
            {
                return Ok(path);
            }
        }
        let searched: Vec<String> = self
            .search_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        Err(PluginError::NoSuchDriver {
            driver: driver.into(),
            kind: kind.to_string(),
            searched: searched.join(", "),
        })
    }

    /// Opens every `*.so` of the search folders (in folder order, then by name), once. An
    /// untrusted folder or file, or a driver name claimed by two different files, is an
    /// error; files that are not berth plugins are skipped with a warning.
    fn scan(&mut self) -> Result<(), PluginError> {
        if self.found.is_some() {
            return Ok(());
        }
        let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in self.search_dirs.clone() {
            if !dir.exists() {
                continue;
            }
            trust::folder(&dir).map_err(|reason| PluginError::Untrusted {
                path: dir.clone(),
                reason,
            })?;
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("cannot list plugin search folder {}: {e}", dir.display());
                    continue;
                }
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "so"))
                .collect();
            files.sort();
            for f in files {
                // A dangling link names nothing that could be opened.
                if !f.exists() {
                    continue;
                }
                match self.open_lib("", &f) {
                    Ok(()) => {}
                    Err(e @ PluginError::Untrusted { .. }) => return Err(e),
                    Err(e) => {
                        tracing::warn!("skipping {} in plugin search path: {e}", f.display());
                        continue;
                    }
                }
                let Some(lib) = self.libs.get(&f) else {
                    continue;
                };
                for d in &lib.desc.drivers {
                    // A configured library decides for its name.
                    if self.explicit.contains_key(&d.name) {
                        continue;
                    }
                    match found.get(&d.name) {
                        None => {
                            found.insert(d.name.clone(), f.clone());
                        }
                        Some(first) => {
                            let same = self.libs.get(first).is_some_and(|l| l.real == lib.real);
                            if !same {
                                return Err(PluginError::Duplicate {
                                    driver: d.name.clone(),
                                    first: first.clone(),
                                    second: f.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
        self.found = Some(found);
        Ok(())
    }

    fn open_lib(&mut self, driver: &str, path: &Path) -> Result<(), PluginError> {
        if self.libs.contains_key(path) {
            return Ok(());
        }
        if !path.exists() {
            return Err(PluginError::Missing {
                driver: driver.into(),
                path: path.into(),
            });
        }
        let real = trust::library(path).map_err(|reason| PluginError::Untrusted {
            path: path.into(),
            reason,
        })?;
        let module = check::open(driver, path, &real)?;
        let desc: Description =
            serde_json::from_str((module.describe())().as_str()).map_err(|e| {
                PluginError::NotAPlugin {
                    driver: driver.into(),
                    path: path.into(),
                    reason: format!("its description is not valid JSON: {e}"),
                }
            })?;
        self.libs
            .insert(path.to_path_buf(), Lib { module, desc, real });
        Ok(())
    }
}

fn provides(desc: &Description, kind: DriverKind, driver: &str) -> bool {
    desc.drivers
        .iter()
        .any(|d| d.kind == kind.as_str() && d.name == driver)
}
