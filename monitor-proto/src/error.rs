//! Why a protocol message could not be read.

/// A message that could not be decoded or encoded, or a version this side does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// Not JSON, or not the message's shape (a missing field, a wrong type).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The line is longer than [`crate::MAX_LINE`] (or its end never came).
    #[error("message too long ({len} bytes, at most {} allowed)", crate::MAX_LINE)]
    TooLong {
        /// Bytes seen.
        len: usize,
    },
    /// A request for a command this monitor does not know.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// A request in a protocol version this monitor does not speak.
    #[error(
        "unsupported protocol version {got} (this monitor speaks 1 to {})",
        crate::PROTOCOL_VERSION
    )]
    Version {
        /// The version the request named.
        got: u32,
    },
    /// A message could not be encoded (not expected for these types).
    #[error("encoding a message: {0}")]
    Encode(String),
}
