//! The registry client's errors, with Docker's wording where users see them.

use berth_core::DriverError;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The host could not be reached at all.
    #[error("Get \"{url}\": dial tcp {host}: connect: connection refused")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// host:port.
        host: String,
    },
    /// TLS failed (unknown authority, bad certificate...).
    #[error("Get \"{url}\": tls: failed to verify certificate: {detail}")]
    Tls {
        /// The URL tried.
        url: String,
        /// What the TLS layer said.
        detail: String,
    },
    /// Any other transport error.
    #[error("{0}")]
    Transport(String),
    /// 401 after authenticating (or no credentials given).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403.
    #[error("denied: {0}")]
    Denied(String),
    /// Manifest or blob unknown (404).
    #[error("{0}")]
    NotFound(String),
    /// The registry answered with an unexpected status.
    #[error("unexpected status from {method} request to {url}: {status}")]
    Status {
        /// HTTP method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status line.
        status: String,
    },
    /// Content did not match its digest.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The wanted digest.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// The stream ended before the announced length.
    #[error("unexpected EOF: got {got} of {want} bytes")]
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        want: u64,
    },
    /// A manifest of an unknown media type.
    #[error("unsupported manifest media type: {0}")]
    UnsupportedMediaType(String),
    /// Writing to the destination failed.
    #[error("writing blob: {0}")]
    Io(#[from] std::io::Error),
    /// The registry sent more than berth reads of this kind of answer.
    #[error("{what} is larger than the limit of {}: refusing it", crate::limits::human(*.limit))]
    TooLarge {
        /// What was read ("manifest", "token reply").
        what: &'static str,
        /// The bound, bytes.
        limit: u64,
    },
    /// The registry stopped sending in the middle of an answer.
    #[error("reading {what}: the registry sent nothing for {secs} s")]
    Stalled {
        /// What was being read.
        what: String,
        /// The idle time allowed, seconds.
        secs: u64,
    },
    /// The client configuration is wrong.
    #[error("{0}")]
    Config(String),
}

impl From<RegistryError> for DriverError {
    fn from(e: RegistryError) -> Self {
        let msg = e.to_string();
        match e {
            RegistryError::Unauthorized(_) | RegistryError::Denied(_) => {
                DriverError::Unauthorized(msg)
            }
            RegistryError::NotFound(_) => DriverError::NotFound(msg),
            RegistryError::UnsupportedMediaType(_) => DriverError::Unsupported(msg),
            RegistryError::DigestMismatch { .. }
            | RegistryError::Config(_)
            | RegistryError::TooLarge { .. } => DriverError::InvalidInput(msg),
            _ => DriverError::Io(msg),
        }
    }
}
