//! Containers: the store (`<data-root>/containers/<id>/config.v2.json`, written atomically),
//! their state machine, and the bookkeeping that connects the API to each container's monitor.
//!
//! The record is typed ([`ContainerRecord`]: Docker's inspect shape plus berth's own
//! bookkeeping), so inspect and list answer what clients expect and every state change goes
//! through `ContainerState`'s transitions; the submodules do the work: [`create`] (config
//! merge, rw layer), [`start`] (bundle, spec, monitor, network), [`exit`] (what happens when a
//! container stops, restart policies, restore after a daemon restart), [`streams`] (attach
//! and logs).

pub mod attach;
pub mod cgroup_parent;
pub mod cgroup_reaper;
pub mod create;
pub mod exec;
pub mod exec_io;
pub mod exit;
mod flush;
mod health;
mod index;
pub mod initlayer;
pub mod kill;
pub mod links;
pub mod lock;
pub mod logconfig;
mod logfiles;
pub mod monitor_client;
pub mod monitor_exe;
pub mod mount_template;
pub mod names;
pub mod pause;
pub mod prestart;
pub mod remove;
pub mod rename;
pub mod restart;
pub mod signal;
pub mod small_table;
pub mod spawner;
pub mod start;
pub mod stop;
pub mod streams;
mod teardown;
pub mod update;
pub mod validate;
pub mod wait;

use crate::config::Config;
use crate::error::ServiceError;
pub use crate::model::container::ContainerRecord;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// One container.
pub struct Container {
    /// 64-hex id.
    pub id: String,
    /// The persisted record (Docker's inspect shape, minus derived fields).
    rec: Mutex<ContainerRecord>,
    /// Bumped on every exit and on removal; waiters watch it.
    pub events: watch::Sender<Lifecycle>,
    /// Attach sessions waiting for `start`.
    pub pending: Mutex<Vec<streams::PendingAttach>>,
    /// Serialises the verbs that change the container's state (see [`lock`] for the rules).
    pub op: tokio::sync::Mutex<()>,
    /// True while a stop holding `op` waits for the container's exit: `kill` and `rm -f` then
    /// signal alongside it instead of waiting for the lock ([`lock::op_or_stopping`]).
    pub stopping: watch::Sender<bool>,
    /// The init's PID while the container is prepared ahead of its start ([`prestart`]);
    /// held while the preparation runs. Taken after `op` when both are needed.
    pub prep: Arc<tokio::sync::Mutex<Option<i32>>>,
    /// The rootfs of the last run, detached at its exit and not yet let go (its flush;
    /// [`teardown`]): the next start lets go of it first.
    detached: Mutex<Option<teardown::Detached>>,
    /// Set when the monitor has reported an exit; finishes once that monitor is gone, its
    /// clean-up of cgroups and mounts over (see [`Container::monitor_gone`]).
    pub monitor_exit: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Its health prober, while one runs ([`health`]).
    health: health::Slot,
}

/// What waiters see.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// Number of exits so far.
    pub exits: u64,
    /// Last exit code.
    pub exit_code: i64,
    /// Removed.
    pub removed: bool,
    /// Running now.
    pub running: bool,
    /// An exit is being recorded ([`exit::on_exit`]): the record may already say stopped
    /// while networks, rootfs and AutoRemove are still being dealt with.
    pub exiting: bool,
    /// `rm -f` killed it and removes it once the exit is recorded (the record on disk is
    /// not rewritten for that exit).
    pub removing: bool,
    /// Its restart policy will start it again after [`Lifecycle::restart_delay`] (a stop
    /// or removal meanwhile cancels that).
    pub restart_pending: bool,
    /// The back-off before the last restart (Docker's restart manager; see
    /// [`restart::backoff`]).
    pub restart_delay: std::time::Duration,
}

/// All containers.
pub struct Containers {
    pub root: PathBuf,
    pub exec_root: PathBuf,
    /// By id and by name ([`index`]).
    index: RwLock<index::Index>,
    pub execs: Mutex<HashMap<String, crate::model::exec::ExecRecord>>,
    /// Containers prepared ahead of their start, or being prepared ([`prestart`]).
    pub prepared: std::sync::atomic::AtomicUsize,
    /// Spawns the containers' monitors, one ahead of need.
    pub spawner: spawner::Spawner,
    /// The mount namespace monitors create containers from (none: berthd's own).
    pub mount_template: Option<mount_template::MountTemplate>,
    /// Removes exited containers' memory cgroups when no container is starting.
    pub reaper: cgroup_reaper::Reaper,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A zero time as Docker writes it.
pub use berth_api::types::container_state::ZERO_TIME;

impl Container {
    fn new(id: String, rec: ContainerRecord) -> Arc<Container> {
        let (tx, _) = watch::channel(Lifecycle {
            running: rec.state.running && !rec.state.restarting,
            ..Default::default()
        });
        Arc::new(Container {
            id,
            rec: Mutex::new(rec),
            events: tx,
            pending: Mutex::new(Vec::new()),
            op: tokio::sync::Mutex::new(()),
            stopping: watch::channel(false).0,
            prep: Arc::new(tokio::sync::Mutex::new(None)),
            monitor_exit: Mutex::new(None),
            detached: Mutex::new(None),
            health: health::Slot::default(),
        })
    }

    /// Waits until the monitor of the last run has finished cleaning up after the exit it
    /// reported: a new start (same cgroup path) or the removal of the rw layer must not race
    /// it.
    pub async fn monitor_gone(&self) {
        let h = self.monitor_exit.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = h {
            let _ = h.await;
        }
    }

    /// The record, locked (a panic while it was held leaves it as it was: each change is
    /// one closure, and a half-done one is still a record).
    fn locked(&self) -> std::sync::MutexGuard<'_, ContainerRecord> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the record.
    pub fn record(&self) -> ContainerRecord {
        self.locked().clone()
    }

    /// `f` of the record, read in place (no copy; keep `f` short, the record is locked).
    pub fn view<T>(&self, f: impl FnOnce(&ContainerRecord) -> T) -> T {
        f(&self.locked())
    }

    /// The name without its leading `/`.
    pub fn name(&self) -> String {
        self.view(|r| r.short_name().to_string())
    }

    /// Whether it runs.
    pub fn running(&self) -> bool {
        // Docker shows a container waiting to restart as `Running`; it has no process.
        self.view(|r| r.state.running && !r.state.restarting)
    }

    /// Whether it is paused.
    pub fn paused(&self) -> bool {
        self.view(|r| r.state.paused)
    }

    /// Its init's host PID (0 if not running).
    pub fn pid(&self) -> i64 {
        self.view(|r| r.state.pid)
    }

    /// Whether it has a TTY.
    pub fn tty(&self) -> bool {
        self.view(|r| r.config.tty)
    }

    /// Changes the record; returns what `f` returns.
    pub fn update<T>(&self, f: impl FnOnce(&mut ContainerRecord) -> T) -> T {
        f(&mut self.locked())
    }
}

impl Containers {
    /// Opens the store and loads every record.
    pub fn open(cfg: &Config) -> anyhow::Result<Containers> {
        let root = cfg.data_root.join("containers");
        let exec_root = cfg.exec_root.join("containers");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&exec_root)?;
        let mut map = index::Index::default();
        for e in std::fs::read_dir(&root)?.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if id.starts_with('.') {
                // A removed container's tombstone (`teardown::bury`), purged by `restore`.
                continue;
            }
            berth_core::atomic::clean_temps(&e.path());
            match std::fs::read(e.path().join("config.v2.json"))
                .ok()
                .and_then(|b| crate::model::migrate::parse::<ContainerRecord>(&b).ok())
            {
                Some(rec) => {
                    map.insert(Container::new(id, rec));
                }
                None => tracing::warn!(
                    "container folder {} has no readable record; ignoring",
                    e.path().display()
                ),
            }
        }
        let mount_template =
            mount_template::MountTemplate::make(&exec_root, &cfg.exec_root.join("shared"))
                .inspect_err(|e| tracing::warn!("no template mount namespace: {e}"))
                .ok();
        Ok(Containers {
            root,
            exec_root,
            index: RwLock::new(map),
            execs: Mutex::new(HashMap::new()),
            prepared: std::sync::atomic::AtomicUsize::new(0),
            spawner: spawner::Spawner::new(),
            mount_template,
            reaper: cgroup_reaper::Reaper::start(
                cfg.exec_root.join("cgroups-to-remove"),
                Path::new("/sys/fs/cgroup"),
            ),
        })
    }

    /// (running, paused, stopped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let all = self.all();
        let paused = all.iter().filter(|c| c.paused()).count();
        let running = all.iter().filter(|c| c.running()).count();
        (running - paused.min(running), paused, all.len() - running)
    }

    /// Every container.
    pub fn all(&self) -> Vec<Arc<Container>> {
        self.read().all()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, index::Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, index::Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Finds by full id, name, or unique id prefix; Docker's 404 text otherwise.
    pub fn get(&self, key: &str) -> Result<Arc<Container>, ServiceError> {
        let found = self.read().get(key);
        match found {
            index::Found::One(c) => Ok(c),
            index::Found::None => {
                let name = key.trim_start_matches('/');
                // A link's name (`parent/alias`) names its target, as with dockerd.
                match name
                    .contains('/')
                    .then(|| links::target_of(self, name))
                    .flatten()
                {
                    Some(t) if !t.contains('/') => self.get(&t),
                    _ => Err(ServiceError::not_found(format!("No such container: {key}"))),
                }
            }
            index::Found::Ambiguous => Err(ServiceError::bad_request(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    /// Reserves `name` (without its `/`) for the container `id` (created next, or renamed);
    /// Docker's conflict when another container holds it.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), ServiceError> {
        self.write()
            .reserve(name, id)
            .map_err(|holder| names::conflict(name, &holder))
    }

    /// Frees `name` if the container `id` holds it (a create that failed).
    pub fn release_name(&self, name: &str, id: &str) {
        self.write().release(name, id);
    }

    /// Renames `c` to `new` (without its `/`): reserved, recorded and the old name freed at
    /// once, so no other container can take either name in between.
    pub fn rename(&self, c: &Container, new: &str) -> Result<(), ServiceError> {
        let mut index = self.write();
        index
            .reserve(new, &c.id)
            .map_err(|holder| names::conflict(new, &holder))?;
        let old = c.name();
        c.update(|r| r.name = format!("/{new}"));
        if old != new {
            index.release(&old, &c.id);
        }
        Ok(())
    }

    /// Adds a container; its name was reserved for it ([`Containers::reserve_name`]).
    pub fn insert(&self, c: Arc<Container>) {
        self.write().insert(c);
    }

    /// The ids of the containers whose mounts use volume `name` (from the index).
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.read().volume_users(name)
    }

    /// Forgets a container and frees its name.
    pub fn forget(&self, id: &str) {
        self.write().remove(id);
    }

    /// The folder of a container's persistent files.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The folder of a container's run-time state (monitor socket, bundle). Named by the
    /// first 24 hex digits of the id so `monitor.sock` stays within the 108-byte limit of
    /// unix socket paths even under long exec roots.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join(&id[..id.len().min(24)])
    }

    /// The container's monitor socket (monitor/PROTOCOL.md).
    pub fn monitor_sock(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("monitor.sock")
    }

    /// Writes a container's record atomically; it is made durable in the background
    /// ([`flush`]).
    ///
    /// The folder must exist (made at create): a record saved while the container is being
    /// removed — an exit recorded at the same time — cannot bring its folder back.
    pub fn save(&self, c: &Container) -> Result<(), ServiceError> {
        if c.events.borrow().removed {
            return Ok(());
        }
        let dir = self.dir(&c.id);
        let bytes = c
            .view(serde_json::to_vec)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        let path = dir.join("config.v2.json");
        berth_core::atomic::write_atomic_unflushed(&path, &bytes)
            .map_err(|e| ServiceError::internal(format!("saving container {}: {e}", c.id)))?;
        flush::later(path);
        Ok(())
    }

    /// Ids of containers whose image is `image_id`.
    pub fn using_image(&self, image_id: &str) -> Vec<String> {
        self.all()
            .iter()
            .filter(|c| c.view(|r| r.image == image_id))
            .map(|c| c.id.clone())
            .collect()
    }
}

/// Current time in Docker's format.
pub fn timestamp() -> String {
    now()
}

/// Whether berthd, not the runtime, removes the container's memory cgroup folder
/// ([`cgroup_reaper`]): for containers under the default parent (`berth/`) only, whose
/// folders berthd knows by name.
pub fn defers_memory_cgroup(rec: &ContainerRecord) -> bool {
    let default = berth_runtime::cgroups::default_path(&rec.inspect.id);
    rec.pod.is_none() && rec.cgroup_path().trim_matches('/') == default.trim_matches('/')
}

/// Container `c`'s cgroup in the host's hierarchy (cgroupfs driver), at the path its record
/// keeps ([`cgroup_parent`]).
pub fn cgroup(c: &Container) -> berth_runtime::cgroups::Cgroup {
    // The host's layout does not change while berthd runs: probed once (a read of
    // `/proc/self/cgroup` and a statfs per hierarchy), not at every start and exit.
    static HOST: std::sync::OnceLock<berth_runtime::cgroups::Hierarchy> =
        std::sync::OnceLock::new();
    let hierarchy = HOST.get_or_init(berth_runtime::cgroups::Hierarchy::detect);
    berth_runtime::cgroups::Cgroup::new(hierarchy.clone(), &c.view(|r| r.cgroup_path()))
}
