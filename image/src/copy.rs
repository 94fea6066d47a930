//! The kept copy of a layer's tar (`layer.tar`, only for storage drivers without a diff
//! folder; the others keep a split record, `split`), written as the layer streams in: in 4 MiB
//! blocks, with `O_DIRECT` when the filesystem allows, by a writer thread of its own. The copy
//! is read only by `save` and `push`, so it need not sit in the page cache: writing around it
//! saves a memory copy of every byte, and the final fsync finds nothing left to flush. The
//! last block is padded to the alignment `O_DIRECT` needs and the file cut to its length.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes per block handed to the writer.
const BLOCK: usize = 4 << 20;
/// Alignment of buffers, offsets and lengths for `O_DIRECT`.
const ALIGN: usize = 4096;

/// A buffer whose usable part (`off..off + BLOCK`) starts at an [`ALIGN`]ed address.
struct Block {
    mem: Vec<u8>,
    off: usize,
    len: usize,
}

impl Block {
    fn new() -> Block {
        let mem = vec![0u8; BLOCK + ALIGN];
        let off = mem.as_ptr().align_offset(ALIGN).min(ALIGN);
        Block { mem, off, len: 0 }
    }

    fn spare(&mut self) -> &mut [u8] {
        &mut self.mem[self.off + self.len..self.off + BLOCK]
    }
}

/// Writes a new file in the background (see the module documentation).
pub(crate) struct LayerCopy {
    cur: Option<Block>,
    full: Option<SyncSender<Block>>,
    empty: Receiver<Block>,
    worker: Option<JoinHandle<io::Result<File>>>,
    total: u64,
}

impl LayerCopy {
    /// Creates (or truncates) `path` and starts its writer.
    pub(crate) fn create(path: &Path) -> io::Result<LayerCopy> {
        let open = |flags| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(flags)
                .open(path)
        };
        let f = match open(libc::O_DIRECT) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => open(0)?,
            Err(e) => return Err(e),
        };
        let (full, blocks) = mpsc::sync_channel::<Block>(1);
        let (give_back, empty) = mpsc::sync_channel::<Block>(2);
        give_back
            .send(Block::new())
            .map_err(|_| io::Error::other("layer copy writer gone"))?;
        let worker = std::thread::Builder::new()
            .name("layer-copy".into())
            .spawn(move || write_blocks(f, blocks, give_back))?;
        Ok(LayerCopy {
            cur: Some(Block::new()),
            full: Some(full),
            empty,
            worker: Some(worker),
            total: 0,
        })
    }

    /// Hands the current block to the writer and takes an empty one back.
    fn ship(&mut self) -> io::Result<()> {
        let Some(block) = self.cur.take() else {
            return Err(io::Error::other("layer copy already finished"));
        };
        let sent = self.full.as_ref().map(|tx| tx.send(block).is_ok());
        let next = match sent {
            Some(true) => self.empty.recv().ok(),
            _ => None,
        };
        match next {
            Some(mut b) => {
                b.len = 0;
                self.cur = Some(b);
                Ok(())
            }
            // The writer stopped: its error comes out of `finish`.
            None => Err(self.stop()),
        }
    }

    /// Stops the writer and returns why it stopped.
    fn stop(&mut self) -> io::Error {
        self.full = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("layer copy writer panicked"),
            _ => io::Error::other("layer copy writer stopped"),
        }
    }

    /// Writes what is left, cuts the file to its length and fsyncs it.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        let Some(mut last) = self.cur.take() else {
            return Err(io::Error::other("layer copy already finished"));
        };
        if last.len > 0 {
            // O_DIRECT wants whole aligned blocks: pad with zeros, cut after.
            let padded = last.len.div_ceil(ALIGN) * ALIGN;
            let (off, len) = (last.off, last.len);
            last.mem[off + len..off + padded].fill(0);
            last.len = padded;
            let sent = self.full.as_ref().map(|tx| tx.send(last).is_ok());
            if sent != Some(true) {
                return Err(self.stop());
            }
        }
        self.full = None;
        let f = match self.worker.take().map(JoinHandle::join) {
            Some(Ok(r)) => r?,
            Some(Err(_)) => return Err(io::Error::other("layer copy writer panicked")),
            None => return Err(io::Error::other("layer copy writer stopped")),
        };
        f.set_len(self.total)?;
        f.sync_all()
    }
}

impl Write for LayerCopy {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(cur) = self.cur.as_mut() else {
            return Err(io::Error::other("layer copy already finished"));
        };
        let spare = cur.spare();
        let n = spare.len().min(data.len());
        spare[..n].copy_from_slice(&data[..n]);
        cur.len += n;
        self.total += n as u64;
        if cur.len == BLOCK {
            self.ship()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LayerCopy {
    fn drop(&mut self) {
        self.full = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The writer thread: writes every block it is given, in order, and gives it back.
fn write_blocks(
    mut f: File,
    blocks: Receiver<Block>,
    give_back: SyncSender<Block>,
) -> io::Result<File> {
    for b in blocks {
        let data = &b.mem[b.off..b.off + b.len];
        match f.write_all(data) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // This filesystem refused the direct write: go on through the page cache.
                clear_direct(&f)?;
                f.write_all(data)?;
            }
            other => other?,
        }
        // The reader side may have stopped already; the block is then simply dropped.
        let _ = give_back.try_send(b);
    }
    Ok(f)
}

/// Turns `O_DIRECT` off on `f`.
fn clear_direct(f: &File) -> io::Result<()> {
    let fd = f.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; they change only its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_exactly_whatever_the_length() {
        let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
        for len in [
            0usize,
            1,
            4095,
            4096,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK + 777,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = tmp.path().join(format!("copy-{len}"));
            let mut c = LayerCopy::create(&path).expect("create");
            for chunk in data.chunks(100_000) {
                c.write_all(chunk).expect("write");
            }
            c.finish().expect("finish");
            assert_eq!(std::fs::read(&path).expect("read"), data, "length {len}");
        }
    }
}
