//! Read-only mounts every container shares instead of making its own: the empty tmpfs that
//! masks directories (`linux.maskedPaths`: `/proc/acpi`, `/sys/firmware`, ...) and, with
//! cgroup v1, the tmpfs at `/sys/fs/cgroup` that holds one folder per hierarchy.
//!
//! Each superblock costs every memory cgroup's removal a walk of its two memcg-aware LRU lists
//! (`memcg_reparent_list_lrus`, under the global cgroup mutex), so a host running N containers
//! removes them in O(N × superblocks per container). These two never change once made, so one
//! of each serves all: berthd mounts them ([`make`]) in its template mount namespace only (the
//! host's namespace never holds them), and names their folder in the spec
//! ([`ANNOTATION`]). A container's init takes a detached copy of each before `pivot_root`
//! ([`Shared::open`]) and attaches it where it would have mounted a new tmpfs: what the
//! container sees is the same (an empty read-only tmpfs, the same mount options). What is
//! shared is used only when it is what it must be (a read-only tmpfs, empty, or holding
//! exactly the hierarchies' folders), and never for a container that keeps `CAP_SYS_ADMIN`,
//! which could remount it writable for all; otherwise each container makes its own, one tmpfs
//! for all its masked folders (as runc does since 1.3.6).

use crate::mounts::CgroupLayout;
use berth_core::mountns;
use nix::mount::{mount, MsFlags};
use serde_json::Value;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// The spec annotation naming the folder that holds the shared mounts (`empty`, `cgroup`).
pub const ANNOTATION: &str = "io.berth.shared-mounts";
/// The empty read-only tmpfs, under the shared folder.
const EMPTY: &str = "empty";
/// The cgroup v1 `/sys/fs/cgroup` tmpfs, under the shared folder.
const CGROUP: &str = "cgroup";
/// What the v1 `/sys/fs/cgroup` tmpfs is mounted with (besides read-only), as a container's own.
const CGROUP_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NODEV);

/// Mounts the shared tmpfs under `dir` in the caller's mount namespace (berthd's template):
/// `empty`, and with cgroup v1 `cgroup` with a folder per hierarchy of `layout`, both
/// read-only. Failures are returned; containers then make their own.
pub fn make(dir: &Path, layout: &CgroupLayout) -> Result<(), String> {
    let empty = dir.join(EMPTY);
    std::fs::create_dir_all(&empty).map_err(|e| format!("creating {}: {e}", empty.display()))?;
    mount(
        Some("tmpfs"),
        &empty,
        Some("tmpfs"),
        MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| format!("mounting the empty tmpfs: {e}"))?;
    if layout.v2 || layout.v1.is_empty() {
        return Ok(());
    }
    let cg = dir.join(CGROUP);
    std::fs::create_dir_all(&cg).map_err(|e| format!("creating {}: {e}", cg.display()))?;
    mount(
        Some("tmpfs"),
        &cg,
        Some("tmpfs"),
        CGROUP_FLAGS,
        Some("mode=755"),
    )
    .map_err(|e| format!("mounting the cgroup tmpfs: {e}"))?;
    for (name, _) in &layout.v1 {
        std::fs::create_dir(cg.join(name))
            .map_err(|e| format!("creating the cgroup folder {name}: {e}"))?;
    }
    mount(
        None::<&str>,
        &cg,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | CGROUP_FLAGS,
        Some("mode=755"),
    )
    .map_err(|e| format!("remounting the cgroup tmpfs read-only: {e}"))
}

/// Detached copies of the shared mounts a container may use, taken by its init before
/// `pivot_root` (which hides the folder holding them).
#[derive(Default)]
pub struct Shared {
    /// The empty tmpfs, for masked folders.
    pub empty: Option<OwnedFd>,
    /// The v1 `/sys/fs/cgroup` tmpfs, for a read-only cgroup mount.
    pub cgroup: Option<OwnedFd>,
}

impl Shared {
    /// What of the shared mounts the spec names this container may use. A copy is only taken
    /// when it will be attached (a detached copy dropped unused costs an RCU grace period).
    pub fn open(spec: &Value, layout: &CgroupLayout) -> Shared {
        let Some(dir) = spec["annotations"][ANNOTATION].as_str().map(Path::new) else {
            return Shared::default();
        };
        let sys_admin = spec["process"]["capabilities"]["bounding"]
            .as_array()
            .is_some_and(|caps| caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        if sys_admin {
            return Shared::default();
        }
        let masks = spec["linux"]["maskedPaths"]
            .as_array()
            .is_some_and(|p| !p.is_empty());
        let empty = masks.then(|| usable(&dir.join(EMPTY), &[])).flatten();
        let ro_cgroup = crate::mounts::cgroup_mount_points(spec)
            .iter()
            .any(|(_, f)| f.contains(MsFlags::MS_RDONLY));
        let names: Vec<&str> = layout.v1.iter().map(|(n, _)| n.as_str()).collect();
        let cgroup = (ro_cgroup && !layout.v2 && !names.is_empty())
            .then(|| usable(&dir.join(CGROUP), &names))
            .flatten();
        Shared { empty, cgroup }
    }
}

/// A detached copy of the mount at `path` if it is a read-only tmpfs holding exactly the
/// empty folders `names` (nothing for `&[]`).
fn usable(path: &Path, names: &[&str]) -> Option<OwnedFd> {
    let fd = mountns::clone_one(path).ok()?;
    let fs = nix::sys::statfs::fstatfs(&fd).ok()?;
    let read_only = nix::sys::statvfs::fstatvfs(&fd)
        .ok()?
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    // Checked on the copy itself, so what is checked is what gets attached.
    let ok = fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
        && read_only
        && holds_exactly(&fd, names);
    ok.then_some(fd)
}

/// Whether the folder `fd` holds exactly the empty folders `names`.
fn holds_exactly(fd: &OwnedFd, names: &[&str]) -> bool {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let Ok(mut d) = nix::dir::Dir::openat(
        Some(fd.as_raw_fd()),
        ".",
        flags,
        nix::sys::stat::Mode::empty(),
    ) else {
        return false;
    };
    let mut seen = 0;
    for e in d.iter() {
        let Ok(e) = e else { return false };
        let name = e.file_name().to_string_lossy();
        if name == "." || name == ".." {
            continue;
        }
        if !names.contains(&name.as_ref()) || e.file_type() != Some(nix::dir::Type::Directory) {
            return false;
        }
        seen += 1;
    }
    seen == names.len() && names.iter().all(|n| empty_dir(fd, n))
}

/// Whether `name` under the folder `fd` is an empty folder.
fn empty_dir(fd: &OwnedFd, name: &str) -> bool {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    nix::dir::Dir::openat(
        Some(fd.as_raw_fd()),
        name,
        flags,
        nix::sys::stat::Mode::empty(),
    )
    .is_ok_and(|mut d| {
        d.iter()
            .flatten()
            .all(|e| matches!(e.file_name().to_bytes(), b"." | b".."))
    })
}

/// The empty tmpfs that masks folders: a detached copy not attached yet, or a mount already
/// on one of them.
enum Source {
    Detached(OwnedFd),
    Attached(OwnedFd),
}

/// Masks `paths` in the container's own view (after `pivot_root`): a file with a bind of
/// `/dev/null`, a folder with an empty read-only tmpfs — the shared one (`empty`) when the
/// container may use it, else one of its own, mounted on the first folder and attached as a
/// copy on every other.
pub(crate) fn mask(paths: &[String], empty: Option<OwnedFd>) {
    let mut source = empty.map(Source::Detached);
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => source = mask_dir(Path::new(p), source),
            Ok(_) => {
                let _ = mount(
                    Some("/dev/null"),
                    p.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                );
            }
            Err(_) => {}
        }
    }
}

/// Masks the folder `at` with `source`, or with a new tmpfs when there is none (or it cannot
/// be attached); returns what masks the next folder.
fn mask_dir(at: &Path, source: Option<Source>) -> Option<Source> {
    let attached = match source {
        Some(Source::Detached(fd)) => mountns::attach(&fd, at).map(|()| fd),
        Some(Source::Attached(fd)) => mountns::clone_again(&fd)
            .and_then(|copy| mountns::attach(&copy, at))
            .map(|()| fd),
        None => Err(std::io::ErrorKind::NotFound.into()),
    };
    if let Ok(fd) = attached {
        return Some(Source::Attached(fd));
    }
    mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .ok()?;
    // The mount just made, held to copy it onto the next folder.
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(at)
        .ok()
        .map(|f| Source::Attached(f.into()))
}

/// Mounts the v1 `/sys/fs/cgroup` tmpfs at `target` from the shared copy `skeleton` (already
/// read-only, with a folder per hierarchy); false, with nothing mounted, when it cannot.
pub(crate) fn attach_cgroup(skeleton: &OwnedFd, target: &Path) -> bool {
    mountns::attach(skeleton, target).is_ok()
}
