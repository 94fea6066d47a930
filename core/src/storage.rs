//! The storage driver trait: read-only image layers and a writable layer per container.
//!
//! Vocabulary (as Docker's graph drivers and containerd's snapshotters):
//! - a *layer* has an id chosen by the caller and an optional parent; a layer's filesystem is
//!   its parent's with its own changes on top;
//! - [`StorageDriver::apply_diff`] fills a fresh layer from a tar stream of changes (with
//!   `.wh.` whiteouts), [`StorageDriver::diff`] writes the changes of a layer against its parent
//!   as such a tar stream;
//! - [`StorageDriver::mounts`] *describes* how to mount a layer's full filesystem; the caller
//!   performs the mount (inside the container's mount namespace, or on the host for `cp`,
//!   `export`, `commit`), so drivers never leave mounts behind on their own.

use crate::error::DriverResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// How to create a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOpts {
    /// A writable container layer (true) or an image layer to be filled by `apply_diff` (false).
    pub rw: bool,
    /// Driver-specific options (`size=...`), as Docker's `--storage-opt`.
    #[serde(default)]
    pub storage_opts: BTreeMap<String, String>,
}

/// One mount to perform, as `mount(2)` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Filesystem type: `overlay`, `bind`, `tmpfs`, ...
    pub fstype: String,
    /// Source device or folder (`overlay` for overlayfs).
    pub source: String,
    /// Mount options (`lowerdir=...`, `upperdir=...`, `rbind`, `ro`, ...).
    pub options: Vec<String>,
}

/// One path changed in a layer relative to its parent (as `docker diff` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Absolute path inside the container, e.g. `/etc/hosts`.
    pub path: String,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// The kind of a [`Change`], with Docker's numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// `C` (0).
    Modified,
    /// `A` (1).
    Added,
    /// `D` (2).
    Deleted,
}

/// Disk usage of one layer's own content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes.
    pub size: u64,
    /// Inodes.
    pub inodes: u64,
}

/// A layer storage driver. Implementations must be safe to call from several threads at once
/// for *different* layers; the daemon serialises calls on the same layer.
pub trait StorageDriver: Send + Sync {
    /// The driver's name as `info` shows it (`overlay2`, `vfs`).
    fn name(&self) -> String;

    /// Key/value lines for `info`'s "Storage Driver" section (`Backing Filesystem`, ...).
    fn status(&self) -> Vec<(String, String)>;

    /// Creates an empty layer `id` on top of `parent`.
    fn create(&self, id: &str, parent: Option<&str>, opts: &CreateOpts) -> DriverResult<()>;

    /// Removes layer `id` and everything it holds. Removing a missing layer is not an error.
    fn remove(&self, id: &str) -> DriverResult<()>;

    /// Whether layer `id` exists.
    fn exists(&self, id: &str) -> bool;

    /// The ids of all layers the driver holds (for start-up reconciliation).
    fn list(&self) -> DriverResult<Vec<String>>;

    /// How to mount the full filesystem of layer `id` (its chain of parents included).
    fn mounts(&self, id: &str) -> DriverResult<Vec<Mount>>;

    /// Applies a tar stream of changes (uncompressed, with `.wh.` whiteouts) to the fresh layer
    /// `id`. Returns the number of bytes of content applied. The stream is read to its end.
    fn apply_diff(&self, id: &str, diff: &mut dyn Read) -> DriverResult<u64>;

    /// Whether [`apply_diff`](StorageDriver::apply_diff) into a layer needs nothing of its
    /// parent's content, so the layers of a chain may all be created first and then filled at
    /// once, in any order (overlay: each layer is its own folder of changes). False (the
    /// default) when `create` copies or snapshots the parent, as vfs does: the parent must
    /// then be complete before its child is created.
    fn independent_diffs(&self) -> bool {
        false
    }

    /// The folder that holds the content [`apply_diff`](StorageDriver::apply_diff) unpacked
    /// into layer `id`, exactly as unpacked (overlay's `diff` folder, vfs's snapshot), so the
    /// image store can read file bodies back instead of keeping the layer's tar a second time.
    /// `None` (the default) when the driver has no such folder or changes what it unpacks: the
    /// store then keeps the whole tar. The folder's content comes from an image: callers open
    /// it only through `berth-confine`, never following symlinks.
    fn diff_dir(&self, _id: &str) -> DriverResult<Option<std::path::PathBuf>> {
        Ok(None)
    }

    /// Writes the changes of layer `id` against its parent as an uncompressed tar stream with
    /// `.wh.` whiteouts (what `commit`, `save` and layer export use).
    fn diff(&self, id: &str, out: &mut dyn Write) -> DriverResult<()>;

    /// Lists the changes of layer `id` against its parent (`docker diff`).
    fn changes(&self, id: &str) -> DriverResult<Vec<Change>>;

    /// Disk usage of layer `id`'s own content.
    fn usage(&self, id: &str) -> DriverResult<Usage>;

    /// Releases anything the driver holds (called once at daemon shutdown).
    fn cleanup(&self) -> DriverResult<()> {
        Ok(())
    }
}
