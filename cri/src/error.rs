//! The CRI server's error: what a backend call or the server itself failed with, and the gRPC
//! status each kind becomes (kubelet and crictl read the code: `NotFound` for a missing pod or
//! container, `Unimplemented` for what berth does not do yet).

use tonic::{Code, Status};

/// A CRI call's failure.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The object asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (bad reference, missing field).
    #[error("{0}")]
    InvalidArgument(String),
    /// The object's state forbids the call (image in use, container running, name taken).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The registry refused the credentials or the access.
    #[error("{0}")]
    Unauthenticated(String),
    /// The call took longer than the request allowed.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A CRI call berth does not implement yet.
    #[error("{0} is not implemented by berth yet")]
    Unimplemented(&'static str),
    /// A daemon, driver or host failure.
    #[error("{0}")]
    Internal(String),
    /// The socket could not be prepared or bound.
    #[error("CRI socket {path}: {source}")]
    Socket {
        /// The socket's path.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("CRI server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl CriError {
    /// [`CriError::Internal`] from anything printable.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        CriError::Internal(e.to_string())
    }
}

impl From<CriError> for Status {
    fn from(e: CriError) -> Self {
        let code = match &e {
            CriError::NotFound(_) => Code::NotFound,
            CriError::InvalidArgument(_) => Code::InvalidArgument,
            CriError::FailedPrecondition(_) => Code::FailedPrecondition,
            CriError::Unauthenticated(_) => Code::Unauthenticated,
            CriError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            CriError::Unimplemented(_) => Code::Unimplemented,
            CriError::Internal(_) | CriError::Socket { .. } | CriError::Transport(_) => {
                Code::Internal
            }
        };
        Status::new(code, e.to_string())
    }
}

/// A CRI call's result.
pub type CriResult<T> = Result<T, CriError>;
