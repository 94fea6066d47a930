//! Volumes with the `local` driver: each volume is `<data-root>/volumes/<name>/_data` plus its
//! metadata `<data-root>/volumes/<name>/volume.json` (written atomically). Whether a volume
//! is in use is computed from the containers' `Mounts`, so it cannot drift after a crash.
//! [`mounts`] turns a container's `Binds`/`Mounts`/`Volumes`/`Tmpfs`/`VolumesFrom` into
//! Docker's mount points and the runtime's mount specs; [`propagation`] checks their bind
//! propagation at start.

pub mod propagation;

pub mod copy;
pub mod mounts;
pub mod prune;

use crate::error::ServiceError;
use crate::filters::Labels;
use crate::model::volume::VolumeRecord;
use berth_api::types::volume::Volume as ApiVolume;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The label Docker puts on anonymous volumes (pruned by default).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// One volume's metadata.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `device`, `o` for the local driver).
    pub options: BTreeMap<String, String>,
    /// Where its data lives on the host.
    pub mountpoint: PathBuf,
}

impl Volume {
    /// Whether the volume was created anonymously.
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Docker's shape (`docker volume inspect`, list element, create reply): empty labels
    /// and options are `null`, as Docker's.
    pub fn to_api(&self) -> ApiVolume {
        let nonempty = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
        ApiVolume {
            created_at: self.created_at.clone(),
            driver: "local".into(),
            labels: nonempty(&self.labels),
            mountpoint: self.mountpoint.to_string_lossy().into_owned(),
            name: self.name.clone(),
            options: nonempty(&self.options),
            scope: "local".into(),
            usage_data: None,
        }
    }
}

/// Every volume of the daemon.
pub struct Volumes {
    root: PathBuf,
    /// Serialises create/remove so two creates of one name agree.
    lock: Mutex<()>,
}

/// Whether `name` is a valid local volume name.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn invalid_name(name: &str) -> ServiceError {
    if name.len() < 2 && name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return ServiceError::bad_request(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        ));
    }
    ServiceError::bad_request(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    ))
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh random 64-hex name for an anonymous volume.
pub fn anonymous_name() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Total size in bytes of the files under `p` (not following symlinks), as Docker's.
pub fn disk_usage(p: &Path) -> u64 {
    berth_archive::diff::tree_usage(p).0
}

impl Volumes {
    /// Opens (creates) the volume folder under the data root.
    pub fn open(data_root: &Path) -> std::io::Result<Volumes> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root)?;
        Ok(Volumes {
            root,
            lock: Mutex::new(()),
        })
    }

    fn read(&self, name: &str) -> Option<Volume> {
        if !valid_name(name) {
            return None;
        }
        let dir = self.root.join(name);
        let meta: VolumeRecord = std::fs::read(dir.join("volume.json"))
            .ok()
            .and_then(|b| crate::model::migrate::parse(&b).ok())?;
        Some(Volume {
            name: name.to_string(),
            created_at: meta.created_at,
            labels: meta.labels,
            options: meta.options,
            mountpoint: dir.join("_data"),
        })
    }

    /// A volume by name; Docker's 404 otherwise.
    pub fn get(&self, name: &str) -> Result<Volume, ServiceError> {
        self.read(name)
            .ok_or_else(|| ServiceError::not_found(format!("get {name}: no such volume")))
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| self.read(&e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Creates a volume, or returns the existing one of that name (as Docker does).
    pub fn create(
        &self,
        name: &str,
        labels: &Value,
        options: &Value,
    ) -> Result<(Volume, bool), ServiceError> {
        if !valid_name(name) {
            return Err(invalid_name(name));
        }
        let options = string_map(options);
        if let Some(k) = options
            .keys()
            .find(|k| !["type", "device", "o", "size"].contains(&k.as_str()))
        {
            return Err(ServiceError::bad_request(format!(
                "create {name}: invalid option: \"{k}\""
            )));
        }
        let _g = self
            .lock
            .lock()
            .map_err(|_| ServiceError::internal("volume lock poisoned"))?;
        if let Some(v) = self.read(name) {
            return Ok((v, false));
        }
        let dir = self.root.join(name);
        let data = dir.join("_data");
        crate::modes::private_dir_all(&dir)
            .and_then(|_| std::fs::create_dir_all(&data))
            .map_err(|e| ServiceError::internal(format!("create {name}: {e}")))?;
        let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let meta = VolumeRecord {
            name: name.to_string(),
            created_at,
            labels: string_map(labels),
            options,
        };
        berth_core::atomic::write_json_atomic(&dir.join("volume.json"), &meta)
            .map_err(|e| ServiceError::internal(format!("create {name}: {e}")))?;
        let v = self
            .read(name)
            .ok_or_else(|| ServiceError::internal(format!("create {name}: metadata unreadable")))?;
        Ok((v, true))
    }

    /// Removes a volume that no container uses (`users` are the ids using it).
    pub fn remove(&self, name: &str, users: &[String]) -> Result<(), ServiceError> {
        let _g = self
            .lock
            .lock()
            .map_err(|_| ServiceError::internal("volume lock poisoned"))?;
        let v = self.get(name)?;
        if !users.is_empty() {
            return Err(ServiceError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.root.join(&v.name);
        // Drop the metadata first: a crash half-way leaves a folder `list` ignores.
        let _ = std::fs::remove_file(dir.join("volume.json"));
        std::fs::remove_dir_all(&dir)
            .map_err(|e| ServiceError::internal(format!("remove {name}: {e}")))
    }
}

/// `docker volume ls` / `prune` filters, parsed (values of one filter are alternatives).
#[derive(Debug, Clone, Default)]
pub struct VolumeFilter {
    /// `name`: substrings of the name.
    pub names: Vec<String>,
    /// `driver`.
    pub drivers: Vec<String>,
    /// `label`, `label!`.
    pub labels: Labels,
    /// `dangling` (each value must hold).
    pub dangling: Vec<bool>,
}

impl VolumeFilter {
    /// Whether `v` passes; `in_use` says whether a container refers to it.
    pub fn matches(&self, v: &Volume, in_use: bool) -> bool {
        let name_ok =
            self.names.is_empty() || self.names.iter().any(|n| v.name.contains(n.as_str()));
        let driver_ok = self.drivers.is_empty() || self.drivers.iter().any(|d| d == "local");
        let label_ok = self.labels.matches(|k| v.labels.get(k).map(String::as_str));
        let dangling_ok = self.dangling.iter().all(|want| *want != in_use);
        name_ok && driver_ok && label_ok && dangling_ok
    }
}

/// The `Labels` object of a create request with Docker's anonymous marker added.
pub fn anonymous_labels() -> Value {
    let mut m = Map::new();
    m.insert(ANONYMOUS_LABEL.into(), json!(""));
    Value::Object(m)
}
