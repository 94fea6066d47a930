//! The services' error: what went wrong in the daemon's domain (containers, images, networks,
//! volumes, builds), in terms every front end maps to its own codes. Only `server/` knows the
//! HTTP status each kind becomes ([`crate::server::http::ApiError`]'s `From`); the domain
//! folders never name HTTP.

use berth_core::DriverError;

/// A service call's failure.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The object asked for does not exist (`No such container: x`).
    #[error("{0}")]
    NotFound(String),
    /// The object's state forbids the call (name in use, container running, ...).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong (bad name, bad option, bad config).
    #[error("{0}")]
    InvalidInput(String),
    /// Nothing to do: the object is already as asked (start of a running container).
    #[error("not modified")]
    NotModified,
    #[allow(dead_code)] // no service refuses by policy yet; the kind is part of the contract
    /// Not allowed here (a privileged operation refused by policy).
    #[error("{0}")]
    Forbidden(String),
    /// A storage, network, registry or runtime driver failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// Anything else: a bug or a host failure.
    #[error("{0}")]
    Internal(String),
}

/// A service call's result.
#[allow(dead_code)] // adopted file by file as the handlers thin out
pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// [`ServiceError::InvalidInput`].
    pub fn bad_request(m: impl Into<String>) -> Self {
        ServiceError::InvalidInput(m.into())
    }
    /// [`ServiceError::NotFound`].
    pub fn not_found(m: impl Into<String>) -> Self {
        ServiceError::NotFound(m.into())
    }
    /// [`ServiceError::Conflict`].
    pub fn conflict(m: impl Into<String>) -> Self {
        ServiceError::Conflict(m.into())
    }
    /// [`ServiceError::Forbidden`].
    #[allow(dead_code)]
    pub fn forbidden(m: impl Into<String>) -> Self {
        ServiceError::Forbidden(m.into())
    }
    /// [`ServiceError::Internal`].
    pub fn internal(m: impl Into<String>) -> Self {
        ServiceError::Internal(m.into())
    }
    /// Whether the failure is the daemon's or the host's rather than the caller's (what an
    /// HTTP front end answers with a 5xx).
    pub fn is_server_side(&self) -> bool {
        match self {
            ServiceError::Internal(_) => true,
            ServiceError::Driver(d) => matches!(
                d,
                DriverError::Io(_) | DriverError::Internal(_) | DriverError::Unsupported(_)
            ),
            _ => false,
        }
    }
    /// [`ServiceError::NotModified`].
    pub fn not_modified() -> Self {
        ServiceError::NotModified
    }
}

impl From<tokio::task::JoinError> for ServiceError {
    fn from(e: tokio::task::JoinError) -> Self {
        ServiceError::Internal(format!("internal task failed: {e}"))
    }
}
