//! berth-registry-distribution: the default registry plugin (`libberth_registry_distribution.so`,
//! driver `distribution`) — the OCI distribution API client behind `core::Registry`. berthd
//! loads it like the storage and network plugins; it does the wire work (auth, manifests, blob
//! streams, uploads) and berthd verifies diff_ids and unpacks.
//!
//! - [`endpoint`] decides where a registry lives (HTTPS, or plain HTTP for insecure registries:
//!   127.0.0.0/8 and localhost by default, others through `insecure-registries`, as Docker) and
//!   maps `docker.io` to Docker Hub's API host or a configured mirror;
//! - [`auth`] answers `WWW-Authenticate` challenges: basic auth, and bearer tokens fetched from
//!   the realm and cached per repository scope;
//! - [`client`] implements the trait: manifests (Docker schema2, OCI, lists and indexes) and
//!   blobs, streamed and digest-verified, with retries and backoff for idempotent requests;
//!   uploads monolithic or chunked, with cross-repository mounts.
//!
//! - [`limits`] bounds what a registry may send (manifest, token reply and error sizes) and how
//!   long a read may wait for data.
//!
//! Calls are blocking (the daemon runs them on its blocking pool).

pub mod auth;
mod blob;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod limits;
mod plugin;

pub use client::{Client, ClientConfig};
pub use error::RegistryError;

/// Builds the client from the daemon's JSON config
/// (`{"insecure_registries": [...], "registry_mirrors": [...], "certs_dirs": [...]}`).
pub fn new_driver(
    config: &serde_json::Value,
) -> Result<Box<dyn berth_core::Registry>, berth_core::DriverError> {
    let cfg: ClientConfig = serde_json::from_value(config.clone())
        .map_err(|e| berth_core::DriverError::InvalidInput(format!("registry config: {e}")))?;
    Ok(Box::new(
        Client::new(cfg).map_err(berth_core::DriverError::from)?,
    ))
}

/// Media types the client accepts and understands.
pub mod media {
    /// Docker schema2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// OCI manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// All of them, for `Accept`.
    pub const ALL: [&str; 4] = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX];
}
