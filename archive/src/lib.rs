//! berth-archive: the layer tar streams every storage driver and the image store share.
//!
//! - [`compression`]: sniff gzip / zstd / plain and decompress while streaming;
//! - [`apply`]: unpack a layer tar into a folder safely — whiteouts as the driver wants them
//!   (deleted files for `vfs`, 0/0 character devices and opaque xattrs for overlayfs), hard
//!   links, symlinks, devices, fifos, owners, modes, times, xattrs — every entry resolved
//!   inside the destination through a [`berth_confine::Root`], refusing path traversal,
//!   escaping links and tar bombs; [`extract`] unpacks a plain tar (`docker cp`) the same way,
//!   [`extract_in`] into a root the caller opened (a folder inside a container);
//! - [`diff`]: write the changes of a layer as a tar with `.wh.` whiteouts, from an overlay
//!   upper folder or by comparing a folder with its parent, and list them (`docker diff`);
//!   [`write_tree`] / [`write_tree_in`] archive one file or folder under a chosen name
//!   (`docker cp`); all of them walk through descriptors, never following a symlink;
//! - [`digest`]: sha256 while reading or writing, for diff_ids and blob digests.
//!
//! Everything streams: no layer is ever held in memory.

pub mod apply;
pub mod compression;
pub mod diff;
pub mod digest;

pub use apply::{
    apply_layer, apply_layer_in, entry_path, extract, extract_in, ApplyOptions, ApplyStats,
    ExtractOptions, Whiteouts,
};
pub use compression::{decompress, Compression};
pub use diff::{
    changes_between, changes_overlay, write_diff_between, write_diff_overlay, write_tree,
    write_tree_in,
};
pub use digest::{DigestReader, DigestWriter};

/// What went wrong with a layer stream.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry tries to leave the layer's root.
    #[error("refusing layer entry {entry:?}: {reason}")]
    Unsafe {
        /// The entry's path as written in the tar.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The uncompressed content exceeds the configured limit.
    #[error("layer is larger than the configured limit of {limit} bytes (tar bomb?)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The tar stream is malformed or truncated.
    #[error("invalid tar stream: {0}")]
    Tar(String),
    /// An operation inside the destination or source root failed.
    #[error(transparent)]
    Confine(#[from] berth_confine::ConfineError),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl ArchiveError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ArchiveError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The whiteout prefix.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The opaque-folder marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
