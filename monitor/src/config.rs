//! The monitor's files in the state folder: their types are the protocol's
//! (`berth-monitor-proto`: `monitor.json`, `state.json`, `exit.json`); this writes them.

pub use berth_monitor_proto::MonitorConfig;

/// Writes `data` to `path` atomically (temp file, rename). No fsync: these files live in the
/// exec-root, run-time state (`/run/berth`, a tmpfs, by default) that must survive a daemon
/// crash, which the page cache does, but not a power loss, after which no container or
/// monitor is left to describe. A flush here would cost the start and exit path ~6 ms each.
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    berth_core::atomic::write_atomic_unflushed(path, data)
}

/// Now, as RFC 3339 with nanoseconds (Docker's format).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
