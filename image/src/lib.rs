//! berth-image: the image store.
//!
//! Layout under the store root (`<data-root>/image`):
//! - `configs/<hex>`: image config blobs; the image ID is the sha256 of these exact bytes;
//! - `layers/<chain-hex>.json`: a layer's diff_id, parent chain id and size — the storage
//!   driver's layer of the same name holds its content, so identical layers are shared;
//! - `meta/<hex>.json`: per-image extras (parent image for build/commit, repo digests);
//! - `repositories.json`: tags (`busybox:latest` → image ID).
//!
//! Every file is written atomically (temp, fsync, rename). A layer is recorded only after its
//! content was applied and its diff_id verified; an image only after all its layers; a tag
//! only after its image. At open, storage layers without a record (a crash mid-apply) and temp
//! files are removed. Operations: [`load`], [`save`], [`import`](ImageStore::import),
//! [`commit`](ImageStore::commit), listing, tagging, deleting.

mod error;
mod fsutil;
mod layers;
pub mod load;
pub mod save;
mod store;

pub use error::ImageError;
pub use store::{Image, ImageStore, LayerRecord};

/// Docker's media types.
pub mod media {
    /// Docker schema2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker layer (gzip).
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// OCI manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI layer, uncompressed.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI layer, gzip.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
}

/// The chain ID of a layer: its diff_id for the bottom layer, else sha256 of
/// `"<parent chain id> <diff_id>"`.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => berth_core::Digest::of(format!("{p} {diff_id}").as_bytes()).to_string(),
    }
}

/// The chain IDs of a list of diff_ids.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = chain_id(out.last().map(String::as_str), d);
        out.push(c);
    }
    out
}

/// The storage-driver layer id of a chain id (the hex part).
pub fn storage_id(chain: &str) -> String {
    chain.strip_prefix("sha256:").unwrap_or(chain).to_string()
}
