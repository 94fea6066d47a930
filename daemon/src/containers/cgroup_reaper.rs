//! Removing exited containers' memory cgroup folders when no container is starting.
//!
//! The kernel's removal of a memory cgroup moves its kernel-memory lists to the parent: a walk
//! of every superblock's lists on the host — about 14 per running container — under the global
//! cgroup lock and the list-lru lock, which every mount of a new superblock and every cgroup
//! change waits behind. It runs in a kernel worker an RCU grace period after the `rmdir`, so
//! when the monitor removed the folder at a container's end, a `run --rm` right after paid the
//! walk inside its own start (~2 ms at 1,000 running here). So the native runtime leaves that
//! folder (spec annotation `berth_runtime::cgroups::DEFER_MEMORY_ANNOTATION`, set for
//! containers under the default parent `berth/`), and berthd removes the folders it was given
//! once no container has started for [`IDLE`] (or at once when [`CAP`] are waiting), in one
//! batch. The work is the same; it is moved off the path of the starts.
//!
//! The folders waiting are listed in `<exec-root>/cgroups-to-remove` (rewritten after each
//! batch with what still waits, so it stays as short as the queue), so a berthd killed before
//! removing them removes them at its next start — only lines naming a container's folder
//! under the default parent of a cgroup mount ([`is_memory_folder`]); a start of a container whose folder
//! still waits removes it first ([`Reaper::take`]), so a container never runs in a memory
//! cgroup that counted an earlier run (its OOM kills among them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long no container must have started (or ended) before the folders go.
pub const IDLE: Duration = Duration::from_millis(250);

/// How many folders may wait before they go whatever is starting.
pub const CAP: usize = 64;

/// How long after a failed removal (a task still inside) a folder is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// How often a folder still busy is tried before it is left to the next berthd's start (it
/// stays listed).
const TRIES: u8 = 60;

/// The reaper; cheap to clone, one thread behind all clones.
#[derive(Clone)]
pub struct Reaper {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    wake: Condvar,
    list: PathBuf,
}

struct State {
    waiting: Vec<Waiting>,
    last_activity: Instant,
    /// Folders still busy after [`TRIES`]: kept listed for the next start.
    left: Vec<PathBuf>,
    /// [`Reaper::flush`] ran: the thread is done, folders given now go at once.
    closed: bool,
}

/// A folder given to the reaper.
struct Waiting {
    dir: PathBuf,
    /// Failed removals so far.
    tries: u8,
    /// Not tried before this (set after a failed removal).
    not_before: Option<Instant>,
}

impl Waiting {
    fn due(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| t <= now)
    }
}

impl Reaper {
    /// Starts the reaper listing its folders in `list`; first removes what an earlier berthd
    /// listed there and did not remove (folders under the cgroup mounts at `cgroup_root`).
    pub fn start(list: PathBuf, cgroup_root: &Path) -> Reaper {
        if let Ok(text) = std::fs::read_to_string(&list) {
            for line in text
                .lines()
                .filter(|l| is_memory_folder(cgroup_root, Path::new(l)))
            {
                let _ = std::fs::remove_dir(line);
            }
        }
        let _ = std::fs::remove_file(&list);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                waiting: Vec::new(),
                last_activity: Instant::now(),
                left: Vec::new(),
                closed: false,
            }),
            wake: Condvar::new(),
            list,
        });
        let worker = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("cgroup-reaper".into())
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            tracing::warn!("no cgroup reaper thread ({e}): memory cgroups go at once");
        }
        Reaper { inner }
    }

    /// A container is starting: the folders wait until starts have been quiet for [`IDLE`].
    pub fn starting(&self) {
        if let Ok(mut st) = self.inner.state.lock() {
            st.last_activity = Instant::now();
        }
    }

    /// Takes `dir` (a container's memory cgroup folder, empty once its tasks are gone) over.
    pub fn defer(&self, dir: PathBuf) {
        let listed = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.inner.list)
            .and_then(|mut f| writeln!(f, "{}", dir.display()));
        let Ok(mut st) = self.inner.state.lock() else {
            let _ = std::fs::remove_dir(&dir);
            return;
        };
        if listed.is_err() || st.closed {
            // Not listed, so not removed after a crash, or berthd is ending: remove it now
            // (if that fails, a listed folder is removed at the next start).
            drop(st);
            let _ = std::fs::remove_dir(&dir);
            return;
        }
        if !st.waiting.iter().any(|w| w.dir == dir) {
            st.waiting.push(Waiting {
                dir,
                tries: 0,
                not_before: None,
            });
        }
        st.last_activity = Instant::now();
        self.inner.wake.notify_one();
    }

    /// Removes `dir` now if it is waiting (a container starting again: its memory cgroup must
    /// be a new one).
    pub fn take(&self, dir: &Path) {
        let waiting = self.inner.state.lock().is_ok_and(|mut st| {
            let before = st.waiting.len();
            st.waiting.retain(|w| w.dir != dir);
            st.waiting.len() != before
        });
        if waiting {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Removes every waiting folder now (berthd is ending); those still busy stay listed for
    /// the next start. Folders given after this are removed at once.
    pub fn flush(&self) {
        let Ok(mut st) = self.inner.state.lock() else {
            return;
        };
        st.closed = true;
        let mut batch: Vec<PathBuf> = std::mem::take(&mut st.waiting)
            .into_iter()
            .map(|w| w.dir)
            .collect();
        batch.append(&mut st.left);
        // Those still busy stay in `left`: a batch the thread was removing meanwhile rewrites
        // the list from the state, and must keep them in it.
        st.left = batch
            .into_iter()
            .filter(|d| matches!(std::fs::remove_dir(d), Err(e) if e.kind() != std::io::ErrorKind::NotFound))
            .collect();
        self.inner.relist(&st.left);
        self.inner.wake.notify_one();
    }

    /// How many folders wait.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.inner.state.lock().map_or(0, |st| st.waiting.len())
    }
}

impl Inner {
    fn run(&self) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        loop {
            if st.closed {
                return;
            }
            let now = Instant::now();
            let due = st.waiting.iter().filter(|w| w.due(now)).count();
            if due == 0 {
                // Nothing, or only folders to retry later.
                let next = st.waiting.iter().filter_map(|w| w.not_before).min();
                st = match next {
                    None => match self.wake.wait(st) {
                        Ok(s) => s,
                        Err(_) => return,
                    },
                    Some(t) => match self.wake.wait_timeout(st, t - now) {
                        Ok((s, _)) => s,
                        Err(_) => return,
                    },
                };
                continue;
            }
            let quiet = st.last_activity.elapsed();
            if quiet < IDLE && due < CAP {
                st = match self.wake.wait_timeout(st, IDLE - quiet) {
                    Ok((s, _)) => s,
                    Err(_) => return,
                };
                continue;
            }
            let (batch, later): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut st.waiting)
                .into_iter()
                .partition(|w| w.due(now));
            st.waiting = later;
            drop(st);
            let mut again = Vec::new();
            let mut gave_up = Vec::new();
            for mut w in batch {
                match std::fs::remove_dir(&w.dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // Busy: a task still inside (its container's last processes are still
                    // exiting), or the container started again (its next end gives the
                    // folder back). Tried again a while later, however many wait.
                    Err(_) if w.tries + 1 < TRIES => {
                        w.tries += 1;
                        w.not_before = Some(Instant::now() + RETRY);
                        again.push(w);
                    }
                    Err(e) => {
                        tracing::warn!(
                            "memory cgroup {} stays until berthd's next start: {e}",
                            w.dir.display()
                        );
                        gave_up.push(w.dir);
                    }
                }
            }
            st = match self.state.lock() {
                Ok(s) => s,
                Err(_) => return,
            };
            st.waiting.extend(again);
            st.left.extend(gave_up);
            // What still waits (retries, and folders given meanwhile), not every folder ever
            // given: under steady churn the queue is never empty. Folders given up on stay
            // listed, for the next start.
            let listed: Vec<PathBuf> = st
                .waiting
                .iter()
                .map(|w| w.dir.clone())
                .chain(st.left.iter().cloned())
                .collect();
            self.relist(&listed);
        }
    }

    /// Rewrites the list with `dirs` (removes it when there are none).
    fn relist(&self, dirs: &[PathBuf]) {
        if dirs.is_empty() {
            let _ = std::fs::remove_file(&self.list);
            return;
        }
        let text: String = dirs.iter().map(|d| format!("{}\n", d.display())).collect();
        let _ = berth_core::atomic::write_atomic_unflushed(&self.list, text.as_bytes());
    }
}

/// Whether `p` is what [`Reaper::defer`] is given: `<cgroup root>/.../berth/<64 hex>`, with
/// no `..` (a line of the list is removed at start only if it is).
fn is_memory_folder(root: &Path, p: &Path) -> bool {
    use std::path::Component;
    let id = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    p.starts_with(root)
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && p.parent().and_then(Path::file_name) == Some(std::ffi::OsStr::new("berth"))
        && id.len() == 64
        && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_container_memory_folders_are_taken_from_the_list() {
        let id = "a".repeat(64);
        let root = Path::new("/sys/fs/cgroup");
        assert!(is_memory_folder(
            root,
            Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}"))
        ));
        assert!(is_memory_folder(
            root,
            Path::new(&format!("/sys/fs/cgroup/berth/{id}"))
        ));
        for bad in [
            format!("/sys/fs/cgroup/memory/other/{id}"),
            format!("/sys/fs/cgroup/../../etc/berth/{id}"),
            format!("/var/lib/berth/{id}"),
            "/sys/fs/cgroup/memory/berth/abc".to_string(),
            format!("sys/fs/cgroup/memory/berth/{id}"),
        ] {
            assert!(!is_memory_folder(root, Path::new(&bad)), "{bad}");
        }
    }

    #[test]
    fn folders_go_once_starts_are_quiet_and_a_restart_takes_its_own_back() {
        let t = tempfile::tempdir().expect("tmp");
        let list = t.path().join("list");
        // What an earlier berthd left listed goes at start.
        let old = t.path().join("memory/berth").join("0".repeat(64));
        std::fs::create_dir_all(&old).expect("mkdir");
        std::fs::write(&list, format!("{}\n", old.display())).expect("w");
        let r = Reaper::start(list.clone(), t.path());
        assert!(!old.exists());
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir(d).expect("mkdir");
        }
        r.defer(a.clone());
        r.defer(b.clone());
        assert!(std::fs::read_to_string(&list)
            .expect("listed")
            .contains("/a"));
        r.take(&b);
        assert!(!b.exists(), "a restart removes its folder at once");
        // Starts keep the folders waiting; quiet removes them.
        for _ in 0..4 {
            r.starting();
            std::thread::sleep(IDLE / 4);
        }
        assert!(a.exists(), "removed while starts went on");
        let t0 = Instant::now();
        while a.exists() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!a.exists());
        while list.exists() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!list.exists(), "the list goes with the last folder");
        assert_eq!(r.waiting(), 0);
    }

    #[test]
    fn a_busy_folder_is_tried_again_later_even_when_the_queue_is_full_and_none_go_after_flush() {
        let t = tempfile::tempdir().expect("tmp");
        let r = Reaper::start(t.path().join("list"), t.path());
        // Busy (here: not empty) when the full queue is removed at once.
        let busy = t.path().join("busy");
        std::fs::create_dir_all(busy.join("task")).expect("mkdir");
        r.defer(busy.clone());
        for i in 0..CAP {
            let d = t.path().join(format!("d{i}"));
            std::fs::create_dir(&d).expect("mkdir");
            r.defer(d);
        }
        let t0 = Instant::now();
        while r.waiting() > 1 && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(r.waiting(), 1, "the full queue went, the busy folder waits");
        assert!(busy.exists());
        // More full queues meanwhile do not use up its tries.
        for round in 0..3 {
            for i in 0..CAP {
                let d = t.path().join(format!("r{round}-{i}"));
                std::fs::create_dir(&d).expect("mkdir");
                r.defer(d);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::remove_dir(busy.join("task")).expect("rmdir");
        while busy.exists() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!busy.exists(), "removed once its tasks were gone");
        // After flush, a folder given goes at once.
        r.flush();
        let late = t.path().join("late");
        std::fs::create_dir(&late).expect("mkdir");
        r.defer(late.clone());
        assert!(!late.exists());
    }
}
