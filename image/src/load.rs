//! `load`: docker-archive tarballs (as `docker save` writes, legacy and Docker 25+ with OCI
//! layout entries) and OCI image-layout tarballs; and `import` of a root filesystem tarball.
//!
//! The archive is read once as it streams in ([`Members`]): layers are applied on the way when
//! the configs before them tell where they go, the rest is kept (small members in memory,
//! large ones uncompressed in a private spool folder) until manifest.json or index.json — which
//! may come last — says how the images are made. Every blob named by digest is verified, every
//! layer's diff_id checked, and an image is recorded only when all its layers are. Nothing
//! half-made is ever visible; layers no image ended up using go again, and the spool folder is
//! removed whatever happens.

use crate::members::Members;
use crate::store::ImageStore;
use crate::{media, ImageError};
use berth_core::Digest;
use serde::Deserialize;
use serde_json::Value;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl ImageStore {
    /// Loads an archive; `progress` receives Docker's lines (`Loaded image: busybox:latest`).
    pub fn load(
        &self,
        r: impl Read,
        progress: &mut dyn FnMut(String),
    ) -> Result<Vec<String>, ImageError> {
        let dir = self.tmp_dir().join(format!(
            "load-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&dir).map_err(ImageError::io("creating the load spool"))?;
        let _spool = Spool(dir.clone());
        let mut members = Members::read(self, r, &dir)?;
        let res = if members.has("manifest.json") {
            self.load_docker(&mut members, progress)
        } else if members.has("index.json") {
            self.load_oci(&mut members, progress)
        } else {
            Err(ImageError::Invalid("invalid archive: neither manifest.json nor index.json found (not a docker save or OCI layout tarball)".into()))
        };
        // Layers this load made that no image ended up using go again.
        self.gc_layers(&members.created);
        res
    }

    fn apply_layers(
        &self,
        members: &mut Members<'_>,
        config: &Value,
        layers: &[String],
    ) -> Result<(), ImageError> {
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| ImageError::Invalid("image config has no rootfs.diff_ids".into()))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if diff_ids.len() != layers.len() {
            return Err(ImageError::Invalid(format!(
                "image has {} layers but its config lists {} diff_ids",
                layers.len(),
                diff_ids.len()
            )));
        }
        let mut parent: Option<String> = None;
        for (rel, diff_id) in layers.iter().zip(&diff_ids) {
            parent = Some(members.layer(rel, parent.as_deref(), diff_id)?);
        }
        Ok(())
    }

    fn load_docker(
        &self,
        members: &mut Members<'_>,
        progress: &mut dyn FnMut(String),
    ) -> Result<Vec<String>, ImageError> {
        let manifest: Vec<ManifestEntry> = serde_json::from_slice(&members.bytes("manifest.json")?)
            .map_err(|e| ImageError::Invalid(format!("invalid manifest.json: {e}")))?;
        let mut out = Vec::new();
        for m in manifest {
            let cfg_bytes = members.bytes(&m.config)?;
            let config: Value = serde_json::from_slice(&cfg_bytes)
                .map_err(|e| ImageError::Invalid(format!("invalid image config: {e}")))?;
            self.apply_layers(members, &config, &m.layers)?;
            let tags = m.repo_tags.unwrap_or_default();
            self.finish_load(&cfg_bytes, &tags, progress, &mut out)?;
        }
        Ok(out)
    }

    fn load_oci(
        &self,
        members: &mut Members<'_>,
        progress: &mut dyn FnMut(String),
    ) -> Result<Vec<String>, ImageError> {
        let index: Value = serde_json::from_slice(&members.bytes("index.json")?)
            .map_err(|e| ImageError::Invalid(format!("invalid index.json: {e}")))?;
        let mut out = Vec::new();
        let mut queue: Vec<(Value, Option<String>)> = index["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d, None))
            .collect();
        while let Some((desc, inherited)) = queue.pop() {
            let digest: Digest = desc["digest"]
                .as_str()
                .unwrap_or("")
                .parse()
                .map_err(|e| ImageError::Invalid(format!("bad descriptor digest: {e}")))?;
            let bytes = members.bytes(&format!("blobs/sha256/{}", digest.hex()))?;
            let doc: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::Invalid(format!("invalid manifest {digest}: {e}")))?;
            let name = desc
                .pointer("/annotations/io.containerd.image.name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    desc.pointer("/annotations/org.opencontainers.image.ref.name")
                        .and_then(Value::as_str)
                        .filter(|n| n.contains(':') || n.contains('/'))
                        .map(str::to_string)
                })
                .or(inherited);
            let mt = desc["mediaType"]
                .as_str()
                .or(doc["mediaType"].as_str())
                .unwrap_or("");
            if mt == media::OCI_INDEX || doc.get("manifests").is_some() {
                let host_arch = crate::save::host_arch();
                let chosen = doc["manifests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| {
                        let p =
                            |k: &str| d.pointer(&format!("/platform/{k}")).and_then(Value::as_str);
                        p("architecture").is_none_or(|a| a == host_arch)
                            && p("os").is_none_or(|o| o == "linux")
                    })
                    .cloned()
                    .ok_or_else(|| {
                        ImageError::Invalid(format!(
                            "image index {digest} has no manifest for linux/{host_arch}"
                        ))
                    })?;
                queue.push((chosen, name.clone()));
                continue;
            }
            let cfg_digest: Digest = doc
                .pointer("/config/digest")
                .and_then(Value::as_str)
                .unwrap_or("")
                .parse()
                .map_err(|e| ImageError::Invalid(format!("bad config digest: {e}")))?;
            let cfg_bytes = members.bytes(&format!("blobs/sha256/{}", cfg_digest.hex()))?;
            let config: Value = serde_json::from_slice(&cfg_bytes)
                .map_err(|e| ImageError::Invalid(format!("invalid image config: {e}")))?;
            let layers: Vec<String> = doc["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| {
                    l["digest"]
                        .as_str()
                        .unwrap_or("")
                        .parse::<Digest>()
                        .map(|d| format!("blobs/sha256/{}", d.hex()))
                })
                .collect::<Result<_, _>>()
                .map_err(|e| ImageError::Invalid(format!("bad layer digest: {e}")))?;
            self.apply_layers(members, &config, &layers)?;
            let tags: Vec<String> = name.into_iter().collect();
            self.finish_load(&cfg_bytes, &tags, progress, &mut out)?;
        }
        Ok(out)
    }
}

impl ImageStore {
    /// Records a loaded image under `tags`, telling what happened as Docker does.
    fn finish_load(
        &self,
        cfg_bytes: &[u8],
        tags: &[String],
        progress: &mut dyn FnMut(String),
        out: &mut Vec<String>,
    ) -> Result<(), ImageError> {
        let keys: Vec<String> = tags
            .iter()
            .map(|t| crate::tags::tag_key(t))
            .collect::<Result<_, _>>()?;
        let id = self.add_image(cfg_bytes, &[], None)?;
        if keys.is_empty() {
            progress(format!("Loaded image ID: {id}\n"));
            out.push(id);
            return Ok(());
        }
        for k in keys {
            if let Some(old) = self.tag(&id, &k)? {
                progress(format!(
                    "The image {k} already exists, renaming the old one with ID {old} to empty string\n"
                ));
            }
            progress(format!("Loaded image: {k}\n"));
            out.push(k);
        }
        Ok(())
    }
}
