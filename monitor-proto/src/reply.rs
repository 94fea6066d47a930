//! The monitor's answers: the reply line to a request, and the ready line of its start-up.
//!
//! On the wire both are one flat object keyed by `ok` (`{"ok":true,...}` or
//! `{"ok":false,"error":...,"exit_code":...}`), the shape version 1 had; the types convert
//! through a private wire struct, so a reply that says `ok` but lacks what its kind needs is
//! a decode error rather than a default.

use serde::{Deserialize, Serialize};

/// A request failed: why, and — when it was a start whose command could not be executed —
/// the exit code Docker records for that (127 not found, 126 not executable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong, as the API shows it (`exec: "nope": executable file not found in $PATH`).
    pub error: String,
    /// The container's exit code for a command that could not be executed; none for any
    /// other failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Failure {
    /// A failure without an exit code.
    pub fn new(error: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            exit_code: None,
        }
    }
}

impl From<&berth_core::DriverError> for Failure {
    /// A runtime's error: one for a command that cannot be executed keeps its exit code.
    fn from(e: &berth_core::DriverError) -> Self {
        match e {
            berth_core::DriverError::Exec { code, message } => Failure {
                error: message.clone(),
                exit_code: Some(*code),
            },
            other => Failure::new(other.to_string()),
        }
    }
}

impl From<crate::ProtoError> for Failure {
    fn from(e: crate::ProtoError) -> Self {
        Failure::new(e.to_string())
    }
}

/// Whether the container's processes run or are frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Running.
    Running,
    /// Frozen (`pause`).
    Paused,
}

/// The reply line to a [`crate::Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub enum Reply {
    /// Done (`{"ok":true}`).
    Ok,
    /// The answer to `state`.
    State {
        /// The init's host pid.
        pid: i32,
        /// Running or paused.
        status: RunStatus,
    },
    /// Not done.
    Failure(Failure),
}

impl Reply {
    /// A failure without an exit code.
    pub fn failure(error: impl Into<String>) -> Self {
        Reply::Failure(Failure::new(error))
    }

    /// The reply as a result: `Ok` and `State` are successes.
    pub fn into_result(self) -> Result<Reply, Failure> {
        match self {
            Reply::Failure(f) => Err(f),
            other => Ok(other),
        }
    }
}

/// The one line a monitor writes to its ready descriptor at the end of its start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub enum Ready {
    /// The container is created, its init waits for `start`.
    Ready {
        /// The init's host pid.
        pid: i32,
        /// The monitor's pid.
        monitor_pid: u32,
    },
    /// The container could not be created; the monitor cleaned up and exits.
    Failed(Failure),
}

/// Both lines' shape on the wire.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Wire {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monitor_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<RunStatus>,
}

impl Wire {
    fn failed(f: Failure) -> Wire {
        Wire {
            ok: false,
            error: Some(f.error),
            exit_code: f.exit_code,
            ..Default::default()
        }
    }

    /// The failure a `{"ok":false}` line tells of.
    fn failure(&self) -> Failure {
        Failure {
            error: self
                .error
                .clone()
                .unwrap_or_else(|| "unknown error".to_string()),
            exit_code: self.exit_code,
        }
    }
}

impl From<Reply> for Wire {
    fn from(r: Reply) -> Wire {
        match r {
            Reply::Ok => Wire {
                ok: true,
                ..Default::default()
            },
            Reply::State { pid, status } => Wire {
                ok: true,
                pid: Some(pid),
                status: Some(status),
                ..Default::default()
            },
            Reply::Failure(f) => Wire::failed(f),
        }
    }
}

impl TryFrom<Wire> for Reply {
    type Error = String;
    fn try_from(w: Wire) -> Result<Reply, String> {
        Ok(match (w.ok, w.pid, w.status) {
            (false, _, _) => Reply::Failure(w.failure()),
            (true, Some(pid), Some(status)) => Reply::State { pid, status },
            (true, None, Some(_)) => return Err("a state reply without its pid".into()),
            (true, _, None) => Reply::Ok,
        })
    }
}

impl From<Ready> for Wire {
    fn from(r: Ready) -> Wire {
        match r {
            Ready::Ready { pid, monitor_pid } => Wire {
                ok: true,
                pid: Some(pid),
                monitor_pid: Some(monitor_pid),
                ..Default::default()
            },
            Ready::Failed(f) => Wire::failed(f),
        }
    }
}

impl TryFrom<Wire> for Ready {
    type Error = String;
    fn try_from(w: Wire) -> Result<Ready, String> {
        match (w.ok, w.pid, w.monitor_pid) {
            (false, _, _) => Ok(Ready::Failed(w.failure())),
            (true, Some(pid), Some(monitor_pid)) => Ok(Ready::Ready { pid, monitor_pid }),
            (true, _, _) => Err("a ready line without the pids".into()),
        }
    }
}
