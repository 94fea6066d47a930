//! The monitor's run-time records in the state folder: `state.json` (written once the
//! container is created) and `exit.json` (written once its init is reaped).

use serde::{Deserialize, Serialize};

/// `state.json`: who supervises which process, since when.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StateFile {
    /// The monitor's pid.
    pub monitor_pid: u32,
    /// The container's init, as a host pid.
    pub pid: i32,
    /// When the container was created (RFC 3339 with nanoseconds).
    pub started_at: String,
    /// The protocol version the monitor speaks (absent: 1, a monitor older than the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// `exit.json`, and the reply to `wait`: how the container's init ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ExitRecord {
    /// The init's exit status (128 + the signal when a signal killed it). An init that could
    /// not run its command exits 127 (not found) or 126 (not executable), as Docker's.
    #[serde(default)]
    pub exit_code: i32,
    /// The kernel's OOM killer killed a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
    /// When the exit was seen (RFC 3339 with nanoseconds).
    #[serde(default)]
    pub finished_at: String,
    /// Why the init never ran its command (the start's failure text), or empty.
    #[serde(default)]
    pub error: String,
}

impl ExitRecord {
    /// The record berthd makes up when a monitor vanished without writing one.
    pub fn vanished(exit_code: i32, error: impl Into<String>) -> Self {
        ExitRecord {
            exit_code,
            error: error.into(),
            ..Default::default()
        }
    }

    /// The start failure this record tells of: none when the init ran (or was killed before
    /// it was released); the exit code is a typed one (126/127) when the command could not be
    /// executed.
    pub fn start_failure(&self) -> Option<crate::Failure> {
        if self.error.is_empty() {
            return None;
        }
        Some(crate::Failure {
            error: self.error.clone(),
            exit_code: matches!(self.exit_code, 126 | 127).then_some(self.exit_code),
        })
    }
}
