//! `monitor.json`, `state.json` and `exit.json` (see PROTOCOL.md), with atomic writes.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What berthd writes before spawning us.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MonitorConfig {
    pub id: String,
    pub bundle: String,
    /// The runtime plugin to drive (see `crate::runtimes`).
    pub runtime: berth_plugins::RuntimeChoice,
    #[serde(default)]
    pub rootfs_mounts: Vec<berth_core::storage::Mount>,
    pub log_path: Option<String>,
    /// json-file `max-size`: bytes a log file holds before it is rotated (none: never).
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// json-file `max-file`: how many log files are kept, the one written included.
    #[serde(default)]
    pub log_max_file: Option<u32>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub console_size: Option<[u16; 2]>,
    /// Where to write the init's host pid (optional).
    #[serde(default)]
    pub pid_file: Option<String>,
}

/// What we record at exit.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ExitInfo {
    pub exit_code: i32,
    pub oom_killed: bool,
    pub finished_at: String,
    pub error: String,
}

/// Writes `data` to `path` atomically (temp file, rename). No fsync: these files live in the
/// exec-root, run-time state (`/run/berth`, a tmpfs, by default) that must survive a daemon
/// crash, which the page cache does, but not a power loss, after which no container or
/// monitor is left to describe. A flush here would cost the start and exit path ~6 ms each.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    berth_core::atomic::write_atomic_unflushed(path, data)
}

/// Now, as RFC 3339 with nanoseconds (Docker's format).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
