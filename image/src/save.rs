//! `save`: images to a docker-archive tarball with OCI layout entries, as Docker 25+ writes —
//! `blobs/sha256/*` (configs, uncompressed layers, OCI manifests), `index.json`, `oci-layout`,
//! `manifest.json`, `repositories`. Layers are the exact tars the images were made from
//! (rebuilt and checked against their diff_ids, `split::rebuild`), so every engine computes
//! the same image IDs.

use crate::store::{Image, ImageStore};
use crate::{chain_ids, media, ImageError};
use berth_core::reference::Reference;
use berth_core::Digest;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

/// The host architecture in Go's naming.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn entry<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, name, data)
}

fn dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(0);
    b.append_data(&mut h, name, io::empty())
}

impl ImageStore {
    /// Writes `names` (tags or IDs) as one archive to `w`.
    pub fn save(&self, names: &[String], w: &mut dyn Write) -> Result<(), ImageError> {
        let mut images: Vec<(Image, Vec<String>)> = Vec::new();
        for n in names {
            let img = self.resolve(n)?;
            let tags: Vec<String> = match self.is_tag(n) {
                Some(t) => vec![t],
                None => Vec::new(),
            };
            match images.iter_mut().find(|(i, _)| i.id == img.id) {
                Some((_, t)) => t.extend(tags),
                None => images.push((img, tags)),
            }
        }
        let mut b = tar::Builder::new(w);
        let io_err = |e: io::Error| ImageError::Io {
            context: "writing the archive".into(),
            source: e,
        };
        dir(&mut b, "blobs").map_err(io_err)?;
        dir(&mut b, "blobs/sha256").map_err(io_err)?;
        let mut written: BTreeSet<String> = BTreeSet::new();
        let mut manifest = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (img, tags) in &images {
            let cfg = self.config_bytes(&img.id)?;
            let cfg_hex = img.id.trim_start_matches("sha256:").to_string();
            if written.insert(cfg_hex.clone()) {
                entry(&mut b, &format!("blobs/sha256/{cfg_hex}"), &cfg).map_err(io_err)?;
            }
            let mut layer_descs = Vec::new();
            let mut layer_paths = Vec::new();
            for (chain, diff_id) in chain_ids(&img.diff_ids).iter().zip(&img.diff_ids) {
                let mut tar = self.open_layer_tar(chain)?;
                let size = tar.size();
                let hex = diff_id.trim_start_matches("sha256:").to_string();
                if written.insert(hex.clone()) {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(size);
                    h.set_mtime(0);
                    b.append_data(&mut h, format!("blobs/sha256/{hex}"), &mut tar)
                        .map_err(|e| crate::layer_read_error("writing the archive", e))?;
                }
                layer_descs
                    .push(json!({"mediaType": media::OCI_LAYER, "digest": diff_id, "size": size}));
                layer_paths.push(format!("blobs/sha256/{hex}"));
            }
            let oci_manifest = json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": media::OCI_CONFIG, "digest": img.id, "size": cfg.len()},
                "layers": layer_descs,
            });
            let mbytes = serde_json::to_vec(&oci_manifest)
                .map_err(|e| ImageError::Invalid(e.to_string()))?;
            let mdigest = Digest::of(&mbytes);
            if written.insert(mdigest.hex().to_string()) {
                entry(&mut b, &format!("blobs/sha256/{}", mdigest.hex()), &mbytes)
                    .map_err(io_err)?;
            }
            let mut desc = |annotations: Value| {
                index.push(json!({"mediaType": media::OCI_MANIFEST, "digest": mdigest.to_string(), "size": mbytes.len(), "annotations": annotations}));
            };
            if tags.is_empty() {
                desc(json!({}));
            }
            for t in tags {
                if let Ok(r) = Reference::parse(t) {
                    desc(
                        json!({"io.containerd.image.name": r.to_string(), "org.opencontainers.image.ref.name": r.tag.clone().unwrap_or_default()}),
                    );
                    if let (Some(tag), Some(top)) = (&r.tag, img.diff_ids.last()) {
                        repositories
                            .entry(r.familiar_name())
                            .or_default()
                            .insert(tag.clone(), top.trim_start_matches("sha256:").to_string());
                    }
                }
            }
            manifest.push(json!({"Config": format!("blobs/sha256/{cfg_hex}"), "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) }, "Layers": layer_paths}));
        }
        let index_doc =
            json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": index});
        let enc = |v: &Value| serde_json::to_vec(v).map_err(|e| ImageError::Invalid(e.to_string()));
        entry(&mut b, "index.json", &enc(&index_doc)?).map_err(io_err)?;
        entry(&mut b, "manifest.json", &enc(&json!(manifest))?).map_err(io_err)?;
        entry(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err)?;
        if !repositories.is_empty() {
            entry(&mut b, "repositories", &enc(&json!(repositories))?).map_err(io_err)?;
        }
        b.finish().map_err(io_err)
    }
}
