//! The members of a `load` archive, taken as the archive streams in.
//!
//! Small members (configs, manifests, index.json) stay in memory. A large member is a layer
//! (or something `load` will ignore): it is streamed once — hashed (blob digest and, when
//! compressed, diff_id) and decompressed within `max-layer-size`. When the configs and
//! manifests seen so far say which layer
//! a member is (its name is the digest of a blob an earlier config or OCI manifest lists) and
//! its parent layer is already there, it is applied to the storage driver in that same pass
//! (as docker-archives written by berth and Docker list the config before the layers, most
//! layers are); when the layer is there already it is only hashed. Anything else is kept as a
//! file and applied once manifest.json or index.json (which may come last) tells where it
//! goes. A guess never decides anything: every use checks the blob digest against the name
//! and the diff_id against the config, and a member applied under a wrong guess is applied
//! again from the tar its layer rebuilds (the layer made by the guess is removed when no image
//! uses it); a member whose content is not the guessed layer's is not kept.

use crate::store::ImageStore;
use crate::{chain_id, ImageError};
use berth_archive::DigestReader;
use berth_core::Digest;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use crate::layers::{Applied, Streamed};

/// Members up to this size are kept in memory.
const SMALL: u64 = 1 << 20;
/// At most this much is kept in memory in all; later small members go to files.
const MEMORY_CAP: u64 = 64 << 20;

/// One member of the archive.
enum Member {
    /// A small member's bytes.
    Bytes(Vec<u8>),
    /// A large member, uncompressed into a file of the spool folder.
    File { path: PathBuf, streamed: Streamed },
    /// A layer applied while it streamed in (or found complete already), under `chain`.
    Layer { chain: String, streamed: Streamed },
    /// A member only hashed because its guessed layer was there, but whose content turned
    /// out to be another: it was not kept.
    Unkept { streamed: Streamed },
    /// A symbolic link to another member (legacy archives link identical layers).
    Link(String),
}

/// Where a layer named by its blob digest goes, as a config or manifest lists it.
struct Guess {
    diff_id: String,
    parent: Option<String>,
}

/// The archive's members by path (relative, normalised), and what they tell about layers.
pub(crate) struct Members<'s> {
    store: &'s ImageStore,
    dir: PathBuf,
    members: HashMap<String, Member>,
    /// Blob hex → where that blob goes (first listing wins).
    guesses: HashMap<String, Guess>,
    /// Config hex → its diff_ids, for OCI manifests that come later.
    configs: HashMap<String, Vec<String>>,
    /// OCI manifests whose config has not come yet: (config hex, layer blob hexes).
    pending: Vec<(String, Vec<String>)>,
    in_memory: u64,
    files: u64,
    /// Chain ids of the layers this load made (removed again unless an image uses them).
    pub created: Vec<String>,
}

fn invalid(e: impl std::fmt::Display) -> ImageError {
    ImageError::Invalid(format!("invalid tar archive: {e}"))
}

/// The hex part of a `sha256:<64 hex>` digest.
fn digest_hex(s: &str) -> Option<&str> {
    s.parse::<Digest>()
        .ok()
        .map(|_| s.trim_start_matches("sha256:"))
}

/// The relative path `p` without `.` parts, or `None` when it climbs above its start.
fn normalise(p: &Path) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out.join("/"))
}

/// The blob digest a member's name promises: `blobs/sha256/<hex>`, or `<hex>/layer.tar`.
fn name_hex(rel: &str) -> Option<&str> {
    let hex = rel
        .strip_prefix("blobs/sha256/")
        .or_else(|| rel.strip_suffix("/layer.tar"))?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// Compares the digest of member `rel` with the one its `blobs/sha256/<hex>` name gives.
fn check_blob_name(rel: &str, actual: &str) -> Result<(), ImageError> {
    let Some(hex) = rel.strip_prefix("blobs/sha256/") else {
        return Ok(());
    };
    let expected = format!("sha256:{hex}");
    if actual != expected {
        return Err(ImageError::Digest {
            what: rel.to_string(),
            expected,
            actual: actual.to_string(),
        });
    }
    Ok(())
}

fn diff_mismatch(expected: &str, actual: &str) -> ImageError {
    ImageError::Digest {
        what: "layer diff_id".into(),
        expected: expected.into(),
        actual: actual.into(),
    }
}

/// Counts what is read through it.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<'s> Members<'s> {
    /// Reads the whole archive `r`, spooling into the fresh folder `dir` (the caller removes
    /// it).
    pub fn read(store: &'s ImageStore, r: impl Read, dir: &Path) -> Result<Self, ImageError> {
        let mut m = Members {
            store,
            dir: dir.to_path_buf(),
            members: HashMap::new(),
            guesses: HashMap::new(),
            configs: HashMap::new(),
            pending: Vec::new(),
            in_memory: 0,
            files: 0,
            created: Vec::new(),
        };
        let res = m.take_all(r);
        if res.is_err() {
            store.gc_layers(&m.created);
        }
        res.map(|()| m)
    }

    fn take_all(&mut self, r: impl Read) -> Result<(), ImageError> {
        let mut ar = tar::Archive::new(r);
        for entry in ar.entries().map_err(invalid)? {
            let mut entry = entry.map_err(invalid)?;
            let raw = entry.path().map_err(invalid)?.into_owned();
            let escapes = || {
                ImageError::Invalid(format!(
                    "invalid archive entry {}: path escapes the archive",
                    raw.display()
                ))
            };
            if raw
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(escapes());
            }
            let rel = normalise(&raw).ok_or_else(escapes)?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.header().entry_size().map_err(invalid)?;
                    let member = self.take(&rel, &mut entry, size)?;
                    self.members.insert(rel, member);
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(invalid)?
                        .ok_or_else(|| {
                            ImageError::Invalid(format!(
                                "invalid archive entry {rel}: symlink without target"
                            ))
                        })?
                        .into_owned();
                    let base = Path::new(&rel).parent().unwrap_or(Path::new(""));
                    let inside = (!target.is_absolute())
                        .then(|| normalise(&base.join(&target)))
                        .flatten();
                    let Some(to) = inside else {
                        return Err(ImageError::Invalid(format!(
                            "invalid archive entry {rel}: symlink to {} points outside the archive",
                            target.display()
                        )));
                    };
                    self.members.insert(rel, Member::Link(to));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Takes in one regular member of `size` bytes.
    fn take(&mut self, rel: &str, r: &mut dyn Read, size: u64) -> Result<Member, ImageError> {
        let mut counted = Counted { inner: r, count: 0 };
        let member = if size <= SMALL && self.in_memory + size <= MEMORY_CAP {
            let mut v = Vec::with_capacity(size as usize);
            counted.read_to_end(&mut v).map_err(invalid)?;
            self.in_memory += v.len() as u64;
            self.learn(&v);
            Member::Bytes(v)
        } else {
            self.take_large(rel, &mut counted)?
        };
        if counted.count != size {
            return Err(ImageError::Invalid(format!(
                "invalid tar archive: unexpected EOF in {rel}"
            )));
        }
        Ok(member)
    }

    fn spool_path(&mut self) -> PathBuf {
        self.files += 1;
        self.dir.join(format!("member-{}", self.files))
    }

    /// Streams a large member: applied when its layer can be told, else kept as a file.
    fn take_large(&mut self, rel: &str, r: &mut dyn Read) -> Result<Member, ImageError> {
        let store = self.store;
        let guess = name_hex(rel)
            .and_then(|h| self.guesses.get(h))
            .filter(|g| g.parent.as_deref().is_none_or(|p| store.layer(p).is_some()))
            .map(|g| (g.diff_id.clone(), g.parent.clone()));
        let Some((diff_id, parent)) = guess else {
            let path = self.spool_path();
            let streamed = store.spool_stream(r, &path)?;
            return Ok(Member::File { path, streamed });
        };
        let chain = chain_id(parent.as_deref(), &diff_id);
        let existing = if store.layer(&chain).is_some() {
            Some(chain)
        } else {
            match store.apply_stream(parent.as_deref(), &diff_id, r)? {
                Applied::New { chain, streamed } => {
                    self.created.push(chain.clone());
                    return Ok(Member::Layer { chain, streamed });
                }
                Applied::Mismatch(streamed) => return Ok(Member::Unkept { streamed }),
                Applied::Existing(chain) => Some(chain),
            }
        };
        // The layer is there already: only hash the member.
        let streamed = store.hash_stream(r)?;
        Ok(match existing {
            Some(chain) if streamed.diff_id == diff_id => Member::Layer { chain, streamed },
            _ => Member::Unkept { streamed },
        })
    }

    /// Notes what a small JSON member (an image config or an OCI manifest) says about the
    /// layers that may follow.
    fn learn(&mut self, bytes: &[u8]) {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return;
        }
        let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        if let Some(ids) = doc.pointer("/rootfs/diff_ids").and_then(Value::as_array) {
            let diff_ids: Vec<String> = ids
                .iter()
                .filter_map(Value::as_str)
                .filter(|d| digest_hex(d).is_some())
                .map(str::to_string)
                .collect();
            if diff_ids.len() != ids.len() {
                return;
            }
            // Uncompressed layer blobs are named by their diff_id.
            self.guess(&diff_ids, &diff_ids);
            let cfg = Digest::of(bytes).hex().to_string();
            for (c, layers) in std::mem::take(&mut self.pending) {
                if c == cfg {
                    self.guess(&layers, &diff_ids);
                } else {
                    self.pending.push((c, layers));
                }
            }
            self.configs.insert(cfg, diff_ids);
        } else if let (Some(cfg), Some(layers)) = (
            doc.pointer("/config/digest")
                .and_then(Value::as_str)
                .and_then(digest_hex),
            doc.get("layers").and_then(Value::as_array),
        ) {
            let blobs: Vec<String> = layers
                .iter()
                .filter_map(|l| l.get("digest").and_then(Value::as_str))
                .filter(|d| digest_hex(d).is_some())
                .map(str::to_string)
                .collect();
            match self.configs.get(cfg).cloned() {
                Some(diff_ids) => self.guess(&blobs, &diff_ids),
                None => self.pending.push((cfg.to_string(), blobs)),
            }
        }
    }

    fn guess(&mut self, blobs: &[String], diff_ids: &[String]) {
        if blobs.len() != diff_ids.len() {
            return;
        }
        let mut parent: Option<String> = None;
        for (blob, diff_id) in blobs.iter().zip(diff_ids) {
            if let Some(hex) = digest_hex(blob) {
                self.guesses.entry(hex.to_string()).or_insert(Guess {
                    diff_id: diff_id.clone(),
                    parent: parent.clone(),
                });
            }
            parent = Some(chain_id(parent.as_deref(), diff_id));
        }
    }

    /// Whether the archive has member `rel`.
    pub fn has(&self, rel: &str) -> bool {
        self.resolve(rel).is_ok()
    }

    fn resolve(&self, rel: &str) -> Result<(&str, &Member), ImageError> {
        let missing = || ImageError::Invalid(format!("archive entry {rel} is missing"));
        let mut key = normalise(Path::new(rel.trim_start_matches('/'))).ok_or_else(|| {
            ImageError::Invalid(format!("archive entry {rel} points outside the archive"))
        })?;
        for _ in 0..16 {
            let (k, m) = self.members.get_key_value(&key).ok_or_else(missing)?;
            match m {
                Member::Link(to) => key = to.clone(),
                _ => return Ok((k.as_str(), m)),
            }
        }
        Err(ImageError::Invalid(format!(
            "archive entry {rel}: too many levels of symbolic links"
        )))
    }

    /// The bytes of a JSON member (config, manifest, index), its blob name verified.
    pub fn bytes(&self, rel: &str) -> Result<Vec<u8>, ImageError> {
        let (key, m) = self.resolve(rel)?;
        match m {
            Member::Bytes(v) => {
                check_blob_name(key, &Digest::of(v).to_string())?;
                Ok(v.clone())
            }
            Member::File { path, streamed } if !streamed.compressed => {
                check_blob_name(key, &streamed.blob)?;
                fs::read(path).map_err(ImageError::io(format!("reading {rel}")))
            }
            _ => Err(ImageError::Invalid(format!(
                "archive entry {rel} is not a JSON document"
            ))),
        }
    }

    /// Makes member `rel` the layer `diff_id` on top of `parent` (a chain id); returns the
    /// chain id.
    pub fn layer(
        &mut self,
        rel: &str,
        parent: Option<&str>,
        diff_id: &str,
    ) -> Result<String, ImageError> {
        let store = self.store;
        let chain = chain_id(parent, diff_id);
        let (key, m) = self.resolve(rel)?;
        let made = match m {
            Member::Bytes(v) => {
                check_blob_name(key, &Digest::of(v).to_string())?;
                if store.layer(&chain).is_some() {
                    return Ok(chain);
                }
                store.apply_layer(parent, diff_id, &mut v.as_slice())?
            }
            Member::File { path, streamed } => {
                check_blob_name(key, &streamed.blob)?;
                if streamed.diff_id != diff_id {
                    return Err(diff_mismatch(diff_id, &streamed.diff_id));
                }
                if store.layer(&chain).is_some() {
                    return Ok(chain);
                }
                self.apply_copy(parent, diff_id, path)?
            }
            Member::Layer { chain: c, streamed } => {
                check_blob_name(key, &streamed.blob)?;
                if streamed.diff_id != diff_id {
                    return Err(diff_mismatch(diff_id, &streamed.diff_id));
                }
                if store.layer(&chain).is_some() {
                    return Ok(chain);
                }
                // Listed on another parent than guessed: apply its tar again.
                let mut tar = store.open_layer_tar(c)?;
                store.apply_layer(parent, diff_id, &mut tar)?
            }
            Member::Unkept { streamed } => {
                check_blob_name(key, &streamed.blob)?;
                if streamed.diff_id != diff_id {
                    return Err(diff_mismatch(diff_id, &streamed.diff_id));
                }
                if store.layer(&chain).is_some() {
                    return Ok(chain);
                }
                return Err(ImageError::Invalid(format!(
                    "archive entry {rel} does not hold the layer its name says; it was not kept"
                )));
            }
            Member::Link(_) => unreachable!("resolve follows links"),
        };
        self.created.push(made.clone());
        Ok(made)
    }

    /// Applies the uncompressed tar in `src` through a hard-linked copy (the copy is moved
    /// into the layer record; `src` stays for other uses).
    fn apply_copy(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        src: &Path,
    ) -> Result<String, ImageError> {
        let tmp = crate::fsutil::temp_name(&self.store.root.join("layers"), ".tar");
        let res = fs::hard_link(src, &tmp)
            .or_else(|_| fs::copy(src, &tmp).map(|_| ()))
            .map_err(ImageError::io("copying a layer"))
            .and_then(|()| self.store.apply_file(parent, diff_id, &tmp));
        let _ = fs::remove_file(&tmp);
        res
    }
}

impl ImageStore {
    /// Streams a raw member into `path` uncompressed (within `max-layer-size`), hashing it.
    pub(crate) fn spool_stream(
        &self,
        r: &mut dyn Read,
        path: &Path,
    ) -> Result<Streamed, ImageError> {
        let f = File::create(path).map_err(ImageError::io("creating a spool file"))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        let s = self.stream_into(r, &mut w)?;
        io::Write::flush(&mut w).map_err(ImageError::io("writing a spool file"))?;
        Ok(s)
    }

    /// Hashes a raw member (and its uncompressed content) without keeping it.
    pub(crate) fn hash_stream(&self, r: &mut dyn Read) -> Result<Streamed, ImageError> {
        self.stream_into(r, &mut io::sink())
    }

    fn stream_into(&self, r: &mut dyn Read, w: &mut dyn io::Write) -> Result<Streamed, ImageError> {
        let mut raw = DigestReader::new(r);
        let plain_digest = {
            let (kind, plain) = berth_archive::decompress(&mut raw).map_err(invalid)?;
            let limited = crate::fsutil::LimitReader::new(plain, self.max_layer);
            if kind == berth_archive::Compression::None {
                let mut l = limited;
                io::copy(&mut l, w).map_err(invalid)?;
                None
            } else {
                let mut d = DigestReader::new(limited);
                io::copy(&mut d, w).map_err(invalid)?;
                Some(d.finish().0)
            }
        };
        io::copy(&mut raw, &mut io::sink()).map_err(invalid)?;
        let (blob, _) = raw.finish();
        Ok(Streamed {
            compressed: plain_digest.is_some(),
            diff_id: plain_digest.unwrap_or_else(|| blob.clone()),
            blob,
        })
    }
}
