//! The store itself: images, tags, resolution of names and IDs, deletion.

use crate::fsutil::{clean_temps, write_atomic};
use crate::{chain_ids, storage_id, ImageError};
use berth_core::reference::Reference;
use berth_core::{Digest, StorageDriver};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// A recorded layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    /// Chain id (`sha256:...`).
    pub chain_id: String,
    /// diff_id (`sha256:...` of the uncompressed tar).
    pub diff_id: String,
    /// Parent chain id.
    pub parent: Option<String>,
    /// Uncompressed size in bytes.
    pub size: u64,
}

/// Per-image extras.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    #[serde(default)]
    parent: String,
    #[serde(default)]
    repo_digests: Vec<String>,
}

/// An image as the API shows it.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>`.
    pub id: String,
    /// The parsed config.
    pub config: Value,
    /// Tags pointing at it (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `name@sha256:...` digests.
    pub repo_digests: Vec<String>,
    /// Parent image ID (build/commit), or empty.
    pub parent: String,
    /// diff_ids of its layers.
    pub diff_ids: Vec<String>,
    /// Total uncompressed size.
    pub size: u64,
}

impl Image {
    /// The chain id of its top layer.
    pub fn top_chain(&self) -> Option<String> {
        chain_ids(&self.diff_ids).pop()
    }
    /// `created` from the config.
    pub fn created(&self) -> &str {
        self.config
            .get("created")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    /// Labels from the config.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .pointer("/config/Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The image store.
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) storage: Arc<dyn StorageDriver>,
    pub(crate) layer_lock: Mutex<()>,
    /// Largest layer accepted.
    pub max_layer: u64,
    tags: RwLock<BTreeMap<String, String>>,
    write: Mutex<()>,
}

/// Normalises a user reference to the tag key (`busybox` → `busybox:latest`).
pub fn tag_key(name: &str) -> Result<String, ImageError> {
    let r = Reference::parse(name).map_err(|e| ImageError::Reference(e.to_string()))?;
    Ok(r.familiar_string())
}

impl ImageStore {
    /// Opens (creating) the store and removes leftovers of interrupted operations.
    pub fn open(
        root: &Path,
        storage: Arc<dyn StorageDriver>,
        max_layer: u64,
    ) -> Result<ImageStore, ImageError> {
        for d in ["configs", "layers", "layertars", "meta", "tmp"] {
            std::fs::create_dir_all(root.join(d)).map_err(ImageError::io(format!(
                "creating {}",
                root.join(d).display()
            )))?;
            clean_temps(&root.join(d));
        }
        if let Ok(entries) = std::fs::read_dir(root.join("tmp")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let tags: BTreeMap<String, String> = std::fs::read(root.join("repositories.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let s = ImageStore {
            root: root.to_path_buf(),
            storage,
            layer_lock: Mutex::new(()),
            max_layer,
            tags: RwLock::new(tags),
            write: Mutex::new(()),
        };
        s.reconcile();
        Ok(s)
    }

    /// Storage layers that look like image layers (64 hex) but have no record are half-made:
    /// remove them.
    fn reconcile(&self) {
        let Ok(ids) = self.storage.list() else { return };
        for id in ids {
            let is_layer_name = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            let recorded = self.root.join("layers").join(format!("{id}.json")).exists();
            let is_container = self
                .root
                .parent()
                .is_some_and(|d| d.join("containers").join(&id).exists());
            if is_layer_name && !recorded && !is_container {
                tracing::info!("removing half-made layer {id}");
                let _ = self.storage.remove(&id);
            }
        }
    }

    fn config_path(&self, id: &str) -> PathBuf {
        self.root
            .join("configs")
            .join(id.strip_prefix("sha256:").unwrap_or(id))
    }

    /// Every image ID.
    pub fn ids(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("configs"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .map(|n| format!("sha256:{n}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The number of images.
    pub fn count(&self) -> usize {
        self.ids().len()
    }

    /// The exact config bytes of image `id`.
    pub fn config_bytes(&self, id: &str) -> Result<Vec<u8>, ImageError> {
        std::fs::read(self.config_path(id)).map_err(|_| ImageError::NotFound(id.to_string()))
    }

    /// Loads image `id`.
    pub fn get(&self, id: &str) -> Result<Image, ImageError> {
        let bytes = self.config_bytes(id)?;
        let config: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Invalid(format!("bad config of {id}: {e}")))?;
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let size = chain_ids(&diff_ids)
            .iter()
            .filter_map(|c| self.layer(c))
            .map(|l| l.size)
            .sum();
        let meta: Meta = std::fs::read(
            self.root
                .join("meta")
                .join(format!("{}.json", storage_id(id))),
        )
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
        let repo_tags = self
            .tags
            .read()
            .map(|t| {
                t.iter()
                    .filter(|(_, v)| *v == id)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Image {
            id: id.to_string(),
            config,
            repo_tags,
            repo_digests: meta.repo_digests,
            parent: meta.parent,
            diff_ids,
            size,
        })
    }

    /// Every image.
    pub fn list(&self) -> Vec<Image> {
        self.ids()
            .iter()
            .filter_map(|id| self.get(id).ok())
            .collect()
    }

    /// Resolves a name (`busybox`, `busybox:1`, `127.0.0.1:5000/x@sha256:...`) or an ID (full
    /// or a unique prefix of at least 1 hex character, with or without `sha256:`).
    pub fn resolve(&self, name: &str) -> Result<Image, ImageError> {
        let hexpart = name.strip_prefix("sha256:").unwrap_or(name);
        if !hexpart.is_empty()
            && hexpart.len() <= 64
            && hexpart
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let matches: Vec<String> = self
                .ids()
                .into_iter()
                .filter(|i| i[7..].starts_with(hexpart))
                .collect();
            if matches.len() == 1 {
                return self.get(&matches[0]);
            }
        }
        if let Ok(key) = tag_key(name) {
            if let Some(id) = self.tags.read().ok().and_then(|t| t.get(&key).cloned()) {
                return self.get(&id);
            }
            if key.contains('@') {
                for img in self.list() {
                    if img
                        .repo_digests
                        .iter()
                        .any(|d| tag_key(d).ok().as_deref() == Some(key.as_str()))
                    {
                        return Ok(img);
                    }
                }
            }
        }
        Err(ImageError::NotFound(name.to_string()))
    }

    /// Records an image from its config bytes (all layers must be present) and tags it.
    pub fn add_image(
        &self,
        config_bytes: &[u8],
        tags: &[String],
        parent: Option<&str>,
    ) -> Result<String, ImageError> {
        let id = Digest::of(config_bytes).to_string();
        let config: Value = serde_json::from_slice(config_bytes)
            .map_err(|e| ImageError::Invalid(format!("invalid image config: {e}")))?;
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| ImageError::Invalid("image config has no rootfs.diff_ids".into()))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        for c in chain_ids(&diff_ids) {
            if self.layer(&c).is_none() {
                return Err(ImageError::Invalid(format!(
                    "layer {c} of image {id} is missing"
                )));
            }
        }
        let _g = self
            .write
            .lock()
            .map_err(|_| ImageError::Invalid("store lock poisoned".into()))?;
        if let Some(p) = parent {
            let meta = Meta {
                parent: p.to_string(),
                repo_digests: Vec::new(),
            };
            let b = serde_json::to_vec(&meta).map_err(|e| ImageError::Invalid(e.to_string()))?;
            write_atomic(
                &self
                    .root
                    .join("meta")
                    .join(format!("{}.json", storage_id(&id))),
                &b,
            )?;
        }
        write_atomic(&self.config_path(&id), config_bytes)?;
        drop(_g);
        for t in tags {
            self.tag(&id, t)?;
        }
        Ok(id)
    }

    /// Adds a repo digest to an image's metadata.
    pub fn add_repo_digest(&self, id: &str, digest_ref: &str) -> Result<(), ImageError> {
        let _g = self
            .write
            .lock()
            .map_err(|_| ImageError::Invalid("store lock poisoned".into()))?;
        let p = self
            .root
            .join("meta")
            .join(format!("{}.json", storage_id(id)));
        let mut meta: Meta = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if !meta.repo_digests.iter().any(|d| d == digest_ref) {
            meta.repo_digests.push(digest_ref.to_string());
        }
        let b = serde_json::to_vec(&meta).map_err(|e| ImageError::Invalid(e.to_string()))?;
        write_atomic(&p, &b)
    }

    fn save_tags(&self, tags: &BTreeMap<String, String>) -> Result<(), ImageError> {
        let b = serde_json::to_vec_pretty(tags).map_err(|e| ImageError::Invalid(e.to_string()))?;
        write_atomic(&self.root.join("repositories.json"), &b)
    }

    /// Points tag `name` at image `id`; returns the previous image of that tag, if another.
    pub fn tag(&self, id: &str, name: &str) -> Result<Option<String>, ImageError> {
        let key = tag_key(name)?;
        let _g = self
            .write
            .lock()
            .map_err(|_| ImageError::Invalid("store lock poisoned".into()))?;
        let mut tags = self
            .tags
            .write()
            .map_err(|_| ImageError::Invalid("tags lock poisoned".into()))?;
        let old = tags.insert(key, id.to_string());
        self.save_tags(&tags)?;
        Ok(old.filter(|o| o != id))
    }

    /// Removes tag `name`; returns the image it pointed at.
    pub fn untag(&self, name: &str) -> Result<String, ImageError> {
        let key = tag_key(name)?;
        let _g = self
            .write
            .lock()
            .map_err(|_| ImageError::Invalid("store lock poisoned".into()))?;
        let mut tags = self
            .tags
            .write()
            .map_err(|_| ImageError::Invalid("tags lock poisoned".into()))?;
        let id = tags
            .remove(&key)
            .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        self.save_tags(&tags)?;
        Ok(id)
    }

    /// The tag key a user name stands for, if it is a tag (not an ID).
    pub fn is_tag(&self, name: &str) -> Option<String> {
        let key = tag_key(name).ok()?;
        self.tags.read().ok()?.contains_key(&key).then_some(key)
    }

    /// Deletes image `id` (its tags must be gone) and the layers no other image uses.
    pub fn delete(&self, id: &str) -> Result<Vec<String>, ImageError> {
        let img = self.get(id)?;
        let _ = std::fs::remove_file(self.config_path(id));
        let _ = std::fs::remove_file(
            self.root
                .join("meta")
                .join(format!("{}.json", storage_id(id))),
        );
        let others: Vec<Vec<String>> = self.list().iter().map(|i| chain_ids(&i.diff_ids)).collect();
        let in_use = |c: &str| others.iter().any(|chains| chains.iter().any(|x| x == c));
        if let Some(top) = img.top_chain() {
            self.release_layer(&top, &in_use)?;
        }
        Ok(vec![id.to_string()])
    }

    /// The storage driver.
    pub fn storage(&self) -> &Arc<dyn StorageDriver> {
        &self.storage
    }

    /// The temp folder for spooling.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}
