//! The store itself: opening and start-up reconciliation, image records, resolution of names
//! and IDs, and recording new images.

use crate::fsutil::{clean_temps, write_atomic};
use crate::tags::Tags;
use crate::{chain_ids, storage_id, ImageError};
use berth_core::{Digest, StorageDriver};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A recorded layer (`layers/<chain hex>/`, like Docker's layerdb).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    /// Chain id (`sha256:...`).
    pub chain_id: String,
    /// diff_id (`sha256:...` of the uncompressed tar).
    pub diff_id: String,
    /// Parent chain id.
    pub parent: Option<String>,
    /// Size of the layer's content in bytes (Docker's DiffSize).
    pub size: u64,
    /// The storage driver's layer id.
    pub cache_id: String,
}

/// The per-image record (`imagedb/<hex>.json`); the image exists exactly when it does.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub id: String,
    #[serde(default)]
    pub parent: String,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
    #[serde(default)]
    pub chain_ids: Vec<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub repo_digests: Vec<String>,
    #[serde(default)]
    pub last_tag_time: String,
}

/// An image as the API shows it.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>`.
    pub id: String,
    /// The parsed config.
    pub config: Value,
    /// Tags pointing at it (`busybox:latest`), sorted.
    pub repo_tags: Vec<String>,
    /// `name@sha256:...` digests.
    pub repo_digests: Vec<String>,
    /// Parent image ID (build/commit), or empty.
    pub parent: String,
    /// diff_ids of its layers.
    pub diff_ids: Vec<String>,
    /// Total size of its layers.
    pub size: u64,
    /// When a tag last pointed at it (RFC 3339), or empty.
    pub last_tag_time: String,
}

impl Image {
    /// The chain ids of its layers, bottom first.
    pub fn chain_ids(&self) -> Vec<String> {
        chain_ids(&self.diff_ids)
    }
    /// The chain id of its top layer (none for an image without layers).
    pub fn top_chain(&self) -> Option<String> {
        self.chain_ids().pop()
    }
    /// The storage-driver id of its top layer (what a container's rw layer sits on).
    pub fn top_layer(&self) -> Option<String> {
        self.top_chain().map(|c| storage_id(&c))
    }
    /// `created` from the config.
    pub fn created(&self) -> &str {
        self.config
            .get("created")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    /// `created` as unix seconds (0 when missing or malformed).
    pub fn created_unix(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(self.created())
            .map(|t| t.timestamp())
            .unwrap_or(0)
    }
    /// `created` as unix nanoseconds (0 when missing or malformed), for ordering.
    pub fn created_nanos(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(self.created())
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(0)
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
    /// The short ID (12 hex characters), as Docker prints it.
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }
}

/// The image store.
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) storage: Arc<dyn StorageDriver>,
    /// Serialises layer records' creation and removal (taken before `meta`); holds the chain
    /// ids of the layers being made (claimed by [`ImageStore::begin_layer`]).
    pub(crate) layer_lock: Mutex<BTreeSet<String>>,
    /// Signalled whenever a layer being made is recorded or given up.
    pub(crate) layer_made: Condvar,
    /// Whether the storage driver's layers can be filled in any order (cached at open).
    pub(crate) independent_diffs: bool,
    /// Serialises image record writes.
    meta: Mutex<()>,
    pub(crate) tags: Tags,
    /// Largest uncompressed layer accepted (daemon.json `max-layer-size`).
    pub max_layer: u64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, ImageError> {
    m.lock().map_err(|_| poisoned())
}

pub(crate) fn poisoned() -> ImageError {
    ImageError::Invalid("image store lock poisoned".into())
}

fn hex_of(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ImageStore {
    /// Opens (creating) the store under `root` and repairs what an interrupted operation left:
    /// temp files, spool folders, image records whose layers are gone, config blobs without a
    /// record, recorded layers no image uses, and storage layers without a record.
    pub fn open(
        root: &Path,
        storage: Arc<dyn StorageDriver>,
        max_layer: u64,
    ) -> Result<ImageStore, ImageError> {
        for d in ["blobs/sha256", "imagedb", "layers", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p)
                .map_err(ImageError::io(format!("creating {}", p.display())))?;
            clean_temps(&p);
        }
        clean_temps(root);
        if let Ok(entries) = std::fs::read_dir(root.join("tmp")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
                let _ = std::fs::remove_file(e.path());
            }
        }
        let tags = Tags::open(&root.join("repositories.json"))?;
        let s = ImageStore {
            root: root.to_path_buf(),
            independent_diffs: storage.independent_diffs(),
            storage,
            layer_lock: Mutex::new(BTreeSet::new()),
            layer_made: Condvar::new(),
            meta: Mutex::new(()),
            tags,
            max_layer,
        };
        s.reconcile();
        Ok(s)
    }

    fn reconcile(&self) {
        // Images whose config or layers are missing cannot be used: drop them.
        let mut live_chains = BTreeSet::new();
        let mut live_ids = BTreeSet::new();
        for id in self.ids() {
            match self.get(&id) {
                Ok(img) if img.chain_ids().iter().all(|c| self.layer(c).is_some()) => {
                    live_chains.extend(img.chain_ids());
                    live_ids.insert(hex_of(&id).to_string());
                }
                _ => {
                    tracing::warn!("dropping incomplete image {id}");
                    let _ = std::fs::remove_file(self.record_path(&id));
                }
            }
        }
        self.tags.retain(|id| live_ids.contains(hex_of(id)));
        // Config blobs without a record (a crash between blob and record).
        if let Ok(entries) = std::fs::read_dir(self.root.join("blobs/sha256")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !live_ids.contains(&name) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        // Recorded layers no image uses (a crash mid-load or mid-delete).
        for chain in self.layer_chains() {
            if !live_chains.contains(&chain) {
                tracing::info!("removing unreferenced layer {chain}");
                let sid = storage_id(&chain);
                let _ = std::fs::remove_dir_all(self.layer_dir(&chain));
                let _ = self.storage.remove(&sid);
            }
        }
        // Storage layers that look like image layers but have no record are half-made.
        let Ok(ids) = self.storage.list() else { return };
        for id in ids {
            let image_layer_name = id.len() == 64 && is_hex(&id);
            let recorded = self.root.join("layers").join(&id).is_dir();
            let is_container = self
                .root
                .parent()
                .is_some_and(|d| d.join("containers").join(&id).exists());
            if image_layer_name && !recorded && !is_container {
                tracing::info!("removing half-made layer {id}");
                let _ = self.storage.remove(&id);
            }
        }
    }

    pub(crate) fn config_path(&self, id: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex_of(id))
    }

    pub(crate) fn record_path(&self, id: &str) -> PathBuf {
        self.root
            .join("imagedb")
            .join(format!("{}.json", hex_of(id)))
    }

    fn record(&self, id: &str) -> Option<ImageRecord> {
        std::fs::read(self.record_path(id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    pub(crate) fn write_record(&self, rec: &ImageRecord) -> Result<(), ImageError> {
        let b = serde_json::to_vec(rec).map_err(|e| ImageError::Invalid(e.to_string()))?;
        write_atomic(&self.record_path(&rec.id), &b)
    }

    /// Every image ID (`sha256:...`).
    pub fn ids(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.root.join("imagedb"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
                    .filter(|n| n.len() == 64 && is_hex(n))
                    .map(|n| format!("sha256:{n}"))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The number of images.
    pub fn count(&self) -> usize {
        self.ids().len()
    }

    /// The exact config bytes of image `id`.
    pub fn config_bytes(&self, id: &str) -> Result<Vec<u8>, ImageError> {
        if self.record(id).is_none() {
            return Err(ImageError::NotFound(id.to_string()));
        }
        std::fs::read(self.config_path(id)).map_err(|_| ImageError::NotFound(id.to_string()))
    }

    /// Loads image `id` (`sha256:<hex>`).
    pub fn get(&self, id: &str) -> Result<Image, ImageError> {
        let full = format!("sha256:{}", hex_of(id));
        let tags = self.tags.of(&full);
        self.get_tagged(id, tags)
    }

    /// Loads image `id` whose tags the caller already knows.
    fn get_tagged(&self, id: &str, repo_tags: Vec<String>) -> Result<Image, ImageError> {
        let rec = self
            .record(id)
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        let bytes =
            std::fs::read(self.config_path(id)).map_err(|_| ImageError::NotFound(id.into()))?;
        let config: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Invalid(format!("bad config of {id}: {e}")))?;
        let full = format!("sha256:{}", hex_of(id));
        Ok(Image {
            repo_tags,
            id: full,
            config,
            repo_digests: rec.repo_digests,
            parent: rec.parent,
            diff_ids: rec.diff_ids,
            size: rec.size,
            last_tag_time: rec.last_tag_time,
        })
    }

    /// Every image.
    pub fn list(&self) -> Vec<Image> {
        let mut tags = self.tags.by_id();
        self.ids()
            .iter()
            .filter_map(|id| {
                let t = tags.remove(id).unwrap_or_default();
                self.get_tagged(id, t).ok()
            })
            .collect()
    }

    /// The IDs of images whose parent is `id` (build/commit children).
    pub fn children(&self, id: &str) -> Vec<String> {
        self.ids()
            .into_iter()
            .filter(|c| self.record(c).is_some_and(|r| r.parent == id))
            .collect()
    }

    /// Resolves what a user typed, as Docker does: a full ID (`sha256:<hex>` or 64 hex), then a
    /// tag or digest reference (`busybox`, `busybox:1`, `x@sha256:...`), then a unique ID
    /// prefix.
    pub fn resolve(&self, name: &str) -> Result<Image, ImageError> {
        let hexpart = name.strip_prefix("sha256:").unwrap_or(name);
        let looks_hex = !hexpart.is_empty() && hexpart.len() <= 64 && is_hex(hexpart);
        if looks_hex && (hexpart.len() == 64 || name.starts_with("sha256:")) {
            let id = format!("sha256:{hexpart}");
            if hexpart.len() == 64 {
                return self.get(&id).map_err(|_| ImageError::NotFound(name.into()));
            }
        }
        if let Ok(key) = crate::tags::tag_key(name) {
            if let Some(id) = self.tags.get(&key) {
                return self.get(&id);
            }
            if key.contains('@') {
                for img in self.list() {
                    if img
                        .repo_digests
                        .iter()
                        .any(|d| crate::tags::tag_key(d).ok().as_deref() == Some(key.as_str()))
                    {
                        return Ok(img);
                    }
                }
            }
        }
        if looks_hex {
            let matches: Vec<String> = self
                .ids()
                .into_iter()
                .filter(|i| i[7..].starts_with(hexpart))
                .collect();
            if matches.len() == 1 {
                return self.get(&matches[0]);
            }
        }
        // Docker names what it looked for: `busybox:latest`, or the ID as given.
        let shown = if name.starts_with("sha256:") {
            name.to_string()
        } else {
            crate::tags::tag_key(name).unwrap_or_else(|_| name.to_string())
        };
        Err(ImageError::NotFound(shown))
    }

    /// Records an image from its exact config bytes (all its layers must be recorded) and
    /// points `tags` at it. Returns the image ID (sha256 of the bytes). Idempotent.
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
            .map(|v| {
                v.as_str()
                    .and_then(|s| s.parse::<Digest>().ok())
                    .map(|d| d.to_string())
                    .ok_or_else(|| ImageError::Invalid(format!("invalid diff_id {v}")))
            })
            .collect::<Result<_, _>>()?;
        {
            let _layers = lock(&self.layer_lock)?;
            let chains = chain_ids(&diff_ids);
            let mut size = 0;
            for c in &chains {
                let l = self.layer(c).ok_or_else(|| {
                    ImageError::Invalid(format!("layer {c} of image {id} is missing"))
                })?;
                size += l.size;
            }
            let _meta = lock(&self.meta)?;
            let old = self.record(&id);
            let rec = ImageRecord {
                id: id.clone(),
                parent: parent
                    .map(str::to_string)
                    .or_else(|| old.as_ref().map(|o| o.parent.clone()))
                    .unwrap_or_default(),
                created: config
                    .get("created")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                diff_ids,
                chain_ids: chains,
                size,
                repo_digests: old
                    .as_ref()
                    .map(|o| o.repo_digests.clone())
                    .unwrap_or_default(),
                last_tag_time: old.map(|o| o.last_tag_time).unwrap_or_default(),
            };
            write_atomic(&self.config_path(&id), config_bytes)?;
            self.write_record(&rec)?;
        }
        for t in tags {
            self.tag(&id, t)?;
        }
        Ok(id)
    }

    /// Adds a `name@sha256:...` repo digest to image `id` (pull and push record these).
    pub fn add_repo_digest(&self, id: &str, digest_ref: &str) -> Result<(), ImageError> {
        let _meta = lock(&self.meta)?;
        let mut rec = self
            .record(id)
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        if !rec.repo_digests.iter().any(|d| d == digest_ref) {
            rec.repo_digests.push(digest_ref.to_string());
        }
        self.write_record(&rec)
    }

    /// Points tag `name` at image `id`; returns the image the tag pointed at before, if it was
    /// another one.
    pub fn tag(&self, id: &str, name: &str) -> Result<Option<String>, ImageError> {
        let key = crate::tags::check_new_tag(name)?;
        let _meta = lock(&self.meta)?;
        let mut rec = self
            .record(id)
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        let old = self.tags.set(&key, id)?;
        rec.last_tag_time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        self.write_record(&rec)?;
        Ok(old.filter(|o| o != id))
    }

    /// Removes tag `name`; returns the image it pointed at.
    pub fn untag(&self, name: &str) -> Result<String, ImageError> {
        let key = crate::tags::tag_key(name)?;
        let _meta = lock(&self.meta)?;
        self.tags
            .remove(&key)?
            .ok_or_else(|| ImageError::NotFound(name.to_string()))
    }

    /// The tag key a user name stands for, if it is a tag in the store (not an ID).
    pub fn is_tag(&self, name: &str) -> Option<String> {
        let key = crate::tags::tag_key(name).ok()?;
        self.tags.get(&key).map(|_| key)
    }

    /// Removes image `id`'s record and config (its tags must be gone already) and then the
    /// layers no other image uses. Returns the chain ids of the removed layers.
    pub(crate) fn delete_record(&self, id: &str) -> Result<Vec<String>, ImageError> {
        let img = self.get(id)?;
        let _layers = lock(&self.layer_lock)?;
        {
            let _meta = lock(&self.meta)?;
            std::fs::remove_file(self.record_path(id))
                .map_err(ImageError::io(format!("removing the record of {id}")))?;
            crate::fsutil::sync_dir(&self.root.join("imagedb"));
            let _ = std::fs::remove_file(self.config_path(id));
        }
        let used = self.used_chains();
        let mut removed = Vec::new();
        for chain in img.chain_ids().iter().rev() {
            if used.contains(chain) {
                break;
            }
            self.remove_layer(chain)?;
            removed.push(chain.clone());
        }
        Ok(removed)
    }

    /// The chain ids every recorded image uses.
    fn used_chains(&self) -> BTreeSet<String> {
        self.ids()
            .iter()
            .filter_map(|i| self.record(i))
            .flat_map(|r| r.chain_ids)
            .collect()
    }

    /// Removes those of `chains` (in creation order) that no image uses: what a failed load
    /// or pull calls for the layers it made (never remove image layers from the storage
    /// driver directly — their records would outlive them).
    pub fn gc_layers(&self, chains: &[String]) {
        let Ok(_layers) = lock(&self.layer_lock) else {
            return;
        };
        let used = self.used_chains();
        for c in chains.iter().rev() {
            if !used.contains(c) && self.layer(c).is_some() {
                if let Err(e) = self.remove_layer(c) {
                    tracing::warn!("removing unused layer {c}: {e}");
                }
            }
        }
    }

    /// The storage driver.
    pub fn storage(&self) -> &Arc<dyn StorageDriver> {
        &self.storage
    }

    /// The store's private temp folder (same filesystem, wiped at open).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}
