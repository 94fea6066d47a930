//! `docker volume prune`: removes the volumes no container refers to that its filters admit —
//! with API ≥ 1.42 only anonymous ones unless `all`, before 1.42 every unused one (Docker's
//! rule), never one with mount options — and says how much space that gave back.

use super::{disk_usage, mounts, VolumeFilter};
use crate::state::Ctx;

/// What a prune removed: the volumes' names and the bytes they held.
#[derive(Debug, Default)]
pub struct Pruned {
    pub deleted: Vec<String>,
    pub reclaimed: u64,
}

/// Removes the unused volumes `filter` admits; named ones only with `all`. `removed` is told
/// each name removed (for its event).
pub fn prune(ctx: &Ctx, filter: &VolumeFilter, all: bool, removed: impl Fn(&str)) -> Pruned {
    let mut out = Pruned::default();
    for v in ctx.volumes.list() {
        // A volume with mount options (tmpfs, nfs, a bind) holds nothing here to reclaim:
        // Docker's prune leaves those alone.
        if (!all && !v.anonymous()) || !v.options.is_empty() {
            continue;
        }
        if !filter.matches(&v, false) || !mounts::users(&ctx.containers, &v.name).is_empty() {
            continue;
        }
        let size = disk_usage(&v.mountpoint);
        // Taken by a container meanwhile, or already gone: not for this prune.
        if ctx.volumes.remove(&v.name, &[]).is_ok() {
            out.reclaimed += size;
            removed(&v.name);
            out.deleted.push(v.name.clone());
        }
    }
    out
}
