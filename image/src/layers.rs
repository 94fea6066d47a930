//! Layers: applying a layer stream into the storage driver under its chain id, verifying its
//! diff_id, and recording it only when complete.

use crate::fsutil::write_atomic;
use crate::store::{ImageStore, LayerRecord};
use crate::{chain_id, storage_id, ImageError};
use berth_archive::DigestReader;
use berth_core::storage::CreateOpts;
use std::io::Read;

impl ImageStore {
    /// The record of layer `chain`, if complete.
    pub fn layer(&self, chain: &str) -> Option<LayerRecord> {
        let p = self
            .root
            .join("layers")
            .join(format!("{}.json", storage_id(chain)));
        std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Applies a (possibly compressed) layer stream on top of `parent` (a chain id), expecting
    /// `diff_id`. Returns the new chain id. An existing complete layer is reused (the stream
    /// is then not read).
    pub fn apply_layer(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        r: &mut dyn Read,
    ) -> Result<String, ImageError> {
        let chain = chain_id(parent, diff_id);
        let _guard = self
            .layer_lock
            .lock()
            .map_err(|_| ImageError::Invalid("layer lock poisoned".into()))?;
        if self.layer(&chain).is_some() {
            return Ok(chain);
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
        let tars = self.root.join("layertars");
        std::fs::create_dir_all(&tars).map_err(ImageError::io("creating layertars"))?;
        let tmp_tar = tars.join(format!(".tmp-{sid}"));
        let result = (|| -> Result<u64, ImageError> {
            let (_, plain) = berth_archive::decompress(r)
                .map_err(|e| ImageError::Invalid(format!("reading layer: {e}")))?;
            let copy = std::fs::File::create(&tmp_tar)
                .map_err(ImageError::io("creating the layer copy"))?;
            let tee = Tee {
                inner: plain,
                copy: std::io::BufWriter::with_capacity(1 << 20, copy),
            };
            let mut digesting = DigestReader::new(tee);
            self.storage.apply_diff(&sid, &mut digesting)?;
            // Drain what the tar reader left (trailing zero blocks) so the digest covers all.
            std::io::copy(&mut digesting, &mut std::io::sink())
                .map_err(|e| ImageError::Invalid(format!("reading layer: {e}")))?;
            let (actual, size) = digesting.finish();
            if actual != diff_id {
                return Err(ImageError::Digest {
                    what: "layer diff_id".into(),
                    expected: diff_id.into(),
                    actual,
                });
            }
            Ok(size)
        })();
        match result {
            Ok(size) => {
                let rec = LayerRecord {
                    chain_id: chain.clone(),
                    diff_id: diff_id.into(),
                    parent: parent.map(str::to_string),
                    size,
                };
                let bytes =
                    serde_json::to_vec(&rec).map_err(|e| ImageError::Invalid(e.to_string()))?;
                std::fs::rename(&tmp_tar, tars.join(format!("{sid}.tar")))
                    .map_err(ImageError::io("keeping the layer tar"))?;
                write_atomic(
                    &self.root.join("layers").join(format!("{sid}.json")),
                    &bytes,
                )?;
                Ok(chain)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp_tar);
                let _ = self.storage.remove(&sid);
                Err(e)
            }
        }
    }

    /// Applies a layer whose diff_id is not known in advance (import, commit): the stream is
    /// spooled uncompressed to a temp file while hashed, then applied.
    pub fn apply_unknown_layer(
        &self,
        parent: Option<&str>,
        r: &mut dyn Read,
    ) -> Result<String, ImageError> {
        let tmpdir = self.root.join("tmp");
        std::fs::create_dir_all(&tmpdir).map_err(ImageError::io("creating tmp"))?;
        let mut spool =
            tempfile::tempfile_in(&tmpdir).map_err(ImageError::io("creating a spool file"))?;
        let (_, plain) = berth_archive::decompress(r)
            .map_err(|e| ImageError::Invalid(format!("reading layer: {e}")))?;
        let mut digesting = DigestReader::new(plain);
        std::io::copy(&mut digesting, &mut spool)
            .map_err(|e| ImageError::Invalid(format!("reading layer: {e}")))?;
        let (diff_id, _) = digesting.finish();
        use std::io::Seek;
        spool
            .rewind()
            .map_err(ImageError::io("rewinding the spool file"))?;
        self.apply_layer(
            parent,
            &diff_id,
            &mut std::io::BufReader::with_capacity(1 << 20, spool),
        )
    }

    /// Removes layer `chain` and its record if no image uses it; walks up to its parents.
    pub(crate) fn release_layer(
        &self,
        chain: &str,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<(), ImageError> {
        let mut next = Some(chain.to_string());
        while let Some(c) = next.take() {
            if in_use(&c) {
                break;
            }
            let rec = self.layer(&c);
            let sid = storage_id(&c);
            let _ = std::fs::remove_file(self.root.join("layers").join(format!("{sid}.json")));
            let _ = std::fs::remove_file(self.root.join("layertars").join(format!("{sid}.tar")));
            self.storage.remove(&sid)?;
            next = rec.and_then(|r| r.parent);
        }
        Ok(())
    }
}

/// Copies everything read through it into `copy` (the kept uncompressed layer tar, so `save`
/// reproduces the exact bytes the diff_id names).
struct Tee<R> {
    inner: R,
    copy: std::io::BufWriter<std::fs::File>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        std::io::Write::write_all(&mut self.copy, &buf[..n])?;
        if n == 0 {
            std::io::Write::flush(&mut self.copy)?;
        }
        Ok(n)
    }
}

impl ImageStore {
    /// The kept uncompressed tar of layer `chain`.
    pub fn layer_tar(&self, chain: &str) -> std::path::PathBuf {
        self.root
            .join("layertars")
            .join(format!("{}.tar", storage_id(chain)))
    }
}
