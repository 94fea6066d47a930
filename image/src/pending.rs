//! Layers being made, in three steps: [`ImageStore::begin_layer`] claims the chain id (two
//! pulls never fill the same storage layer; the second waits and then finds it recorded) and
//! creates its empty storage layer; [`NewLayer::fill`] decompresses a stream into it while
//! recording what rebuilds its exact tar (the split record, see `split`; the whole tar when
//! the driver has no diff folder) and hashing the diff_id, holding no store lock; and
//! [`NewLayer::commit`] records the layer once its diff_id is verified and its parent is
//! recorded. A `NewLayer` dropped before its commit takes its storage layer and temp tar away.
//!
//! When the storage driver's diffs are independent (overlay), a child may be begun while its
//! parent is still being made, so the layers of one pull fill at once and only their commits
//! follow the chain order; otherwise (vfs) the parent must be recorded first.

use crate::copy::LayerCopy;
use crate::fsutil::{temp_name, write_dir_atomic, LimitReader};
use crate::split::record::{Recorder, SplitTee};
use crate::store::{lock, poisoned, ImageStore};
use crate::{chain_id, storage_id, ImageError};
use berth_archive::{Compression, DigestReader};
use berth_core::storage::CreateOpts;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// What [`ImageStore::begin_layer`] found.
pub enum Begun<'a> {
    /// The layer is recorded already (its chain id).
    Existing(String),
    /// The layer is claimed and its storage layer created: fill it, then commit it.
    New(NewLayer<'a>),
}

/// Where the stream being applied comes from (it matters only when the driver has no diff
/// folder and the whole tar is kept as the layer's `layer.tar`).
#[derive(Clone, Copy)]
pub(crate) enum Keep<'a> {
    /// A stream: the store copies it to a temp file of its own while it is applied.
    Stream,
    /// The stream is already this (uncompressed) file of the caller's, moved into the record.
    Existing(&'a Path),
}

/// What streaming a layer found out about it.
#[derive(Debug, Clone)]
pub(crate) struct Streamed {
    /// sha256 of the raw (possibly compressed) stream, as its blob is named (empty when it
    /// was not asked for).
    pub blob: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Whether the raw stream was gzip or zstd.
    pub compressed: bool,
}

/// A filled layer's content size, what the stream held, and the file that rebuilds its tar
/// (moved into the record under `name`: `tar-split` or `layer.tar`).
struct Filled {
    size: u64,
    streamed: Streamed,
    tar: PathBuf,
    name: &'static str,
}

/// A claimed layer being made (see the module documentation).
pub struct NewLayer<'a> {
    store: &'a ImageStore,
    chain: String,
    parent: Option<String>,
    diff_id: String,
    sid: String,
    /// The store's own temp split record or tar copy, removed on drop unless moved into the
    /// record.
    temp: Option<PathBuf>,
    filled: Option<Box<Filled>>,
    committed: bool,
}

impl ImageStore {
    /// Claims the layer `diff_id` on top of `parent` and creates its empty storage layer, or
    /// finds it recorded (waiting while someone else makes it). The parent must be recorded,
    /// or, with independent storage diffs, being made by the caller.
    pub fn begin_layer(
        &self,
        parent: Option<&str>,
        diff_id: &str,
    ) -> Result<Begun<'_>, ImageError> {
        let chain = chain_id(parent, diff_id);
        let mut making = lock(&self.layer_lock)?;
        while making.contains(&chain) {
            making = self.layer_made.wait(making).map_err(|_| poisoned())?;
        }
        if self.layer(&chain).is_some() {
            return Ok(Begun::Existing(chain));
        }
        if let Some(p) = parent {
            let being_made = self.independent_diffs && making.contains(p);
            if !being_made && self.layer(p).is_none() {
                return Err(ImageError::Invalid(format!("parent layer {p} is missing")));
            }
        }
        let sid = storage_id(&chain);
        if self.storage.exists(&sid) {
            self.storage.remove(&sid)?;
        }
        self.storage.create(
            &sid,
            parent.map(storage_id).as_deref(),
            &CreateOpts::default(),
        )?;
        making.insert(chain.clone());
        Ok(Begun::New(NewLayer {
            store: self,
            chain,
            parent: parent.map(str::to_string),
            diff_id: diff_id.to_string(),
            sid,
            temp: None,
            filled: None,
            committed: false,
        }))
    }

    /// Whether a pull may begin every layer of a chain before any is recorded (see
    /// [`ImageStore::begin_layer`]).
    pub fn fills_in_parallel(&self) -> bool {
        self.independent_diffs
    }
}

fn layer_err(e: io::Error) -> ImageError {
    ImageError::Invalid(format!("reading layer: {e}"))
}

impl NewLayer<'_> {
    /// The chain id this layer will have.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Applies the (gzip, zstd or plain) layer stream `r`, read to its end, keeping its
    /// uncompressed tar and hashing it. A source that checks its own digest by its end (a
    /// registry blob) need not have its raw bytes hashed again: `hash_raw` false (the
    /// uncompressed content is hashed either way).
    pub fn fill(&mut self, r: &mut dyn Read, hash_raw: bool) -> Result<(), ImageError> {
        self.fill_keep(r, Keep::Stream, hash_raw).map(|_| ())
    }

    pub(crate) fn fill_keep(
        &mut self,
        r: &mut dyn Read,
        keep: Keep<'_>,
        hash_raw: bool,
    ) -> Result<Streamed, ImageError> {
        let store = self.store;
        let mut raw = if hash_raw {
            Raw::Hashed(DigestReader::new(r))
        } else {
            Raw::Plain(r)
        };
        let (compressed, size, diff_id, tar, name) = {
            let (kind, plain) = berth_archive::decompress(&mut raw).map_err(layer_err)?;
            let compressed = kind != Compression::None;
            // The diff_id is the raw stream's digest when that is hashed and not compressed.
            let hash_plain = compressed || !hash_raw;
            let mut limited = LimitReader::new(plain, store.max_layer);
            let split = match store.storage.diff_dir(&self.sid)? {
                Some(dir) => Some(berth_confine::Root::open(&dir).map_err(|e| {
                    ImageError::io("opening the unpacked layer")(io::Error::other(e))
                })?),
                None => None,
            };
            let (size, diff_id, tar, name) = match (split, keep) {
                (Some(root), _) => {
                    let layers = store.root.join("layers");
                    let path = self.temp.insert(temp_name(&layers, ".split")).clone();
                    let mut rec = Recorder::create(&path, root, &store.tmp_dir())
                        .map_err(ImageError::io("creating the split record"))?;
                    let mut tee = SplitTee::new(limited, &mut rec);
                    let (size, digest) = self.apply_digesting(&mut tee, hash_plain)?;
                    rec.finish()
                        .map_err(ImageError::io("writing the split record"))?;
                    (size, digest, path, crate::split::FILE_NAME)
                }
                (None, Keep::Existing(path)) => {
                    let (size, digest) = self.apply_digesting(&mut limited, hash_plain)?;
                    File::open(path)
                        .and_then(|f| f.sync_all())
                        .map_err(ImageError::io("syncing the layer copy"))?;
                    (size, digest, path.to_path_buf(), crate::split::TAR_NAME)
                }
                (None, Keep::Stream) => {
                    let layers = store.root.join("layers");
                    let path = self.temp.insert(temp_name(&layers, ".tar")).clone();
                    let copy = LayerCopy::create(&path)
                        .map_err(ImageError::io("creating the layer copy"))?;
                    let mut tee = Tee {
                        inner: limited,
                        copy,
                    };
                    let (size, digest) = self.apply_digesting(&mut tee, hash_plain)?;
                    tee.copy
                        .finish()
                        .map_err(ImageError::io("writing the layer copy"))?;
                    (size, digest, path, crate::split::TAR_NAME)
                }
            };
            (compressed, size, diff_id, tar, name)
        };
        // What the decompressor left (bytes after the end of a gzip stream) still counts for
        // the blob digest, and reaching the end is what makes a self-checking source check.
        io::copy(&mut raw, &mut io::sink()).map_err(layer_err)?;
        let blob = match raw {
            Raw::Hashed(d) => d.finish().0,
            Raw::Plain(_) => String::new(),
        };
        let streamed = Streamed {
            diff_id: diff_id.unwrap_or_else(|| blob.clone()),
            blob,
            compressed,
        };
        self.filled = Some(Box::new(Filled {
            size,
            streamed: streamed.clone(),
            tar,
            name,
        }));
        Ok(streamed)
    }

    /// Feeds `r` to the driver, hashing it when it is not the raw stream itself (`digest`);
    /// returns the content size and that digest.
    fn apply_digesting(
        &self,
        r: &mut dyn Read,
        digest: bool,
    ) -> Result<(u64, Option<String>), ImageError> {
        let storage = &self.store.storage;
        if !digest {
            let size = storage.apply_diff(&self.sid, r)?;
            // Drain what the tar reader left (trailing zero blocks) so the digest covers all.
            io::copy(r, &mut io::sink()).map_err(layer_err)?;
            return Ok((size, None));
        }
        let mut digesting = DigestReader::new(r);
        let size = storage.apply_diff(&self.sid, &mut digesting)?;
        io::copy(&mut digesting, &mut io::sink()).map_err(layer_err)?;
        let (actual, _) = digesting.finish();
        Ok((size, Some(actual)))
    }

    /// Records the filled layer (its diff_id verified, its parent recorded); returns its
    /// chain id.
    pub fn commit(mut self) -> Result<String, ImageError> {
        let store = self.store;
        let filled = self.filled.take().ok_or_else(|| {
            ImageError::Invalid("a layer was recorded before it was filled".into())
        })?;
        if filled.streamed.diff_id != self.diff_id {
            return Err(diff_mismatch(&self.diff_id, filled.streamed.diff_id));
        }
        let _making = lock(&store.layer_lock)?;
        if let Some(p) = &self.parent {
            if store.layer(p).is_none() {
                return Err(ImageError::Invalid(format!("parent layer {p} is missing")));
            }
        }
        let size = filled.size.to_string();
        let mut files: Vec<(&str, &[u8])> = vec![
            ("diff_id", self.diff_id.as_bytes()),
            ("size", size.as_bytes()),
            ("cache-id", self.sid.as_bytes()),
        ];
        if let Some(p) = &self.parent {
            files.push(("parent", p.as_bytes()));
        }
        write_dir_atomic(
            &store.layer_dir(&self.chain),
            &files,
            Some((&filled.tar, filled.name)),
        )?;
        self.committed = true;
        Ok(self.chain.clone())
    }
}

impl Drop for NewLayer<'_> {
    fn drop(&mut self) {
        if let Some(t) = &self.temp {
            let _ = fs::remove_file(t);
        }
        let store = self.store;
        let mut making = match store.layer_lock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !self.committed {
            if let Err(e) = store.storage.remove(&self.sid) {
                tracing::warn!("removing the unfinished layer {}: {e}", self.chain);
            }
        }
        making.remove(&self.chain);
        store.layer_made.notify_all();
    }
}

pub(crate) fn diff_mismatch(expected: &str, actual: String) -> ImageError {
    ImageError::Digest {
        what: "layer diff_id".into(),
        expected: expected.into(),
        actual,
    }
}

/// The raw layer stream, hashed through [`DigestReader`] unless its source checks its own
/// digest (see [`NewLayer::fill`]).
enum Raw<'a> {
    Hashed(DigestReader<&'a mut dyn Read>),
    Plain(&'a mut dyn Read),
}

impl Read for Raw<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Raw::Hashed(d) => d.read(buf),
            Raw::Plain(r) => r.read(buf),
        }
    }
}

/// Copies everything read through it into the layer copy.
struct Tee<R> {
    inner: R,
    copy: LayerCopy,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}
