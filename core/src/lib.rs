//! berth-core: the domain types and the driver traits every other berth crate speaks.
//!
//! This crate is deliberately small and synchronous. It knows nothing of tokio, HTTP or FFI:
//! drivers (storage, network, registry, isolation runtime) implement these traits, the
//! `berth-plugins` crate carries them across the dynamic-library boundary, and the daemon
//! calls them off its async runtime. Errors are typed ([`DriverError`]) and serialisable so
//! that they survive the plugin ABI unchanged. [`atomic`] is the one way every store and
//! driver replaces a file on disk (unique temp name, fsync, rename, fsync of the folder).

pub mod atomic;
pub mod digest;
pub mod duration;
pub mod error;
pub mod json;
pub mod mount;
pub mod mountns;
pub mod netns;
pub mod network;
pub mod nofile;
pub mod reference;
pub mod registry;
pub mod runtime;
pub mod sched;
pub mod stage;
pub mod storage;
pub mod stream;

pub use digest::{Digest, DigestError};
pub use error::{DriverError, DriverResult};
pub use network::NetworkDriver;
pub use registry::Registry;
pub use runtime::Runtime;
pub use storage::StorageDriver;

/// The kinds of driver a plugin library can provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Layer storage (`overlay2`, `vfs`, ...).
    Storage,
    /// Container networking (`bridge`, ...).
    Network,
    /// Image distribution (the OCI distribution API client).
    Registry,
    /// Isolation runtime (native namespaces, OCI runtime binaries, ...).
    Runtime,
}

impl DriverKind {
    /// The lower-case name used in configuration files and `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Storage => "storage",
            DriverKind::Network => "network",
            DriverKind::Registry => "registry",
            DriverKind::Runtime => "runtime",
        }
    }
}

impl std::fmt::Display for DriverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
