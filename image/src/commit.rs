//! New images from one new layer: `import` of a root filesystem tarball and `commit` of a
//! container's writable layer, with configs shaped as Docker writes them.

use crate::store::ImageStore;
use crate::ImageError;
use serde_json::{json, Map, Value};
use std::io::{self, Read};

/// The diff_id of an empty layer (1024 zero bytes): a commit without changes adds no layer.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// Docker's container `Config` with every field at its zero value, in Docker's order.
pub fn default_container_config() -> Map<String, Value> {
    let v = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
        "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn apply_changes(cfg: &mut Map<String, Value>, changes: &[String]) -> Result<(), ImageError> {
    berth_build::config::apply_changes(cfg, changes).map_err(|e| ImageError::Invalid(e.to_string()))
}

/// What `commit` needs to know about the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOpts {
    /// The container's storage-driver layer id (its rw layer).
    pub layer: String,
    /// The image the container was created from (`sha256:...`), if any.
    pub parent: Option<String>,
    /// The container's ID (recorded as `container`).
    pub container_id: String,
    /// The new image's `config` before `changes` (usually the container's config merged with
    /// the API's overrides).
    pub config: Value,
    /// The command shown as the history entry's `created_by` (the container's Cmd joined).
    pub created_by: String,
    /// Dockerfile-syntax changes (`-c`).
    pub changes: Vec<String>,
    /// `-m`.
    pub comment: String,
    /// `-a`.
    pub author: String,
    /// `repo:tag` to point at the result.
    pub tag: Option<String>,
}

impl ImageStore {
    /// Spools the diff of storage layer `layer` (produced on another thread through a pipe).
    fn spool_diff(&self, layer: &str) -> Result<crate::layers::Spooled, ImageError> {
        let (r, w) = io::pipe().map_err(ImageError::io("creating a pipe"))?;
        let storage = self.storage.clone();
        let layer_id = layer.to_string();
        let producer = std::thread::spawn(move || {
            let mut w = w;
            storage.diff(&layer_id, &mut w)
        });
        let mut reader = r;
        let spooled = self.spool_layer(&mut reader);
        drop(reader);
        producer
            .join()
            .map_err(|_| ImageError::Invalid("the diff thread panicked".into()))??;
        spooled
    }

    /// `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer
    /// image; `changes` are Dockerfile lines (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
    /// VOLUME, WORKDIR ...), `message` the comment (default `Imported from -`).
    pub fn import(
        &self,
        r: &mut dyn Read,
        tag: Option<&str>,
        changes: &[String],
        message: &str,
    ) -> Result<String, ImageError> {
        let key = tag.map(crate::tags::tag_key).transpose()?;
        let mut cfg = default_container_config();
        apply_changes(&mut cfg, changes)?;
        let chain = self.apply_unknown_layer(None, r)?;
        let rec = self
            .layer(&chain)
            .ok_or_else(|| ImageError::Invalid("imported layer vanished".into()))?;
        let created = now();
        let comment = if message.is_empty() {
            "Imported from -"
        } else {
            message
        };
        let config = json!({
            "comment": comment,
            "created": created,
            "config": Value::Object(cfg),
            "architecture": crate::save::host_arch(),
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [rec.diff_id]},
            "history": [{"created": created, "comment": comment}],
        });
        let bytes = serde_json::to_vec(&config).map_err(|e| ImageError::Invalid(e.to_string()))?;
        let tags: Vec<String> = key.into_iter().collect();
        self.add_image(&bytes, &tags, None)
    }

    /// `docker commit`: the container's changes (`StorageDriver::diff` of its rw layer)
    /// become a new layer on top of its image, with a history entry. Returns the image ID.
    pub fn commit(&self, opts: &CommitOpts) -> Result<String, ImageError> {
        let key = opts.tag.as_deref().map(crate::tags::tag_key).transpose()?;
        let parent = opts.parent.as_deref().map(|p| self.get(p)).transpose()?;
        let mut cfg = opts.config.as_object().cloned().unwrap_or_default();
        apply_changes(&mut cfg, &opts.changes)?;
        // No changes at all makes an empty layer, as Docker (the diff of a full-copy driver
        // still lists the unchanged folders).
        let unchanged = self.storage.changes(&opts.layer)?.is_empty();
        let mut diff_ids = parent
            .as_ref()
            .map(|p| p.diff_ids.clone())
            .unwrap_or_default();
        let mut empty = true;
        if !unchanged {
            let spooled = self.spool_diff(&opts.layer)?;
            if spooled.diff_id != EMPTY_LAYER_DIFF_ID {
                let top = parent.as_ref().and_then(|p| p.top_chain());
                self.apply_spooled(top.as_deref(), &spooled)?;
                diff_ids.push(spooled.diff_id.clone());
                empty = false;
            }
        }
        let created = now();
        let mut config = parent
            .as_ref()
            .map(|p| p.config.clone())
            .unwrap_or_else(|| json!({"architecture": crate::save::host_arch(), "os": "linux"}));
        if let Some(obj) = config.as_object_mut() {
            obj.remove("comment");
            obj.remove("container_config");
        }
        config["config"] = Value::Object(cfg);
        config["created"] = json!(created);
        config["container"] = json!(opts.container_id);
        if !opts.comment.is_empty() {
            config["comment"] = json!(opts.comment);
        }
        if opts.author.is_empty() {
            if let Some(obj) = config.as_object_mut() {
                obj.remove("author");
            }
        } else {
            config["author"] = json!(opts.author);
        }
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        let mut h = json!({"created": created, "created_by": opts.created_by});
        if !opts.author.is_empty() {
            h["author"] = json!(opts.author);
        }
        if !opts.comment.is_empty() {
            h["comment"] = json!(opts.comment);
        }
        if empty {
            h["empty_layer"] = json!(true);
        }
        let mut history = config["history"].as_array().cloned().unwrap_or_default();
        history.push(h);
        config["history"] = json!(history);
        let bytes = serde_json::to_vec(&config).map_err(|e| ImageError::Invalid(e.to_string()))?;
        let tags: Vec<String> = key.into_iter().collect();
        self.add_image(&bytes, &tags, parent.as_ref().map(|p| p.id.as_str()))
    }
}
