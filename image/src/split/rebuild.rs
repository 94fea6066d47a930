//! Serving a layer's uncompressed tar for `save`, `push` and re-applying a loaded layer under
//! another parent: from its kept `layer.tar` (older data roots, drivers without a diff folder)
//! or rebuilt from its split record, file bodies read back from the unpacked folder through
//! `berth-confine` (no symlink followed, every read bounded by the recorded size). Either way
//! the stream is checked against the layer's diff_id as it goes and its last byte is held back
//! until that check passed: a changed file on disk ends the stream with
//! [`ImageError::LayerChanged`] and a reader never receives a whole wrong tar.

use super::{Sum, END_MAGIC, FILE_NAME, MAGIC, TAIL_LEN, TAR_NAME};
use crate::store::ImageStore;
use crate::ImageError;
use berth_confine::Root;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A layer's uncompressed tar as it is served (see the module documentation).
pub struct LayerTar {
    size: u64,
    inner: Verified,
    failure: Option<String>,
}

impl LayerTar {
    /// The tar's length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Why reading failed, once it did (for a consumer, such as a plugin behind a pipe, that
    /// reports its own error instead of the reader's).
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }
}

impl Read for LayerTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if let Err(e) = &r {
            self.failure = Some(e.to_string());
        }
        r
    }
}

/// The [`ImageError`] behind an error of a [`LayerTar`] read, or `context` with the error.
pub fn layer_read_error(context: &str, e: io::Error) -> ImageError {
    if e.get_ref().is_some_and(|i| i.is::<ImageError>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(img) = inner.downcast::<ImageError>() {
                return *img;
            }
            unreachable!("checked to be an ImageError");
        }
        unreachable!("checked to have an inner error");
    }
    ImageError::Io {
        context: context.into(),
        source: e,
    }
}

fn changed(chain: &str, reason: impl Into<String>) -> io::Error {
    io::Error::other(ImageError::LayerChanged {
        chain: chain.to_string(),
        reason: reason.into(),
    })
}

impl ImageStore {
    /// The uncompressed tar of the recorded layer `chain`, checked against its diff_id.
    pub fn open_layer_tar(&self, chain: &str) -> Result<LayerTar, ImageError> {
        let rec = self
            .layer(chain)
            .ok_or_else(|| ImageError::NotFound(format!("layer {chain}")))?;
        let dir = self.layer_dir(chain);
        let kept = dir.join(TAR_NAME);
        let (size, inner): (u64, Box<dyn Read + Send>) = match File::open(&kept) {
            Ok(f) => {
                let size = f
                    .metadata()
                    .map_err(ImageError::io(format!("stat {}", kept.display())))?
                    .len();
                (size, Box::new(BufReader::with_capacity(1 << 20, f)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let folder = self.storage.diff_dir(&rec.cache_id)?.ok_or_else(|| {
                    ImageError::LayerChanged {
                        chain: chain.into(),
                        reason: "the storage driver no longer gives its unpacked folder".into(),
                    }
                })?;
                let root = Root::open(&folder).map_err(|e| ImageError::LayerChanged {
                    chain: chain.into(),
                    reason: e.to_string(),
                })?;
                let r = SplitReader::open(&dir.join(FILE_NAME), root, chain)?;
                (r.size, Box::new(r))
            }
            Err(e) => return Err(ImageError::io(format!("opening {}", kept.display()))(e)),
        };
        Ok(LayerTar {
            size,
            inner: Verified {
                inner,
                hasher: Sha256::new(),
                count: 0,
                size,
                held: None,
                done: false,
                diff_id: rec.diff_id,
                chain: chain.to_string(),
                bad: None,
            },
            failure: None,
        })
    }
}

/// Hashes the stream and holds its last byte back until the digest and length check out.
struct Verified {
    inner: Box<dyn Read + Send>,
    hasher: Sha256,
    count: u64,
    size: u64,
    held: Option<u8>,
    done: bool,
    diff_id: String,
    chain: String,
    /// Why the stream is refused, once it was.
    bad: Option<String>,
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(reason) = &self.bad {
            return Err(changed(&self.chain, reason.clone()));
        }
        if buf.is_empty() || self.done {
            return Ok(0);
        }
        let start = usize::from(self.held.is_some());
        let mut one = [0u8; 1];
        // With a byte held and room for one only, read the next byte aside.
        let aside = start == buf.len();
        let n = if aside {
            self.inner.read(&mut one)?
        } else {
            self.inner.read(&mut buf[start..])?
        };
        if n == 0 {
            self.done = true;
            let digest = format!(
                "sha256:{}",
                hex::encode(std::mem::take(&mut self.hasher).finalize())
            );
            if digest != self.diff_id || self.count != self.size {
                self.bad = Some(format!(
                    "its rebuilt tar has digest {digest} ({} bytes), not its diff_id {} ({} bytes)",
                    self.count, self.diff_id, self.size
                ));
            }
            if let Some(reason) = &self.bad {
                return Err(changed(&self.chain, reason.clone()));
            }
            return Ok(match self.held.take() {
                Some(b) => {
                    buf[0] = b;
                    1
                }
                None => 0,
            });
        }
        if aside {
            self.hasher.update(one);
            self.count += 1;
            if let Some(b) = self.held.replace(one[0]) {
                buf[0] = b;
            }
            return Ok(1);
        }
        if let Some(b) = self.held {
            buf[0] = b;
        }
        self.hasher.update(&buf[start..start + n]);
        self.count += n as u64;
        let total = start + n;
        self.held = Some(buf[total - 1]);
        Ok(total - 1)
    }
}

/// What the rebuild is in the middle of.
enum Cur {
    Next,
    Raw { left: u64 },
    Late { off: u64, left: u64 },
    Body(Box<BodyRead>),
    End,
}

struct BodyRead {
    f: File,
    path: PathBuf,
    left: u64,
    sum: Sum,
    expected: u64,
}

/// Rebuilds a tar from its split record.
struct SplitReader {
    rec: BufReader<File>,
    file: File,
    late: HashMap<u64, (u64, u64)>,
    root: Root,
    ordinal: u64,
    cur: Cur,
    chain: String,
    size: u64,
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

impl SplitReader {
    fn open(path: &Path, root: Root, chain: &str) -> Result<SplitReader, ImageError> {
        let bad = |what: &str| ImageError::LayerChanged {
            chain: chain.into(),
            reason: format!("its split record {} is {what}", path.display()),
        };
        let ctx = format!("reading {}", path.display());
        let mut file = File::open(path).map_err(ImageError::io(ctx.clone()))?;
        let len = file.metadata().map_err(ImageError::io(ctx.clone()))?.len();
        if len < MAGIC.len() as u64 + TAIL_LEN {
            return Err(bad("truncated"));
        }
        let mut tail = [0u8; TAIL_LEN as usize];
        file.read_exact_at(&mut tail, len - TAIL_LEN)
            .map_err(ImageError::io(ctx.clone()))?;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&tail[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        if &tail[24..] != END_MAGIC {
            return Err(bad("damaged"));
        }
        let (count, size, footer) = (word(0), word(1), word(2));
        if count.checked_mul(24).and_then(|t| t.checked_add(footer)) != Some(len - TAIL_LEN) {
            return Err(bad("damaged"));
        }
        let mut table = vec![0u8; (count * 24) as usize];
        file.read_exact_at(&mut table, footer)
            .map_err(ImageError::io(ctx.clone()))?;
        let mut late = HashMap::new();
        let mut t = table.as_slice();
        for _ in 0..count {
            let (o, off, l) = (
                read_u64(&mut t).map_err(ImageError::io(ctx.clone()))?,
                read_u64(&mut t).map_err(ImageError::io(ctx.clone()))?,
                read_u64(&mut t).map_err(ImageError::io(ctx.clone()))?,
            );
            late.insert(o, (off, l));
        }
        let mut magic = [0u8; 12];
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_exact(&mut magic))
            .map_err(ImageError::io(ctx.clone()))?;
        if &magic != MAGIC {
            return Err(bad("not a split record"));
        }
        let rec = BufReader::with_capacity(1 << 16, file.try_clone().map_err(ImageError::io(ctx))?);
        Ok(SplitReader {
            rec,
            file,
            late,
            root,
            ordinal: 0,
            cur: Cur::Next,
            chain: chain.into(),
            size,
        })
    }

    /// Reads the next record's head.
    fn next_record(&mut self) -> io::Result<()> {
        let mut tag = [0u8; 1];
        self.rec.read_exact(&mut tag)?;
        self.cur = match tag[0] {
            b'R' => {
                let mut l = [0u8; 4];
                self.rec.read_exact(&mut l)?;
                Cur::Raw {
                    left: u64::from(u32::from_le_bytes(l)),
                }
            }
            b'F' => {
                let size = read_u64(&mut self.rec)?;
                let sum = read_u64(&mut self.rec)?;
                let mut l = [0u8; 4];
                self.rec.read_exact(&mut l)?;
                let mut path = vec![0u8; u32::from_le_bytes(l) as usize];
                self.rec.read_exact(&mut path)?;
                let ordinal = self.ordinal;
                self.ordinal += 1;
                match self.late.get(&ordinal) {
                    Some(&(off, left)) if left == size => Cur::Late { off, left },
                    Some(_) => return Err(changed(&self.chain, "its split record is damaged")),
                    None => self.open_body(
                        PathBuf::from(std::ffi::OsStr::from_bytes(&path)),
                        size,
                        sum,
                    )?,
                }
            }
            b'E' => Cur::End,
            _ => return Err(changed(&self.chain, "its split record is damaged")),
        };
        Ok(())
    }

    fn open_body(&self, path: PathBuf, size: u64, sum: u64) -> io::Result<Cur> {
        let f = self.root.open_regular_nofollow(&path).map_err(|e| {
            changed(
                &self.chain,
                format!("{} cannot be read back: {e}", path.display()),
            )
        })?;
        let on_disk = f.metadata()?.len();
        if on_disk != size {
            return Err(changed(
                &self.chain,
                format!(
                    "{} changed on disk since it was unpacked ({on_disk} bytes, {size} expected)",
                    path.display()
                ),
            ));
        }
        Ok(Cur::Body(Box::new(BodyRead {
            f,
            path,
            left: size,
            sum: Sum::new(),
            expected: sum,
        })))
    }
}

impl Read for SplitReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let max = |left: u64| usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            match &mut self.cur {
                Cur::End => return Ok(0),
                Cur::Next => self.next_record()?,
                Cur::Raw { left } if *left == 0 => self.cur = Cur::Next,
                Cur::Raw { left } => {
                    let m = max(*left);
                    let n = self.rec.read(&mut buf[..m])?;
                    if n == 0 {
                        return Err(changed(&self.chain, "its split record is truncated"));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
                Cur::Late { left, .. } if *left == 0 => self.cur = Cur::Next,
                Cur::Late { off, left } => {
                    let m = max(*left);
                    let n = self.file.read_at(&mut buf[..m], *off)?;
                    if n == 0 {
                        return Err(changed(&self.chain, "its split record is truncated"));
                    }
                    *off += n as u64;
                    *left -= n as u64;
                    return Ok(n);
                }
                Cur::Body(b) if b.left == 0 => {
                    if b.sum.finish() != b.expected {
                        return Err(changed(
                            &self.chain,
                            format!("{} changed on disk since it was unpacked", b.path.display()),
                        ));
                    }
                    self.cur = Cur::Next;
                }
                Cur::Body(b) => {
                    let m = max(b.left);
                    let n = b.f.read(&mut buf[..m])?;
                    if n == 0 {
                        return Err(changed(
                            &self.chain,
                            format!("{} shrank on disk since it was unpacked", b.path.display()),
                        ));
                    }
                    b.sum.update(&buf[..n]);
                    b.left -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}
