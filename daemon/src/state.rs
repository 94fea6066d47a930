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
    /// Events.
    pub events: EventBus,
    /// Shutdown signal: long streams (`/events`, logs, stats) end when it fires.
    pub shutdown: crate::server::Shutdown,
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
}
