//! berth-image: the image store.
//!
//! Layout under the store root (`<data-root>/image`):
//! - `blobs/sha256/<hex>`: image config blobs; the image ID is the sha256 of these exact bytes;
//! - `imagedb/<hex>.json`: the per-image record (diff_ids, chain ids, parent, created, size,
//!   repo digests); an image exists exactly when its record does;
//! - `layers/<chain hex>/{diff_id,size,parent,cache-id,tar-split}`: a layer, like Docker's
//!   layerdb; the storage driver's layer of the same name (the cache-id) holds its content, so
//!   identical layers are shared; they are refcounted by the image records that list them.
//!   `tar-split` rebuilds the layer's exact tar from the unpacked files (see `split`); data
//!   roots written before it, and drivers without a diff folder, keep `layer.tar` instead;
//! - `repositories.json`: tags (`busybox:latest` → image ID), in Docker's format;
//! - `tmp/`: spools of running loads (wiped at open).
//!
//! Every file is written atomically (temp, fsync, rename, fsync folder); a layer folder is
//! renamed into place only when its content was applied and its diff_id verified; an image is
//! recorded only after all its layers, a tag only after its image. At open, temp files,
//! unreferenced layers and storage layers without a record (a crash mid-apply) are removed.
//! Operations: [`load`](ImageStore::load), [`save`](ImageStore::save),
//! [`import`](ImageStore::import), [`commit`](ImageStore::commit), listing with filters,
//! history, tagging, [`remove`](ImageStore::remove) (rmi), [`prune`](ImageStore::prune) and
//! [`disk_usage`](ImageStore::disk_usage).

mod commit;
mod copy;
mod error;
mod fsutil;
pub(crate) mod layers;
pub mod list;
pub mod load;
mod members;
mod pending;
mod remove;
pub mod save;
mod split;
mod store;
pub mod tags;

pub use commit::{default_container_config, CommitOpts, EMPTY_LAYER_DIFF_ID};
pub use error::ImageError;
pub use list::{HistoryItem, ListFilter};
pub use pending::{Begun, NewLayer};
pub use remove::{DeleteItem, ImageUsage, NoContainers, PruneReport};
pub use split::rebuild::{layer_read_error, LayerTar};
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
