//! The error type shared by every driver trait.
//!
//! It is a closed, serialisable enum so that an error raised inside a plugin library crosses
//! the ABI as data and comes out the other side as the same variant; the daemon maps the
//! variants onto Docker's HTTP status codes (404, 409, 400, 501, 500).

use serde::{Deserialize, Serialize};

/// Result alias for driver calls.
pub type DriverResult<T> = Result<T, DriverError>;

/// What went wrong inside a driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum DriverError {
    /// The named object (layer, network, endpoint, blob, ...) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is in use or the operation conflicts with its state.
    #[error("{0}")]
    Conflict(String),
    /// The caller passed something malformed or unsafe.
    #[error("{0}")]
    InvalidInput(String),
    /// Credentials were missing or refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The driver does not support this operation or option.
    #[error("{0}")]
    Unsupported(String),
    /// An operating-system or I/O failure, with context.
    #[error("{0}")]
    Io(String),
    /// The driver panicked or broke its contract (reported by the plugin boundary).
    #[error("{0}")]
    Internal(String),
    /// A container's command could not be executed: Docker's exit code for it (127 not
    /// found, 126 not executable) and the reason (`exec: "nope": executable file not found
    /// in $PATH`). A runtime's `create` or `start` returns it; the daemon records the code as
    /// the container's and answers as Docker does for a task that failed to start.
    #[error("{message}")]
    Exec {
        /// The exit code.
        code: i32,
        /// The reason.
        message: String,
    },
}

impl DriverError {
    /// Wraps an I/O error with a short description of what was being done.
    pub fn io(context: impl std::fmt::Display, err: std::io::Error) -> Self {
        DriverError::Io(format!("{context}: {err}"))
    }

    /// The message without the variant.
    pub fn message(&self) -> &str {
        match self {
            DriverError::NotFound(m)
            | DriverError::AlreadyExists(m)
            | DriverError::Conflict(m)
            | DriverError::InvalidInput(m)
            | DriverError::Unauthorized(m)
            | DriverError::Unsupported(m)
            | DriverError::Io(m)
            | DriverError::Internal(m)
            | DriverError::Exec { message: m, .. } => m,
        }
    }
}

impl From<std::io::Error> for DriverError {
    fn from(err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::NotFound => DriverError::NotFound(err.to_string()),
            std::io::ErrorKind::AlreadyExists => DriverError::AlreadyExists(err.to_string()),
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                DriverError::InvalidInput(err.to_string())
            }
            _ => DriverError::Io(err.to_string()),
        }
    }
}
