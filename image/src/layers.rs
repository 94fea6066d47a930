//! Layers: applying a layer stream into the storage driver under its chain id, verifying its
//! diff_id, and recording it (`layers/<chain hex>/{diff_id,size,parent,cache-id,tar-split}`,
//! like Docker's layerdb) only when it is complete. The split record rebuilds the exact bytes
//! the diff_id names for `save` and `push` (`split`). (The steps of making one are in
//! `pending`.)

use crate::fsutil::{temp_name, LimitReader};
pub(crate) use crate::pending::Streamed;
use crate::pending::{diff_mismatch, Begun, Keep};
use crate::store::{ImageStore, LayerRecord};
use crate::{storage_id, ImageError};
use berth_archive::DigestReader;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

fn read_trimmed(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn layer_err(e: io::Error) -> ImageError {
    ImageError::Invalid(format!("reading layer: {e}"))
}

impl ImageStore {
    pub(crate) fn layer_dir(&self, chain: &str) -> PathBuf {
        self.root.join("layers").join(storage_id(chain))
    }

    /// The record of layer `chain` (`sha256:...`), if it is complete.
    pub fn layer(&self, chain: &str) -> Option<LayerRecord> {
        let dir = self.layer_dir(chain);
        Some(LayerRecord {
            chain_id: format!("sha256:{}", storage_id(chain)),
            diff_id: read_trimmed(&dir.join("diff_id"))?,
            parent: read_trimmed(&dir.join("parent")).filter(|p| !p.is_empty()),
            size: read_trimmed(&dir.join("size"))?.parse().ok()?,
            cache_id: read_trimmed(&dir.join("cache-id"))?,
        })
    }

    /// The chain ids of every recorded layer.
    pub fn layer_chains(&self) -> Vec<String> {
        fs::read_dir(self.root.join("layers"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .map(|n| format!("sha256:{n}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Applies a (gzip, zstd or plain) layer stream on top of `parent`, expecting
    /// `diff_id`. Returns the new chain id. An existing complete layer is reused (the stream
    /// is then not read). Nothing is left behind on failure.
    pub fn apply_layer(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        r: &mut dyn Read,
    ) -> Result<String, ImageError> {
        match self.apply_inner(parent, diff_id, r, Keep::Stream)? {
            Applied::Existing(chain) | Applied::New { chain, .. } => Ok(chain),
            Applied::Mismatch(s) => Err(diff_mismatch(diff_id, s.diff_id)),
        }
    }

    /// Applies the raw (gzip, zstd or plain) layer stream `r` on top of `parent`, expecting
    /// `diff_id`. When the content turns out to have another diff_id, nothing is recorded
    /// and the stream was read to its end ([`Applied::Mismatch`]).
    pub(crate) fn apply_stream(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        r: &mut dyn Read,
    ) -> Result<Applied, ImageError> {
        self.apply_inner(parent, diff_id, r, Keep::Stream)
    }

    /// Applies the uncompressed layer tar in file `path` on top of `parent`, expecting
    /// `diff_id` (when the driver has no diff folder, the file is moved into the layer record
    /// as its `layer.tar`).
    pub(crate) fn apply_file(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        path: &Path,
    ) -> Result<String, ImageError> {
        let f = File::open(path).map_err(ImageError::io("opening a spool file"))?;
        let mut br = BufReader::with_capacity(1 << 20, f);
        match self.apply_inner(parent, diff_id, &mut br, Keep::Existing(path))? {
            Applied::Existing(chain) | Applied::New { chain, .. } => Ok(chain),
            Applied::Mismatch(s) => Err(diff_mismatch(diff_id, s.diff_id)),
        }
    }

    /// Begins, fills and commits one layer (see `pending`), hashing the raw stream too.
    fn apply_inner(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        r: &mut dyn Read,
        keep: Keep<'_>,
    ) -> Result<Applied, ImageError> {
        let mut layer = match self.begin_layer(parent, diff_id)? {
            Begun::Existing(chain) => return Ok(Applied::Existing(chain)),
            Begun::New(layer) => layer,
        };
        let streamed = layer.fill_keep(r, keep, true)?;
        if streamed.diff_id != diff_id {
            return Ok(Applied::Mismatch(streamed));
        }
        let chain = layer.commit()?;
        Ok(Applied::New { chain, streamed })
    }

    /// Applies a layer whose diff_id is not known in advance (import, commit): the stream is
    /// spooled uncompressed (within `max-layer-size`) while hashed, then applied.
    pub fn apply_unknown_layer(
        &self,
        parent: Option<&str>,
        r: &mut dyn Read,
    ) -> Result<String, ImageError> {
        let spool = self.spool_layer(r)?;
        self.apply_spooled(parent, &spool)
    }

    /// Spools a (possibly compressed) layer stream uncompressed into the store, within
    /// `max-layer-size`, computing its diff_id.
    pub(crate) fn spool_layer(&self, r: &mut dyn Read) -> Result<Spooled, ImageError> {
        let mut spool = Spooled {
            path: temp_name(&self.root.join("layers"), ".tar"),
            diff_id: String::new(),
        };
        let mut f = File::create(&spool.path).map_err(ImageError::io("creating a spool file"))?;
        let (_, plain) = berth_archive::decompress(r).map_err(layer_err)?;
        let mut digesting = DigestReader::new(LimitReader::new(plain, self.max_layer));
        {
            let mut w = BufWriter::with_capacity(1 << 20, &mut f);
            io::copy(&mut digesting, &mut w).map_err(layer_err)?;
            w.flush().map_err(ImageError::io("writing a spool file"))?;
        }
        spool.diff_id = digesting.finish().0;
        Ok(spool)
    }

    /// Applies a spooled layer on top of `parent`; returns its chain id.
    pub(crate) fn apply_spooled(
        &self,
        parent: Option<&str>,
        spool: &Spooled,
    ) -> Result<String, ImageError> {
        self.apply_file(parent, &spool.diff_id, &spool.path)
    }

    /// Removes layer `chain`: its record first (so it stops existing), then its content.
    /// The caller holds `layer_lock` and knows no image uses it.
    pub(crate) fn remove_layer(&self, chain: &str) -> Result<(), ImageError> {
        let dir = self.layer_dir(chain);
        let cache_id = read_trimmed(&dir.join("cache-id")).unwrap_or_else(|| storage_id(chain));
        let doomed = temp_name(&self.root.join("layers"), "");
        if fs::rename(&dir, &doomed).is_ok() {
            crate::fsutil::sync_dir(&self.root.join("layers"));
            let _ = fs::remove_dir_all(&doomed);
        }
        self.storage.remove(&cache_id)?;
        Ok(())
    }
}

/// The outcome of applying a layer stream.
pub(crate) enum Applied {
    /// The layer was complete already; the stream was not read.
    Existing(String),
    /// Applied, verified and recorded under `chain`.
    New {
        /// Its chain id.
        chain: String,
        /// What the stream held.
        streamed: Streamed,
    },
    /// The content has another diff_id: nothing was recorded, the stream was read to its end.
    Mismatch(Streamed),
}

/// An uncompressed layer spooled to a temp file (removed when dropped, unless it was moved
/// into a layer record).
pub(crate) struct Spooled {
    path: PathBuf,
    /// Its digest.
    pub diff_id: String,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
