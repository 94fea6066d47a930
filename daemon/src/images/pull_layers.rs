//! The layers of a pull: each missing layer's blob streams from the registry plugin (which
//! checks its digest by the stream's end) through decompression, unpack and diff_id check
//! into the image store, with Docker's progress messages. When the storage driver's layers
//! are independent (overlay) up to [`CONCURRENT_LAYERS`] layers download and unpack at once
//! on their own threads and are recorded in chain order as they complete; otherwise one
//! after another, each on top of the recorded one before it.

use super::pull::Pull;
use berth_core::reference::Reference;
use berth_core::registry::Credentials;
use berth_core::{DriverError, Registry};
use berth_image::{Begun, NewLayer};
use serde_json::json;
use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How many layers download and unpack at once (Docker's `max-concurrent-downloads`).
pub const CONCURRENT_LAYERS: usize = 3;

/// A layer to fetch: its blob digest and size, the diff_id and chain id it must produce.
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
    pub chain: String,
    pub short: String,
}

/// A claimed layer waiting for a worker.
type Job<'a> = (usize, &'a Layer, NewLayer<'a>);

impl Pull {
    /// Fetches the layers of `layers` whose `present` entry is false; `Pull complete` is sent
    /// for each as it is recorded.
    pub(super) fn fetch_layers(
        &self,
        r: &Reference,
        layers: &[Layer],
        present: &[bool],
    ) -> Result<(), String> {
        if !self.ctx.images.fills_in_parallel() {
            let mut parent: Option<&str> = None;
            for (l, have) in layers.iter().zip(present) {
                if !*have {
                    if let Some(mut new) = self.begin(l, parent)? {
                        self.fill(r, l, &mut new, &AtomicBool::new(false))?;
                        new.commit().map_err(|e| e.to_string())?;
                    }
                    self.status("Pull complete", &l.short);
                }
                parent = Some(&l.chain);
            }
            return Ok(());
        }
        // Claim every missing layer first (in chain order), then fill them at once.
        let mut queue: VecDeque<Job<'_>> = VecDeque::new();
        let mut parent: Option<&str> = None;
        for (i, (l, have)) in layers.iter().zip(present).enumerate() {
            if !*have {
                if let Some(new) = self.begin(l, parent)? {
                    queue.push_back((i, l, new));
                }
            }
            parent = Some(&l.chain);
        }
        let workers = queue.len().min(CONCURRENT_LAYERS);
        let queue = Mutex::new(queue);
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel::<(usize, Result<NewLayer<'_>, String>)>();
        std::thread::scope(|s| {
            for _ in 0..workers {
                let (tx, queue, stop) = (tx.clone(), &queue, &stop);
                s.spawn(move || loop {
                    let job = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((i, l, mut new)) = job else { break };
                    let filled = self.fill(r, l, &mut new, stop).map(|()| new);
                    if filled.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if tx.send((i, filled)).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            let mut done: Vec<Option<NewLayer<'_>>> = (0..layers.len()).map(|_| None).collect();
            let mut next = 0;
            let mut failure: Option<String> = None;
            loop {
                // Record, in chain order, every layer whose turn has come.
                while failure.is_none() && next < layers.len() {
                    let l = &layers[next];
                    if !present[next] {
                        if let Some(new) = done[next].take() {
                            if let Err(e) = new.commit() {
                                stop.store(true, Ordering::Relaxed);
                                failure = Some(e.to_string());
                                break;
                            }
                        } else if self.ctx.images.layer(&l.chain).is_none() {
                            break;
                        }
                        self.status("Pull complete", &l.short);
                    }
                    next += 1;
                }
                let Ok((i, filled)) = rx.recv() else { break };
                match filled {
                    Ok(new) => done[i] = Some(new),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        failure.get_or_insert(e);
                    }
                }
            }
            // The workers ended: anything filled but not recorded is dropped (removed) here.
            match failure {
                Some(e) => Err(e),
                None if next < layers.len() => Err("a layer was not pulled".to_string()),
                None => Ok(()),
            }
        })
    }

    /// Claims layer `l` (None: it is recorded already, made by someone else meanwhile).
    fn begin<'a>(
        &'a self,
        l: &Layer,
        parent: Option<&str>,
    ) -> Result<Option<NewLayer<'a>>, String> {
        match self.ctx.images.begin_layer(parent, &l.diff_id) {
            Ok(Begun::New(new)) => Ok(Some(new)),
            Ok(Begun::Existing(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Streams layer `l`'s blob into `new`; `stop` (another layer failed) cuts it short.
    fn fill(
        &self,
        r: &Reference,
        l: &Layer,
        new: &mut NewLayer<'_>,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        let blob = open_blob(&self.reg, r, &l.digest, &self.creds).map_err(|e| e.to_string())?;
        let mut reader = Progress {
            inner: blob,
            done: 0,
            total: l.size,
            pull: self,
            id: &l.short,
            last: Instant::now(),
            stop,
        };
        // The blob reader checks the digest by its end, which `fill` reads up to.
        new.fill(&mut reader, false).map_err(|e| e.to_string())?;
        self.status("Verifying Checksum", &l.short);
        self.status("Download complete", &l.short);
        Ok(())
    }
}

/// Opens blob `digest` as a stream; for registries that cannot, `fetch_blob` writes into a
/// pipe on another thread whose outcome the reader reports at the end.
fn open_blob(
    reg: &Arc<dyn Registry>,
    r: &Reference,
    digest: &str,
    creds: &Credentials,
) -> Result<Box<dyn Read + Send>, DriverError> {
    match reg.open_blob(r, digest, creds) {
        Err(DriverError::Unsupported(_)) => {}
        other => return other,
    }
    let pipe = std::io::pipe().map_err(|e| DriverError::io("creating a pipe for a blob", e))?;
    let (reg, r, digest, creds) = (reg.clone(), r.clone(), digest.to_string(), creds.clone());
    let fetched = berth_core::stream::produce("pull-fetch-blob", pipe, move |mut pw| {
        reg.fetch_blob(&r, &digest, &creds, &mut pw).map(|_| ())
    })?;
    Ok(Box::new(fetched))
}

/// Counts the compressed bytes the store reads, sending `Downloading` progress; fails once
/// `stop` is set, or once the blob passes the size its descriptor gives.
struct Progress<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    pull: &'a Pull,
    id: &'a str,
    last: Instant,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("pull stopped: another layer failed"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        // A registry may not send more than the manifest said (an endless blob would
        // otherwise be unpacked until the disk is full).
        if self.total > 0 && self.done > self.total {
            return Err(std::io::Error::other(format!(
                "layer {} is larger than the {} bytes its manifest gives",
                self.id, self.total
            )));
        }
        if self.last.elapsed() > Duration::from_millis(100) {
            self.last = Instant::now();
            self.pull.msg(json!({"status": "Downloading", "progressDetail": {"current": self.done, "total": self.total}, "id": self.id}));
        }
        Ok(n)
    }
}
