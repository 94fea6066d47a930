//! The image store's errors.

use berth_core::DriverError;

/// What went wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No such image (Docker's text).
    #[error("No such image: {0}")]
    NotFound(String),
    /// The reference is malformed.
    #[error("{0}")]
    Reference(String),
    /// Refused because of other objects (tags, containers).
    #[error("{0}")]
    Conflict(String),
    /// Bad archive or image content.
    #[error("{0}")]
    Invalid(String),
    /// A digest did not match.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    Digest {
        /// What was checked.
        what: String,
        /// Expected.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// A recorded layer's tar can no longer be rebuilt byte for byte (its unpacked files
    /// changed on disk since it was unpacked, or its split record is damaged): nothing wrong
    /// is served.
    #[error("layer {chain} cannot be reproduced exactly: {reason}")]
    LayerChanged {
        /// The layer's chain id.
        chain: String,
        /// What differs.
        reason: String,
    },
    /// The storage driver failed.
    #[error("{0}")]
    Driver(#[from] DriverError),
    /// A file-system error.
    #[error("{context}: {source}")]
    Io {
        /// What was done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }
}

impl From<ImageError> for DriverError {
    fn from(e: ImageError) -> DriverError {
        match e {
            ImageError::NotFound(_) => DriverError::NotFound(e.to_string()),
            ImageError::Reference(_) | ImageError::Invalid(_) | ImageError::Digest { .. } => {
                DriverError::InvalidInput(e.to_string())
            }
            ImageError::Conflict(_) => DriverError::Conflict(e.to_string()),
            ImageError::Driver(d) => d,
            ImageError::Io { .. } | ImageError::LayerChanged { .. } => {
                DriverError::Io(e.to_string())
            }
        }
    }
}
