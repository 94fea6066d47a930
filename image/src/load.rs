//! `load`: docker-archive tarballs (as `docker save` writes, legacy and Docker 25+ with OCI
//! layout entries) and OCI image-layout tarballs; and `import` of a root filesystem tarball.
//!
//! The archive is spooled entry by entry into a private temp folder (manifest.json may come
//! last), every blob named by digest is verified, layers are applied with their diff_ids
//! checked, and an image is recorded only when all its layers are. Nothing half-made is ever
//! visible; the spool folder is removed whatever happens.

use crate::store::ImageStore;
use crate::{media, ImageError};
use berth_core::Digest;
use serde::Deserialize;
use serde_json::Value;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

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

fn spool(r: impl Read, dir: &Path) -> Result<(), ImageError> {
    let mut ar = tar::Archive::new(r);
    let entries = ar
        .entries()
        .map_err(|e| ImageError::Invalid(format!("invalid tar archive: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| ImageError::Invalid(format!("invalid tar archive: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| ImageError::Invalid(format!("invalid tar archive: {e}")))?
            .into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(ImageError::Invalid(format!(
                "invalid archive entry {}: path escapes the archive",
                path.display()
            )));
        }
        let dest = dir.join(&path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(ImageError::io("spooling the archive"))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p).map_err(ImageError::io("spooling the archive"))?;
                }
                let want = entry.header().entry_size().unwrap_or(0);
                let mut f = File::create(&dest).map_err(ImageError::io("spooling the archive"))?;
                let got = io::copy(&mut entry, &mut f)
                    .map_err(|e| ImageError::Invalid(format!("invalid tar archive: {e}")))?;
                if got != want {
                    return Err(ImageError::Invalid(format!(
                        "invalid tar archive: unexpected EOF in {}",
                        path.display()
                    )));
                }
            }
            tar::EntryType::Symlink => {
                // Legacy archives link identical layers: allow links inside the spool only.
                let target = entry
                    .link_name()
                    .map_err(|e| ImageError::Invalid(format!("invalid tar archive: {e}")))?
                    .ok_or_else(|| {
                        ImageError::Invalid(format!(
                            "invalid archive entry {}: symlink without target",
                            path.display()
                        ))
                    })?
                    .into_owned();
                let base = path.parent().unwrap_or(Path::new(""));
                if target.is_absolute() || !stays_inside(&base.join(&target)) {
                    return Err(ImageError::Invalid(format!(
                        "invalid archive entry {}: symlink to {} points outside the archive",
                        path.display(),
                        target.display()
                    )));
                }
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p).map_err(ImageError::io("spooling the archive"))?;
                }
                let _ = fs::remove_file(&dest);
                std::os::unix::fs::symlink(&target, &dest)
                    .map_err(ImageError::io("spooling the archive"))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a relative path never climbs above its starting folder.
fn stays_inside(p: &Path) -> bool {
    let mut depth = 0i32;
    for c in p.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// Opens `rel` inside the spool without leaving it.
fn open_in(dir: &Path, rel: &str) -> Result<File, ImageError> {
    let p = dir.join(rel.trim_start_matches('/'));
    let canon = p
        .canonicalize()
        .map_err(|_| ImageError::Invalid(format!("archive entry {rel} is missing")))?;
    let root = dir
        .canonicalize()
        .map_err(ImageError::io("resolving the spool"))?;
    if !canon.starts_with(&root) {
        return Err(ImageError::Invalid(format!(
            "archive entry {rel} points outside the archive"
        )));
    }
    File::open(&canon).map_err(ImageError::io(format!("opening {rel}")))
}

fn read_in(dir: &Path, rel: &str) -> Result<Vec<u8>, ImageError> {
    let mut v = Vec::new();
    open_in(dir, rel)?
        .read_to_end(&mut v)
        .map_err(ImageError::io(format!("reading {rel}")))?;
    Ok(v)
}

/// Verifies a blob file named `blobs/sha256/<hex>` against its name.
fn verify_named_blob(dir: &Path, rel: &str) -> Result<(), ImageError> {
    if !rel.starts_with("blobs/sha256/") {
        return Ok(());
    }
    let mut r =
        berth_archive::DigestReader::new(BufReader::with_capacity(1 << 20, open_in(dir, rel)?));
    io::copy(&mut r, &mut io::sink()).map_err(ImageError::io(format!("reading {rel}")))?;
    check_blob_name(rel, r.finish().0)
}

/// Compares the digest of blob `rel` with the one its `blobs/sha256/<hex>` name gives.
fn check_blob_name(rel: &str, actual: String) -> Result<(), ImageError> {
    let Some(hex) = rel.strip_prefix("blobs/sha256/") else {
        return Ok(());
    };
    let expected = format!("sha256:{hex}");
    if actual != expected {
        return Err(ImageError::Digest {
            what: rel.to_string(),
            expected,
            actual,
        });
    }
    Ok(())
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
        spool(r, &dir)?;
        let mut created = Vec::new();
        let res = if dir.join("manifest.json").is_file() {
            self.load_docker(&dir, progress, &mut created)
        } else if dir.join("index.json").is_file() {
            self.load_oci(&dir, progress, &mut created)
        } else {
            Err(ImageError::Invalid("invalid archive: neither manifest.json nor index.json found (not a docker save or OCI layout tarball)".into()))
        };
        if res.is_err() {
            // Layers this load made that no image ended up using go again.
            self.gc_layers(&created);
        }
        res
    }

    fn apply_layers(
        &self,
        dir: &Path,
        config: &Value,
        layers: &[String],
        created: &mut Vec<String>,
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
            let chain = crate::chain_id(parent.as_deref(), diff_id);
            if self.layer(&chain).is_none() {
                // One pass: the blob is hashed while it is applied. The diff_id check inside
                // `apply_layer` vouches for the content; a blob that does not match its name
                // still fails the load (and the layer goes again with the others it made).
                let mut raw = berth_archive::DigestReader::new(BufReader::with_capacity(
                    1 << 20,
                    open_in(dir, rel)?,
                ));
                created.push(self.apply_layer(parent.as_deref(), diff_id, &mut raw)?);
                io::copy(&mut raw, &mut io::sink())
                    .map_err(ImageError::io(format!("reading {rel}")))?;
                check_blob_name(rel, raw.finish().0)?;
            }
            parent = Some(chain);
        }
        Ok(())
    }

    fn load_docker(
        &self,
        dir: &Path,
        progress: &mut dyn FnMut(String),
        created: &mut Vec<String>,
    ) -> Result<Vec<String>, ImageError> {
        let manifest: Vec<ManifestEntry> = serde_json::from_slice(&read_in(dir, "manifest.json")?)
            .map_err(|e| ImageError::Invalid(format!("invalid manifest.json: {e}")))?;
        let mut out = Vec::new();
        for m in manifest {
            verify_named_blob(dir, &m.config)?;
            let cfg_bytes = read_in(dir, &m.config)?;
            let config: Value = serde_json::from_slice(&cfg_bytes)
                .map_err(|e| ImageError::Invalid(format!("invalid image config: {e}")))?;
            self.apply_layers(dir, &config, &m.layers, created)?;
            let tags = m.repo_tags.unwrap_or_default();
            self.finish_load(&cfg_bytes, &tags, progress, &mut out)?;
        }
        Ok(out)
    }

    fn load_oci(
        &self,
        dir: &Path,
        progress: &mut dyn FnMut(String),
        created: &mut Vec<String>,
    ) -> Result<Vec<String>, ImageError> {
        let index: Value = serde_json::from_slice(&read_in(dir, "index.json")?)
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
            let rel = format!("blobs/sha256/{}", digest.hex());
            verify_named_blob(dir, &rel)?;
            let bytes = read_in(dir, &rel)?;
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
            let cfg_rel = format!("blobs/sha256/{}", cfg_digest.hex());
            verify_named_blob(dir, &cfg_rel)?;
            let cfg_bytes = read_in(dir, &cfg_rel)?;
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
            self.apply_layers(dir, &config, &layers, created)?;
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
