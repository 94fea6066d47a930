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

/// How often a folder that could not be removed (still busy) is tried again.
const TRIES: u8 = 3;

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
    waiting: Vec<(PathBuf, u8)>,
    last_activity: Instant,
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
        if listed.is_err() {
            // Not listed, so not removed after a crash: remove it now.
            drop(st);
            let _ = std::fs::remove_dir(&dir);
            return;
        }
        if !st.waiting.iter().any(|(d, _)| *d == dir) {
            st.waiting.push((dir, 0));
        }
        st.last_activity = Instant::now();
        self.inner.wake.notify_one();
    }

    /// Removes `dir` now if it is waiting (a container starting again: its memory cgroup must
    /// be a new one).
    pub fn take(&self, dir: &Path) {
        let waiting = self.inner.state.lock().is_ok_and(|mut st| {
            let before = st.waiting.len();
            st.waiting.retain(|(d, _)| d != dir);
            st.waiting.len() != before
        });
        if waiting {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Removes every waiting folder now (berthd is ending).
    pub fn flush(&self) {
        let batch = self
            .inner
            .state
            .lock()
            .map(|mut st| std::mem::take(&mut st.waiting))
            .unwrap_or_default();
        for (d, _) in batch {
            let _ = std::fs::remove_dir(&d);
        }
        let _ = std::fs::remove_file(&self.inner.list);
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
            if st.waiting.is_empty() {
                st = match self.wake.wait(st) {
                    Ok(s) => s,
                    Err(_) => return,
                };
                continue;
            }
            let quiet = st.last_activity.elapsed();
            if quiet < IDLE && st.waiting.len() < CAP {
                st = match self.wake.wait_timeout(st, IDLE - quiet) {
                    Ok((s, _)) => s,
                    Err(_) => return,
                };
                continue;
            }
            let batch = std::mem::take(&mut st.waiting);
            drop(st);
            let mut again = Vec::new();
            for (d, tries) in batch {
                match std::fs::remove_dir(&d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // Busy: a task still inside (its monitor is not done), or the container
                    // started again (its next end gives the folder back).
                    Err(_) if tries + 1 < TRIES => again.push((d, tries + 1)),
                    Err(e) => tracing::debug!("memory cgroup {} stays: {e}", d.display()),
                }
            }
            st = match self.state.lock() {
                Ok(s) => s,
                Err(_) => return,
            };
            let retry = !again.is_empty();
            st.waiting.extend(again);
            if st.waiting.is_empty() {
                let _ = std::fs::remove_file(&self.list);
            } else {
                // What still waits (retries, and folders given meanwhile), not every folder
                // ever given: under steady churn the queue is never empty.
                let text: String = st
                    .waiting
                    .iter()
                    .map(|(d, _)| format!("{}\n", d.display()))
                    .collect();
                let _ = berth_core::atomic::write_atomic_unflushed(&self.list, text.as_bytes());
                if retry {
                    st.last_activity = Instant::now();
                }
            }
        }
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
}
