//! Bulky layer tarballs for load/pull benchmarks: random bytes (incompressible) and word text
//! (compressible), in files of a chosen size.

use crate::TestImageError;
use rand::{Rng, RngCore, SeedableRng};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// What to fill a file with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Incompressible random bytes.
    Random,
    /// Compressible lines of words.
    Text,
}

const WORDS: &[&str] = &[
    "berth",
    "container",
    "layer",
    "image",
    "registry",
    "overlay",
    "namespace",
    "cgroup",
    "kernel",
    "socket",
    "bridge",
    "digest",
    "manifest",
    "tarball",
    "monitor",
    "daemon",
    "harbour",
    "quay",
];

struct Gen {
    rng: rand::rngs::StdRng,
}

impl Gen {
    fn fill(&mut self, kind: Fill, buf: &mut [u8]) {
        match kind {
            Fill::Random => self.rng.fill_bytes(buf),
            Fill::Text => {
                let mut i = 0;
                while i < buf.len() {
                    let w = WORDS[self.rng.gen_range(0..WORDS.len())].as_bytes();
                    for &c in w.iter().chain(b" ") {
                        if i < buf.len() {
                            buf[i] = c;
                            i += 1;
                        }
                    }
                    if self.rng.gen_ratio(1, 12) && i < buf.len() {
                        buf[i] = b'\n';
                        i += 1;
                    }
                }
            }
        }
    }
}

/// Writes a layer tarball at `dest` holding `files` (name, size in bytes, fill) under `data/`.
pub fn layer_tar(
    dest: &Path,
    seed: u64,
    files: &[(String, u64, Fill)],
) -> Result<(), TestImageError> {
    let io_err = |e| TestImageError::Io(dest.to_path_buf(), e);
    let file = File::create(dest).map_err(io_err)?;
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let mut g = Gen {
        rng: rand::rngs::StdRng::seed_from_u64(seed),
    };
    let mut build = || -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, "data", io::empty())?;
        let mut buf = vec![0u8; 1 << 20];
        for (name, size, kind) in files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(*size);
            h.set_mtime(1_700_000_000);
            let mut left = *size;
            let mut data = Vec::with_capacity(*size as usize);
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                g.fill(*kind, &mut buf[..n]);
                data.extend_from_slice(&buf[..n]);
                left -= n as u64;
            }
            b.append_data(&mut h, format!("data/{name}"), data.as_slice())?;
        }
        b.finish()
    };
    build().map_err(io_err)?;
    let mut w = b.into_inner().map_err(io_err)?;
    w.flush().map_err(io_err)
}
