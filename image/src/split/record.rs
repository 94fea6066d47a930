//! Recording a layer's split record while the layer streams into the storage driver: a
//! [`SplitTee`] sits on the uncompressed stream the driver reads and hands every byte to a
//! [`Recorder`], which follows the tar's blocks as the driver's tar reader does (PAX and GNU
//! long-name extensions, PAX sizes, GNU sparse extension blocks, the end block) and writes
//! recorded bytes for everything but regular file bodies, which it only checksums.
//!
//! A body stays in the unpacked folder only while nothing later in the tar changes its path
//! ([`super::risk`]). When a header that would change it comes by, the recorder reads that
//! body back from the unpacked folder *before* passing the header on, so before the driver can
//! act on it, and keeps it inline. The driver may read ahead of what it has applied (plugin
//! streams cross a pipe), so the read-back waits, bounded, until the file holds exactly the
//! recorded size and checksum. Anything the recorder cannot follow (a malformed header, an
//! oversized extension record) turns the rest of the stream into recorded bytes: always exact.

use super::risk::{BodyRef, Live};
use super::{Sum, END_MAGIC, MAGIC};
use berth_confine::Root;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Recorded bytes are written in records of at most this size.
const RAW_CHUNK: usize = 1 << 20;
/// Extension records (PAX, GNU long names) larger than this are not parsed.
const META_CAP: usize = 1 << 20;
/// How long a read-back waits for the driver to finish writing a body.
const READ_BACK_WAIT: Duration = Duration::from_secs(20);

/// Where the recorder is in the tar.
enum State {
    /// Collecting a 512-byte header block.
    Header,
    /// Collecting a GNU sparse extension block; the body that follows.
    SparseExt { size: u64 },
    /// Inside an entry's body.
    Body { left: u64, size: u64, kind: Body },
    /// Inside the padding after a body.
    Pad { left: u64 },
    /// After the end block, or given up following: everything is recorded bytes.
    Raw,
}

/// What a body is kept as.
enum Body {
    /// Recorded bytes.
    Raw,
    /// Recorded bytes, also parsed once whole (a PAX record set or a GNU long name).
    Meta(Meta),
    /// Read back from the unpacked folder.
    File { path: Vec<u8>, sum: Sum },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Meta {
    Pax,
    LongName,
}

/// Records the split of one layer stream (see the module documentation).
pub(crate) struct Recorder {
    out: BufWriter<File>,
    late: File,
    late_index: Vec<(u64, u64, u64)>,
    late_len: u64,
    root: Root,
    live: Live,
    state: State,
    block: Vec<u8>,
    raw: Vec<u8>,
    meta: Vec<u8>,
    meta_whole: bool,
    pax: Option<Vec<u8>>,
    long_name: Option<Vec<u8>>,
    /// Bodies to read back before the header just taken in reaches the driver.
    pending: Vec<(Vec<u8>, BodyRef)>,
    files: u64,
    total: u64,
    failed: Option<String>,
}

/// The size a PAX record set gives.
fn pax_size(pax: &[u8]) -> Option<u64> {
    pax_value(pax, b"size").and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
}

fn pax_value<'a>(pax: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    tar::PaxExtensions::new(pax)
        .filter_map(Result::ok)
        .find(|e| e.key_bytes() == key)
        .map(|e| e.value_bytes())
}

impl Recorder {
    /// Starts a split record at `path` (a new file) for a layer being unpacked into `root`.
    /// Late bodies are spooled in an unnamed file in `spool_dir`.
    pub(crate) fn create(path: &Path, root: Root, spool_dir: &Path) -> io::Result<Recorder> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        out.write_all(MAGIC)?;
        Ok(Recorder {
            out,
            late: tempfile::tempfile_in(spool_dir)?,
            late_index: Vec::new(),
            late_len: 0,
            root,
            live: Live::default(),
            state: State::Header,
            block: Vec::with_capacity(512),
            raw: Vec::new(),
            meta: Vec::new(),
            meta_whole: true,
            pax: None,
            long_name: None,
            pending: Vec::new(),
            files: 0,
            total: 0,
            failed: None,
        })
    }

    /// Takes in a prefix of `data`, the next bytes of the stream, and returns its length: all
    /// of it, or up to the end of a header that puts earlier bodies at risk ([`Self::held`]):
    /// those must be read back ([`Self::settle`]) once the driver has every byte before that
    /// header, and before it gets the header itself.
    pub(crate) fn feed(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(why) = &self.failed {
            return Err(io::Error::other(why.clone()));
        }
        let mut done = 0;
        while done < data.len() && self.pending.is_empty() {
            match self.step(&data[done..]) {
                Ok(n) => done += n,
                Err(e) => {
                    self.failed = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        self.total += done as u64;
        Ok(done)
    }

    /// Whether bodies wait to be read back (see [`Self::feed`]).
    pub(crate) fn held(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Reads back the bodies the last header put at risk.
    pub(crate) fn settle(&mut self) -> io::Result<()> {
        for (path, r) in std::mem::take(&mut self.pending) {
            if let Err(e) = self.read_back(&path, r) {
                self.failed = Some(e.to_string());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Consumes a prefix of `data` (at least one byte); returns its length.
    fn step(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.state {
            State::Raw => {
                self.record_raw(data)?;
                Ok(data.len())
            }
            State::Header | State::SparseExt { .. } => {
                let n = (512 - self.block.len()).min(data.len());
                self.block.extend_from_slice(&data[..n]);
                if self.block.len() == 512 {
                    let block = std::mem::take(&mut self.block);
                    self.record_raw(&block)?;
                    match self.state {
                        State::SparseExt { size } => {
                            // Byte 504 says whether another extension block follows.
                            if block[504] == 0 {
                                self.begin_body(size, Body::Raw)?;
                            }
                        }
                        _ => self.header(&block)?,
                    }
                    self.block = block;
                    self.block.clear();
                }
                Ok(n)
            }
            State::Body { left, size, kind } => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                let chunk = &data[..n];
                *left -= n as u64;
                let (done, size) = (*left == 0, *size);
                let is_file = match kind {
                    Body::File { sum, .. } => {
                        sum.update(chunk);
                        true
                    }
                    Body::Meta(_) => {
                        if self.meta.len() + n <= META_CAP {
                            self.meta.extend_from_slice(chunk);
                        } else {
                            self.meta_whole = false;
                        }
                        false
                    }
                    Body::Raw => false,
                };
                if !is_file {
                    self.record_raw(chunk)?;
                }
                if done {
                    self.end_body(size)?;
                }
                Ok(n)
            }
            State::Pad { left } => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                *left -= n as u64;
                if *left == 0 {
                    self.state = State::Header;
                }
                self.record_raw(&data[..n])?;
                Ok(n)
            }
        }
    }

    /// A complete header block (already recorded).
    fn header(&mut self, block: &[u8]) -> io::Result<()> {
        if block.iter().all(|b| *b == 0) {
            // The tar reader stops at the first zero block: the rest is recorded as it is.
            self.state = State::Raw;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(block);
        let kind = header.entry_type();
        // As the tar reader: these never take a PAX size; L, K and x describe the next entry
        // only in a GNU or ustar header (an old-style one is an entry of its own).
        let no_pax_size = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let Ok(mut size) = header.entry_size() else {
            self.state = State::Raw;
            return Ok(());
        };
        if !no_pax_size {
            if let Some(s) = self.pax.as_deref().and_then(pax_size) {
                size = s;
            }
        }
        let body = if recognized && kind.is_pax_local_extensions() {
            Body::Meta(Meta::Pax)
        } else if recognized && kind.is_gnu_longname() {
            Body::Meta(Meta::LongName)
        } else if recognized && kind.is_gnu_longlink() {
            Body::Raw
        } else {
            self.entry(header, size)?
        };
        if kind.is_gnu_sparse() && header.as_gnu().is_some_and(|g| g.is_extended()) {
            self.state = State::SparseExt { size };
            return Ok(());
        }
        self.begin_body(size, body)
    }

    /// A (non-extension) entry's header: settles what its body is kept as, after reading
    /// back the earlier bodies it puts at risk.
    fn entry(&mut self, header: &tar::Header, size: u64) -> io::Result<Body> {
        let long = self.long_name.take();
        let pax = self.pax.take();
        let raw_path: Vec<u8> = match (&long, &pax) {
            (Some(l), _) => l.strip_suffix(&[0]).unwrap_or(l).to_vec(),
            (None, Some(p)) => match pax_value(p, b"path") {
                Some(v) => v.to_vec(),
                None => header.path_bytes().into_owned(),
            },
            (None, None) => header.path_bytes().into_owned(),
        };
        let Some(rel) =
            berth_archive::entry_path(Path::new(std::ffi::OsStr::from_bytes(&raw_path)))
        else {
            // The driver refuses such a path: nothing is unpacked, keep the body.
            return Ok(Body::Raw);
        };
        let rel = rel.as_os_str().as_bytes().to_vec();
        if rel.is_empty() {
            return Ok(Body::Raw);
        }
        let name = rel.rsplit(|b| *b == b'/').next().unwrap_or(&rel);
        let kind = header.entry_type();
        let parent_len = rel.len() - name.len();
        let (touched, below) = if name == berth_archive::OPAQUE_MARKER.as_bytes() {
            (rel[..parent_len.saturating_sub(1)].to_vec(), true)
        } else if let Some(hidden) = name.strip_prefix(berth_archive::WHITEOUT_PREFIX.as_bytes()) {
            let mut t = rel[..parent_len].to_vec();
            t.extend_from_slice(hidden);
            (t, true)
        } else {
            (rel.clone(), !kind.is_dir())
        };
        if !touched.is_empty() {
            self.pending = self.live.take_at_risk(&touched, below);
        }
        let whiteout = name.starts_with(berth_archive::WHITEOUT_PREFIX.as_bytes());
        let regular = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
        Ok(if regular && size > 0 && !whiteout {
            Body::File {
                path: rel,
                sum: Sum::new(),
            }
        } else {
            Body::Raw
        })
    }

    fn begin_body(&mut self, size: u64, kind: Body) -> io::Result<()> {
        if matches!(kind, Body::File { .. }) {
            self.flush_raw()?;
        }
        self.meta.clear();
        self.meta_whole = true;
        if size == 0 {
            self.state = State::Body {
                left: 0,
                size,
                kind,
            };
            return self.end_body(0);
        }
        self.state = State::Body {
            left: size,
            size,
            kind,
        };
        Ok(())
    }

    fn end_body(&mut self, size: u64) -> io::Result<()> {
        let state = std::mem::replace(&mut self.state, State::Header);
        if let State::Body { kind, .. } = state {
            match kind {
                Body::File { path, sum } => {
                    let r = BodyRef {
                        ordinal: self.files,
                        size,
                        sum: sum.finish(),
                    };
                    self.files += 1;
                    self.out.write_all(b"F")?;
                    self.out.write_all(&size.to_le_bytes())?;
                    self.out.write_all(&r.sum.to_le_bytes())?;
                    self.out.write_all(&(path.len() as u32).to_le_bytes())?;
                    self.out.write_all(&path)?;
                    self.live.insert(path, r);
                }
                Body::Meta(m) => {
                    if !self.meta_whole {
                        // Too large to follow: record the rest of the stream as it is.
                        self.state = State::Raw;
                        return Ok(());
                    }
                    let bytes = std::mem::take(&mut self.meta);
                    match m {
                        Meta::Pax => self.pax = Some(bytes),
                        Meta::LongName => self.long_name = Some(bytes),
                    }
                }
                Body::Raw => {}
            }
        }
        let pad = (512 - size % 512) % 512;
        self.state = if pad == 0 {
            State::Header
        } else {
            State::Pad { left: pad }
        };
        Ok(())
    }

    /// Reads the body `r` of `path` back from the unpacked folder into the late bodies,
    /// waiting (bounded) for the driver to have written it whole.
    fn read_back(&mut self, path: &[u8], r: BodyRef) -> io::Result<()> {
        let rel = Path::new(std::ffi::OsStr::from_bytes(path));
        let deadline = Instant::now() + READ_BACK_WAIT;
        let mut pause = Duration::from_micros(200);
        loop {
            self.late.seek(SeekFrom::Start(self.late_len))?;
            let got = match self.root.open_regular_nofollow(rel) {
                Ok(f) => copy_summed(f, &mut self.late, r.size)?,
                Err(_) => None,
            };
            if got == Some(r.sum) {
                self.late_index.push((r.ordinal, self.late_len, r.size));
                self.late_len += r.size;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "layer file {} could not be read back as it was unpacked",
                    rel.display()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Appends recorded bytes.
    fn record_raw(&mut self, data: &[u8]) -> io::Result<()> {
        self.raw.extend_from_slice(data);
        if self.raw.len() >= RAW_CHUNK {
            self.flush_raw()?;
        }
        Ok(())
    }

    fn flush_raw(&mut self) -> io::Result<()> {
        for chunk in self.raw.chunks(RAW_CHUNK) {
            self.out.write_all(b"R")?;
            self.out.write_all(&(chunk.len() as u32).to_le_bytes())?;
            self.out.write_all(chunk)?;
        }
        self.raw.clear();
        Ok(())
    }

    /// Ends the record at the end of the stream: writes the late bodies and the footer and
    /// syncs the file. Returns the tar's length.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        self.settle()?;
        if let Some(why) = self.failed.take() {
            return Err(io::Error::other(why));
        }
        if let State::Body {
            kind: Body::File { .. },
            ..
        } = self.state
        {
            return Err(io::Error::other("the layer stream ended inside a file"));
        }
        if !self.block.is_empty() {
            let b = std::mem::take(&mut self.block);
            self.record_raw(&b)?;
        }
        self.flush_raw()?;
        self.out.write_all(b"E")?;
        let mut offset = self.out.stream_position()?;
        self.late.seek(SeekFrom::Start(0))?;
        let mut late = (&mut self.late).take(self.late_len);
        io::copy(&mut late, &mut self.out)?;
        let mut footer = Vec::with_capacity(self.late_index.len() * 24 + 32);
        for (ordinal, off, len) in &self.late_index {
            footer.extend_from_slice(&ordinal.to_le_bytes());
            footer.extend_from_slice(&(offset + off).to_le_bytes());
            footer.extend_from_slice(&len.to_le_bytes());
        }
        offset += self.late_len;
        footer.extend_from_slice(&(self.late_index.len() as u64).to_le_bytes());
        footer.extend_from_slice(&self.total.to_le_bytes());
        footer.extend_from_slice(&offset.to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.out.write_all(&footer)?;
        let f = self.out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(self.total)
    }
}

/// Copies at most `size + 1` bytes of `f` to `w`; the checksum when exactly `size` came.
fn copy_summed(f: File, w: &mut File, size: u64) -> io::Result<Option<u64>> {
    let mut sum = Sum::new();
    let mut r = f.take(size + 1);
    let mut buf = vec![0u8; (size as usize).clamp(1, 1 << 20)];
    let mut n_total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        };
        sum.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        n_total += n as u64;
    }
    Ok((n_total == size).then(|| sum.finish()))
}

/// Hands everything read through it to a [`Recorder`], and holds back a header that puts
/// earlier bodies at risk until they are read back: the reader first gets every byte before
/// that header (so the driver can finish those bodies), then, at its next read, the header.
pub(crate) struct SplitTee<'r, R> {
    inner: R,
    rec: &'r mut Recorder,
    stash: Vec<u8>,
    /// Bytes of `stash` handed out.
    out: usize,
    /// Bytes of `stash` taken in by the recorder.
    fed: usize,
    /// Where the held header starts in `stash` (nothing from there on is handed out).
    hold: Option<usize>,
}

impl<'r, R: Read> SplitTee<'r, R> {
    pub(crate) fn new(inner: R, rec: &'r mut Recorder) -> Self {
        SplitTee {
            inner,
            rec,
            stash: Vec::new(),
            out: 0,
            fed: 0,
            hold: None,
        }
    }
}

impl<R: Read> Read for SplitTee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let end = self.hold.unwrap_or(self.fed);
            if self.out < end {
                let n = (end - self.out).min(buf.len());
                buf[..n].copy_from_slice(&self.stash[self.out..self.out + n]);
                self.out += n;
                return Ok(n);
            }
            if self.rec.held() {
                // Every byte before the held header is out: the driver can finish the
                // bodies at risk, and cannot act on the header yet.
                self.rec.settle()?;
                self.hold = None;
                continue;
            }
            if self.fed < self.stash.len() {
                let n = self.rec.feed(&self.stash[self.fed..])?;
                self.fed += n;
                if self.rec.held() {
                    self.hold = Some(self.fed.saturating_sub(512).max(self.out));
                }
                continue;
            }
            self.stash.resize(256 << 10, 0);
            let n = loop {
                match self.inner.read(&mut self.stash) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.stash.clear();
                    return Err(e);
                }
            };
            self.stash.truncate(n);
            self.out = 0;
            self.fed = 0;
            if n == 0 {
                return Ok(0);
            }
        }
    }
}
