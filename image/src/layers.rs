//! Layers: applying a layer stream into the storage driver under its chain id, verifying its
//! diff_id, and recording it (`layers/<chain hex>/{diff_id,size,parent,cache-id,layer.tar}`,
//! like Docker's layerdb) only when it is complete. The uncompressed tar is kept so `save`
//! reproduces the exact bytes the diff_id names.

use crate::fsutil::{temp_name, write_dir_atomic, LimitReader};
use crate::store::{lock, ImageStore, LayerRecord};
use crate::{chain_id, storage_id, ImageError};
use berth_archive::{Compression, DigestReader};
use berth_core::storage::CreateOpts;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Where the kept tar of a layer being made comes from.
#[derive(Clone, Copy)]
enum Keep<'a> {
    /// Copy the stream into this new file while applying it.
    Tee(&'a Path),
    /// The stream is already this file (spooled by the caller).
    Existing(&'a Path),
}

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

    /// The kept uncompressed tar of layer `chain`.
    pub fn layer_tar(&self, chain: &str) -> PathBuf {
        self.layer_dir(chain).join("layer.tar")
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
        let tmp = temp_name(&self.root.join("layers"), ".tar");
        let res = self.apply_inner(parent, diff_id, r, Keep::Tee(&tmp));
        let _ = fs::remove_file(&tmp);
        match res? {
            Applied::Existing(chain) | Applied::New { chain, .. } => Ok(chain),
            Applied::Mismatch(s) => Err(diff_mismatch(diff_id, s.diff_id)),
        }
    }

    /// Applies the raw (gzip, zstd or plain) layer stream `r` on top of `parent`, expecting
    /// `diff_id`, copying the uncompressed tar to the new file `tee` as it goes (it becomes
    /// the layer's `layer.tar`). When the content turns out to have another diff_id, nothing
    /// is recorded and `tee` holds the whole uncompressed stream ([`Applied::Mismatch`]).
    pub(crate) fn apply_stream(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        r: &mut dyn Read,
        tee: &Path,
    ) -> Result<Applied, ImageError> {
        self.apply_inner(parent, diff_id, r, Keep::Tee(tee))
    }

    /// Applies the uncompressed layer tar in file `path` on top of `parent`, expecting
    /// `diff_id`; on success the file is moved into the layer record as its `layer.tar`.
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

    fn apply_inner(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        r: &mut dyn Read,
        keep: Keep<'_>,
    ) -> Result<Applied, ImageError> {
        let chain = chain_id(parent, diff_id);
        let _guard = lock(&self.layer_lock)?;
        if self.layer(&chain).is_some() {
            return Ok(Applied::Existing(chain));
        }
        if let Some(p) = parent {
            if self.layer(p).is_none() {
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
        let applied = (|| -> Result<(u64, Streamed, &Path), ImageError> {
            let mut raw = DigestReader::new(r);
            let (compressed, size, plain_digest, kept) = {
                let (kind, plain) = berth_archive::decompress(&mut raw).map_err(layer_err)?;
                let compressed = kind != Compression::None;
                let mut limited = LimitReader::new(plain, self.max_layer);
                match keep {
                    Keep::Tee(path) => {
                        let f = File::create(path)
                            .map_err(ImageError::io("creating the layer copy"))?;
                        let mut tee = Tee {
                            inner: limited,
                            copy: BufWriter::with_capacity(1 << 20, f),
                            unsynced: 0,
                        };
                        let (size, digest) = self.apply_digesting(&sid, &mut tee, compressed)?;
                        let f = tee.copy.into_inner().map_err(|e| ImageError::Io {
                            context: "writing the layer copy".into(),
                            source: e.into_error(),
                        })?;
                        f.sync_all()
                            .map_err(ImageError::io("writing the layer copy"))?;
                        (compressed, size, digest, path)
                    }
                    Keep::Existing(path) => {
                        let (size, digest) =
                            self.apply_digesting(&sid, &mut limited, compressed)?;
                        (compressed, size, digest, path)
                    }
                }
            };
            // What the decompressor left (bytes after the end of a gzip stream) still counts
            // for the blob digest.
            io::copy(&mut raw, &mut io::sink()).map_err(layer_err)?;
            let (blob, _) = raw.finish();
            let diff = plain_digest.unwrap_or_else(|| blob.clone());
            let streamed = Streamed {
                blob,
                diff_id: diff,
                compressed,
            };
            Ok((size, streamed, kept))
        })();
        let recorded = applied.and_then(|(size, streamed, kept)| {
            if streamed.diff_id != diff_id {
                self.storage.remove(&sid)?;
                return Ok(Applied::Mismatch(streamed));
            }
            let size = size.to_string();
            let mut files: Vec<(&str, &[u8])> = vec![
                ("diff_id", diff_id.as_bytes()),
                ("size", size.as_bytes()),
                ("cache-id", sid.as_bytes()),
            ];
            if let Some(p) = parent {
                files.push(("parent", p.as_bytes()));
            }
            if matches!(keep, Keep::Existing(_)) {
                File::open(kept)
                    .and_then(|f| f.sync_all())
                    .map_err(ImageError::io("syncing the layer copy"))?;
            }
            write_dir_atomic(&self.layer_dir(&chain), &files, Some((kept, "layer.tar")))?;
            Ok(Applied::New {
                chain: chain.clone(),
                streamed,
            })
        });
        if recorded.is_err() {
            let _ = self.storage.remove(&sid);
        }
        recorded
    }

    /// Feeds `r` to the driver, hashing it when it is not the raw stream itself (`digest`);
    /// returns the content size and that digest.
    fn apply_digesting(
        &self,
        sid: &str,
        r: &mut dyn Read,
        digest: bool,
    ) -> Result<(u64, Option<String>), ImageError> {
        if !digest {
            let size = self.storage.apply_diff(sid, r)?;
            // Drain what the tar reader left (trailing zero blocks) so the digest covers all.
            io::copy(r, &mut io::sink()).map_err(layer_err)?;
            return Ok((size, None));
        }
        let mut digesting = DigestReader::new(r);
        let size = self.storage.apply_diff(sid, &mut digesting)?;
        io::copy(&mut digesting, &mut io::sink()).map_err(layer_err)?;
        let (actual, _) = digesting.finish();
        Ok((size, Some(actual)))
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

/// What streaming a layer found out about it.
#[derive(Debug, Clone)]
pub(crate) struct Streamed {
    /// sha256 of the raw (possibly compressed) stream, as its blob is named.
    pub blob: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Whether the raw stream was gzip or zstd.
    pub compressed: bool,
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

fn diff_mismatch(expected: &str, actual: String) -> ImageError {
    ImageError::Digest {
        what: "layer diff_id".into(),
        expected: expected.into(),
        actual,
    }
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

/// Copies everything read through it into `copy`, starting the copy's write-back every
/// [`WRITEBACK_STEP`] bytes so the final fsync finds little left to do.
struct Tee<R> {
    inner: R,
    copy: BufWriter<File>,
    unsynced: usize,
}

/// How much of a layer copy may be written before its write-back is started.
const WRITEBACK_STEP: usize = 16 << 20;

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        self.unsynced += n;
        if self.unsynced >= WRITEBACK_STEP {
            self.unsynced = 0;
            start_writeback(self.copy.get_ref());
        }
        Ok(n)
    }
}

/// Asks the kernel to start writing `f`'s dirty pages back now (without waiting for them).
fn start_writeback(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range on a descriptor we own; it only schedules I/O, and its failure
    // (an unsupported filesystem) merely leaves the work to the final fsync.
    unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}
