//! Finding, checking and opening plugin libraries.

use crate::abi::{self, PluginVTable, LAYOUT_SYMBOL, VTABLE_SYMBOL};
use crate::host::{NetworkProxy, StorageProxy};
use crate::{PluginError, ABI_VERSION};
use abi_stable::std_types::{RResult, RStr};
use abi_stable::type_layout::TypeLayout;
use berth_core::{DriverKind, NetworkDriver, StorageDriver};
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
    vt: &'static PluginVTable,
    desc: Description,
}

/// Opens plugin libraries: explicitly configured files first, then search folders.
pub struct Loader {
    explicit: BTreeMap<String, PathBuf>,
    search_dirs: Vec<PathBuf>,
    libs: HashMap<PathBuf, Lib>,
    loaded: Vec<PluginInfo>,
}

impl Loader {
    /// A loader with `explicit` (driver name → library file) and `search_dirs`.
    pub fn new(explicit: BTreeMap<String, PathBuf>, search_dirs: Vec<PathBuf>) -> Self {
        Loader {
            explicit,
            search_dirs,
            libs: HashMap::new(),
            loaded: Vec::new(),
        }
    }

    /// Everything opened so far.
    pub fn loaded(&self) -> Vec<PluginInfo> {
        self.loaded.clone()
    }

    /// Opens storage driver `driver` with `config`.
    pub fn storage(
        &mut self,
        driver: &str,
        config: &serde_json::Value,
    ) -> Result<(Arc<dyn StorageDriver>, PluginInfo), PluginError> {
        let (vt, handle, info) = self.open_driver(DriverKind::Storage, driver, config)?;
        Ok((Arc::new(StorageProxy { vt, handle }), info))
    }

    /// Opens network driver `driver` with `config`.
    pub fn network(
        &mut self,
        driver: &str,
        config: &serde_json::Value,
    ) -> Result<(Arc<dyn NetworkDriver>, PluginInfo), PluginError> {
        let (vt, handle, info) = self.open_driver(DriverKind::Network, driver, config)?;
        Ok((Arc::new(NetworkProxy { vt, handle }), info))
    }

    fn open_driver(
        &mut self,
        kind: DriverKind,
        driver: &str,
        config: &serde_json::Value,
    ) -> Result<(&'static PluginVTable, u64, PluginInfo), PluginError> {
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
        let handle = match (lib.vt.open)(
            RStr::from(kind.as_str()),
            RStr::from(driver),
            RStr::from(config_text.as_str()),
        ) {
            RResult::ROk(h) => h,
            RResult::RErr(e) => {
                return Err(PluginError::Init {
                    driver: driver.into(),
                    path,
                    reason: e.to_string(),
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
        Ok((lib.vt, handle, info))
    }

    fn search(&mut self, kind: DriverKind, driver: &str) -> Result<PathBuf, PluginError> {
        for dir in self.search_dirs.clone() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "so"))
                .collect();
            files.sort();
            for f in files {
                if let Err(e) = self.open_lib(driver, &f) {
                    tracing::debug!("skipping {}: {e}", f.display());
                    continue;
                }
                if self
                    .libs
                    .get(&f)
                    .is_some_and(|l| provides(&l.desc, kind, driver))
                {
                    return Ok(f);
                }
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
        let not_plugin = |reason: String| PluginError::NotAPlugin {
            driver: driver.into(),
            path: path.into(),
            reason,
        };
        // SAFETY: loading a library runs its initialisers; berth plugins are trusted code
        // configured by the administrator, as with any dynamically loaded driver.
        let lib =
            unsafe { libloading::Library::new(path) }.map_err(|e| not_plugin(e.to_string()))?;
        // SAFETY: the symbol, when present, is the `extern "C" fn` export_plugin! defines.
        let layout_fn = unsafe { lib.get::<extern "C" fn() -> &'static TypeLayout>(LAYOUT_SYMBOL) }
            .map_err(|_| not_plugin("it exports no berth_plugin_layout symbol".into()))?;
        let theirs = layout_fn();
        if let Err(e) = abi_stable::abi_stability::abi_checking::check_layout_compatibility(
            abi::layout(),
            theirs,
        ) {
            let first = e
                .to_string()
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string();
            return Err(PluginError::IncompatibleVersion {
                driver: driver.into(),
                path: path.into(),
                found: 0,
                expected: ABI_VERSION,
                detail: format!(": layout mismatch: {first}"),
            });
        }
        // SAFETY: as above; the layout check guarantees the vtable's shape.
        let vt_fn = unsafe { lib.get::<extern "C" fn() -> &'static PluginVTable>(VTABLE_SYMBOL) }
            .map_err(|_| not_plugin("it exports no berth_plugin_v1 symbol".into()))?;
        let vt: &'static PluginVTable = vt_fn();
        if vt.abi_version != ABI_VERSION {
            return Err(PluginError::IncompatibleVersion {
                driver: driver.into(),
                path: path.into(),
                found: vt.abi_version,
                expected: ABI_VERSION,
                detail: String::new(),
            });
        }
        let desc: Description = serde_json::from_str((vt.describe)().as_str())
            .map_err(|e| not_plugin(format!("its description is not valid JSON: {e}")))?;
        // Libraries are never unloaded: the vtable and driver objects live as long as we do.
        std::mem::forget(lib);
        self.libs.insert(path.to_path_buf(), Lib { vt, desc });
        Ok(())
    }
}

fn provides(desc: &Description, kind: DriverKind, driver: &str) -> bool {
    desc.drivers
        .iter()
        .any(|d| d.kind == kind.as_str() && d.name == driver)
}
