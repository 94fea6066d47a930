//! Tags (`busybox:latest` → image ID), persisted as Docker's `repositories.json`:
//! `{"Repositories": {"busybox": {"busybox:latest": "sha256:..."}}}`.

use crate::fsutil::write_atomic;
use crate::ImageError;
use berth_core::reference::Reference;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Normalises a user reference to the tag key (`busybox` → `busybox:latest`,
/// `docker.io/library/busybox:1` → `busybox:1`).
pub fn tag_key(name: &str) -> Result<String, ImageError> {
    let r = Reference::parse(name).map_err(|e| ImageError::Reference(e.to_string()))?;
    Ok(r.familiar_string())
}

/// Refuses names Docker refuses as new tags: digests, and repositories that look like IDs.
pub fn check_new_tag(name: &str) -> Result<String, ImageError> {
    let r = Reference::parse(name).map_err(|e| ImageError::Reference(e.to_string()))?;
    if r.digest.is_some() {
        return Err(ImageError::Reference(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let repo = r.familiar_name();
    if repo.len() == 64 && repo.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ImageError::Reference(format!(
            "invalid repository name ({repo}), cannot specify 64-byte hexadecimal strings"
        )));
    }
    Ok(r.familiar_string())
}

/// The repository part of a tag key (`127.0.0.1:5000/app:1` → `127.0.0.1:5000/app`).
pub fn repo_of(key: &str) -> String {
    Reference::parse(key)
        .map(|r| r.familiar_name())
        .unwrap_or_else(|_| key.to_string())
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OnDisk {
    #[serde(rename = "Repositories", default)]
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

/// The tag table.
pub(crate) struct Tags {
    path: PathBuf,
    map: RwLock<BTreeMap<String, String>>,
}

impl Tags {
    /// Reads `path` (missing is empty).
    pub fn open(path: &Path) -> Result<Tags, ImageError> {
        let map = match std::fs::read(path) {
            Ok(b) => {
                let disk: OnDisk = serde_json::from_slice(&b)
                    .map_err(|e| ImageError::Invalid(format!("corrupt {}: {e}", path.display())))?;
                disk.repositories.into_values().flatten().collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(ImageError::Io {
                    context: format!("reading {}", path.display()),
                    source: e,
                })
            }
        };
        Ok(Tags {
            path: path.to_path_buf(),
            map: RwLock::new(map),
        })
    }

    fn save(&self, map: &BTreeMap<String, String>) -> Result<(), ImageError> {
        let mut disk = OnDisk::default();
        for (k, v) in map {
            disk.repositories
                .entry(repo_of(k))
                .or_default()
                .insert(k.clone(), v.clone());
        }
        let b = serde_json::to_vec(&disk).map_err(|e| ImageError::Invalid(e.to_string()))?;
        write_atomic(&self.path, &b)
    }

    fn write(
        &self,
    ) -> Result<std::sync::RwLockWriteGuard<'_, BTreeMap<String, String>>, ImageError> {
        self.map
            .write()
            .map_err(|_| ImageError::Invalid("tag table lock poisoned".into()))
    }

    /// The image a tag key points at.
    pub fn get(&self, key: &str) -> Option<String> {
        self.map.read().ok()?.get(key).cloned()
    }

    /// The tag keys pointing at `id`, sorted.
    pub fn of(&self, id: &str) -> Vec<String> {
        self.map
            .read()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| *v == id)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every tag key by the ID it points at (each list sorted): one pass for listings, where
    /// [`Tags::of`] per image would read every tag once per image.
    pub fn by_id(&self) -> std::collections::HashMap<String, Vec<String>> {
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        if let Ok(m) = self.map.read() {
            for (k, v) in m.iter() {
                out.entry(v.clone()).or_default().push(k.clone());
            }
        }
        out
    }

    /// Points `key` at `id`; returns the previous target.
    pub fn set(&self, key: &str, id: &str) -> Result<Option<String>, ImageError> {
        let mut m = self.write()?;
        let old = m.insert(key.to_string(), id.to_string());
        if let Err(e) = self.save(&m) {
            match &old {
                Some(o) => m.insert(key.to_string(), o.clone()),
                None => m.remove(key),
            };
            return Err(e);
        }
        Ok(old)
    }

    /// Removes `key`; returns its target.
    pub fn remove(&self, key: &str) -> Result<Option<String>, ImageError> {
        let mut m = self.write()?;
        let old = m.remove(key);
        if let Some(o) = &old {
            if let Err(e) = self.save(&m) {
                m.insert(key.to_string(), o.clone());
                return Err(e);
            }
        }
        Ok(old)
    }

    /// Keeps only tags whose image satisfies `keep` (start-up reconciliation).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut m) = self.write() {
            let before = m.len();
            m.retain(|_, v| keep(v));
            if m.len() != before {
                let _ = self.save(&m);
            }
        }
    }
}
