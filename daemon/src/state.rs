//! The daemon's shared state: configuration, drivers, stores and the event bus.

use crate::config::Config;
use crate::events::EventBus;
use berth_core::{NetworkDriver, StorageDriver};
use berth_plugins::PluginInfo;
use std::sync::Arc;
use std::time::Instant;

/// Shared handle passed to every handler.
pub type Ctx = Arc<Daemon>;

/// Everything the API handlers work with.
///
/// Extension point: an area (images, containers, networks, volumes, build, ...) adds ONE
/// field for its store/manager at the end of this struct, initialises it in `main.rs`'s
/// `serve` (after the data-root lock is held, before the listeners start) and registers its
/// routes in `api/mod.rs`. Rules for the fields: they are shared by every request (use
/// interior locking), blocking work (disk, drivers) goes through
/// `tokio::task::spawn_blocking`, events go to [`Daemon::events`], and long streams end when
/// [`Daemon::shutdown`] fires.
pub struct Daemon {
    /// Effective configuration.
    pub config: Config,
    /// The storage driver (a plugin).
    pub storage: Arc<dyn StorageDriver>,
    /// The bridge network driver, when loaded.
    pub network: Option<Arc<dyn NetworkDriver>>,
    /// The registry client.
    pub registry: Arc<dyn berth_core::Registry>,
    /// Loaded plugins, for `info`.
    pub plugins: Vec<PluginInfo>,
    /// The isolation runtimes, by name (`crate::runtimes`).
    pub runtimes: crate::runtimes::Runtimes,
    /// Events.
    pub events: EventBus,
    /// Shutdown signal: long streams (`/events`, logs, stats) end when it fires.
    pub shutdown: crate::shutdown::Shutdown,
    /// When the daemon started.
    pub started_at: Instant,
    /// The persistent daemon ID.
    pub id: String,
    /// Images.
    pub images: berth_image::ImageStore,
    /// Containers.
    pub containers: crate::containers::Containers,
    /// Volumes.
    pub volumes: crate::volumes::Volumes,
    /// Networks (the store; kernel work goes through `network`).
    pub networks: crate::network::Networks,
}
