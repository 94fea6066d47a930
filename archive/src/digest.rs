//! Readers and writers that compute sha256 of what passes through them.

use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

/// Hashes everything read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> DigestReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// `sha256:<hex>` of what was read, and the byte count.
    pub fn finish(self) -> (String, u64) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes everything written through it.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> DigestWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// `sha256:<hex>`, the byte count, and the inner writer.
    pub fn finish(self) -> (String, u64, W) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
            self.inner,
        )
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
