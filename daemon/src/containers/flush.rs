//! Write-behind durability for container records. A record is replaced atomically (temp file,
//! rename) on the request path, so a reader or a crashed daemon only ever sees the old or the
//! new record; making it durable against power loss (fsync of the file and of its folder,
//! about 6 ms per fsync on this project's disks) happens on one background thread, a few
//! milliseconds later, so `create`/`start`/exit handling don't wait for the disk. A record cut
//! short by a power loss in that window is skipped with a warning at start-up
//! (`Containers::open`), as any unreadable record is.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

static QUEUE: OnceLock<Mutex<Sender<PathBuf>>> = OnceLock::new();

/// Queues `path` (a file just renamed into place) for fsync, with its folder.
pub fn later(path: PathBuf) {
    let q = QUEUE.get_or_init(|| {
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name("berth-flush".into())
            .stack_size(64 * 1024)
            .spawn(move || run(rx));
        if spawned.is_err() {
            tracing::warn!("no background flush thread: records are flushed when written");
        }
        Mutex::new(tx)
    });
    let sent = q.lock().map(|tx| tx.send(path.clone()).is_ok());
    if !matches!(sent, Ok(true)) {
        sync(&path);
    }
}

fn run(rx: Receiver<PathBuf>) {
    while let Ok(first) = rx.recv() {
        // Everything queued meanwhile goes in the same round; a folder is synced once.
        let mut files = BTreeSet::from([first]);
        files.extend(rx.try_iter());
        let mut dirs = BTreeSet::new();
        for f in &files {
            sync(f);
            if let Some(d) = f.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        for d in &dirs {
            sync(d);
        }
    }
}

/// fsync of a file or folder; one that is gone meanwhile (a removed container) is fine.
fn sync(p: &std::path::Path) {
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.sync_all();
    }
}
