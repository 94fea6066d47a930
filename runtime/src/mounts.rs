//! The container's filesystem view, set up by init inside its new mount namespace: the spec's
//! mounts (proc, /dev, devpts, sysfs, cgroup, mqueue, shm, binds), device nodes, the switch to
//! the rootfs (`pivot_root`, or in a staged template's copy moving mounts, see
//! `berth_core::stage`; "`pivot_root`" below stands for either), masked and read-only paths.
//!
//! Before `pivot_root` the init sees the host: every path it makes or mounts onto inside the
//! rootfs (mount points, device nodes, `/dev` links) is resolved inside it with
//! [`berth_confine::Root`] and acted on through a descriptor, so an image's symlinks
//! (`/etc -> /host/dir`, `/dev -> ../../..`) are followed as the container would follow them,
//! never out of it. After `pivot_root` (masked and read-only paths, cgroup mounts, the
//! working folder) the host is out of view and plain paths are the container's own.

use berth_confine::{ConfineError, FileKind, Follow, Root};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::Value;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

fn flags_of(options: &[String]) -> (MsFlags, String) {
    let mut f = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => f |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => f |= MsFlags::MS_NOSUID,
            "nodev" => f |= MsFlags::MS_NODEV,
            "noexec" => f |= MsFlags::MS_NOEXEC,
            "strictatime" => f |= MsFlags::MS_STRICTATIME,
            "relatime" => f |= MsFlags::MS_RELATIME,
            "noatime" => f |= MsFlags::MS_NOATIME,
            "bind" => f |= MsFlags::MS_BIND,
            "rbind" => f |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "z" | "Z" => {}
            other => data.push(other.to_string()),
        }
    }
    (f, data.join(","))
}

/// The propagation flags of an OCI propagation name (`rshared`, `slave`, ...), as runc's.
pub(crate) fn propagation(name: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match name {
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// Sets the propagation of the mount at `at` (no-op for `None`).
fn set_propagation(at: &Path, flags: Option<MsFlags>) -> Result<(), String> {
    let Some(flags) = flags else {
        return Ok(());
    };
    mount(None::<&str>, at, None::<&str>, flags, None::<&str>)
        .map_err(|e| format!("setting the propagation of {}: {e}", at.display()))
}

/// Makes the mount that holds `path` private (runc's `rootfsParentMountPrivate`), so that
/// what is mounted on the rootfs does not propagate to the host when the container's tree
/// was not made private as a whole (a `rootfsPropagation`), and `pivot_root` accepts it.
pub(crate) fn parent_mount_private(path: &Path) -> Result<(), String> {
    let holder =
        holding_mount(path).map_err(|e| format!("finding {}'s mount: {e}", path.display()))?;
    set_propagation(&holder, Some(MsFlags::MS_PRIVATE))
}

/// The mount point of the mount that holds `path` (already free of symlinks): `path` or the
/// nearest parent that is a mount's root, asked of the kernel path by path rather than read
/// from the mount table, which holds every running container's rootfs.
fn holding_mount(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let mut p = path;
    loop {
        if berth_core::mount::is_mount_point(p)? {
            return Ok(p.to_path_buf());
        }
        match p.parent() {
            Some(up) => p = up,
            None => return Ok(std::path::PathBuf::from("/")),
        }
    }
}

/// The mount that holds `path` (already free of symlinks) in this process's mount namespace:
/// its mount point and its optional fields (`shared:N`, `master:N`, ...), from
/// `/proc/self/mountinfo`; `/` with none when nothing matches.
pub fn holder(path: &Path) -> std::io::Result<(String, Vec<String>)> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    let best = info
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let point = unescape(f.nth(4)?);
            let optional: Vec<String> = f
                .skip(1)
                .take_while(|x| *x != "-")
                .map(str::to_string)
                .collect();
            path.starts_with(&point).then_some((point, optional))
        })
        .max_by_key(|(p, _)| p.len());
    Ok(best.unwrap_or_else(|| ("/".to_string(), Vec::new())))
}

/// A mountinfo path with its octal escapes (a space is `\040`) decoded.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (b[i], oct) {
            (b'\\', Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) use berth_core::json::strings as strs;

/// The mount point `dest` inside the rootfs: a folder made with every missing parent (or, for
/// the bind of a file, a file), each step resolved inside `root` so that an image's symlinks
/// and `..` cannot lead the mount out of it. Returns an `O_PATH` descriptor of it.
fn mount_point(root: &Root, dest: &str, file: bool) -> Result<OwnedFd, String> {
    if file {
        target_file(root, dest).map_err(|e| format!("creating mount point {dest}: {e}"))
    } else {
        root.mkdir_all(dest, 0o755)
            .map_err(|e| format!("creating mount point {dest}: {e}"))
    }
}

/// The file `dest` inside `root`, made (with its parents) when missing. A dangling symlink
/// is followed inside the root, as the kernel would follow it from inside the container.
fn target_file(root: &Root, dest: &str) -> Result<OwnedFd, ConfineError> {
    let mut dest = PathBuf::from(dest);
    for _ in 0..40 {
        match root.resolve(&dest, Follow::Yes) {
            Err(e) if e.is_not_found() => {}
            found => return found,
        }
        if let Some(st) = root.lstat(&dest)? {
            if st.kind == FileKind::Symlink {
                let link = root.read_link(&dest)?;
                dest = match dest.parent() {
                    Some(p) if !link.has_root() => p.join(link),
                    _ => link,
                };
                continue;
            }
        }
        if let Some(p) = dest.parent() {
            root.mkdir_all(p, 0o755)?;
        }
        match root.create_new(&dest, 0o644) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            other => drop(other?),
        }
        return root.resolve(&dest, Follow::Yes);
    }
    Err(ConfineError::InvalidPath {
        path: root.display(&dest),
    })
}

/// Mounts one spec mount onto its destination inside `root` (the bound rootfs, before
/// `pivot_root`). Destinations are the image's to shape: they are resolved inside `root` and
/// mounted through `/proc/self/fd/N` of the resolved descriptor. Sources are the daemon's
/// (host paths the user named, the container's own files, volume folders).
///
/// A propagation option (`rshared`, `slave`, ...) is applied to the mount once made; a
/// private one only when the container's tree is not private already (`tree_private`).
pub(crate) fn do_mount(root: &Root, m: &Value, tree_private: bool) -> Result<(), String> {
    let dest = m["destination"].as_str().unwrap_or("");
    let kind = m["type"].as_str().unwrap_or("");
    let source = m["source"].as_str().unwrap_or("");
    let opts = strs(&m["options"]);
    let (flags, data) = flags_of(&opts);
    let prop = opts
        .iter()
        .filter_map(|o| propagation(o))
        .next_back()
        .filter(|p| !(tree_private && p.contains(MsFlags::MS_PRIVATE)));
    if kind == "cgroup" {
        // Mounted later, once in the container's cgroup namespace (`mount_cgroups`).
        return mount_point(root, dest, false).map(drop);
    }
    let is_bind = kind == "bind" || flags.contains(MsFlags::MS_BIND);
    let target = mount_point(root, dest, is_bind && Path::new(source).is_file())?;
    let at = berth_confine::proc_path(&target);
    if is_bind {
        let bflags = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
        mount(
            Some(source),
            &at,
            None::<&str>,
            bflags | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("bind mounting {source} on {dest}: {e}"))?;
        let extra = flags
            & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        if !extra.is_empty() {
            // The descriptor names what is under the new mount: resolve again to reach it.
            let top = root
                .resolve(dest, Follow::Yes)
                .map_err(|e| format!("remounting {dest}: {e}"))?;
            mount(
                None::<&str>,
                &berth_confine::proc_path(&top),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
                None::<&str>,
            )
            .map_err(|e| format!("remounting {dest}: {e}"))?;
        }
        if prop.is_some() {
            let top = root
                .resolve(dest, Follow::Yes)
                .map_err(|e| format!("resolving {dest}: {e}"))?;
            set_propagation(&berth_confine::proc_path(&top), prop)?;
        }
        return Ok(());
    }
    let data = if data.is_empty() {
        None
    } else {
        Some(data.as_str())
    };
    mount(Some(source), &at, Some(kind), flags, data)
        .map_err(|e| format!("mounting {kind} on {dest}: {e}"))
}

/// Docker's standard device nodes, as (name, major, minor).
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Makes a character device node at `rel` inside `root` (mode 0666, as Docker's); false if
/// the kernel refuses (no CAP_MKNOD), and the caller binds the host's node instead.
fn make_node(root: &Root, rel: &str, major: u64, minor: u64) -> bool {
    let _ = root.remove(rel);
    root.mknod(
        rel,
        FileKind::Char,
        0o666,
        nix::sys::stat::makedev(major, minor),
    )
    .is_ok()
        && root.chmod(rel, 0o666).is_ok()
}

/// The device nodes and `/dev` links, made in the container's `/dev` as resolved inside
/// `root` (a `/dev` that the image made a symlink leads to a folder inside the rootfs, where
/// the `/dev` tmpfs was mounted).
pub(crate) fn devices(root: &Root) -> Result<(), String> {
    // Nodes made in place (one syscall each, as runc does outside a user namespace) cost less
    // than bind mounts, here and when the namespace goes.
    for (d, major, minor) in DEVICES {
        let rel = format!("dev/{d}");
        if make_node(root, &rel, major, minor) {
            continue;
        }
        let target = target_file(root, &rel).map_err(|e| format!("creating /{rel}: {e}"))?;
        let src = format!("/dev/{d}");
        mount(
            Some(src.as_str()),
            &berth_confine::proc_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("binding {src}: {e}"))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = root.symlink(target, format!("dev/{link}"));
    }
    Ok(())
}

/// Makes `root` the container's `/` and detaches the old root. `root_propagation` (a
/// `rootfsPropagation` other than private) is applied to the new `/` afterwards, as runc
/// does; the old root, whose mounts may then still be peers of the host's, is made a slave
/// first so that detaching it cannot propagate to the host. `staged` (the init is in a copy of
/// a staged template): the switch moves mounts (`berth_core::stage::switch`) instead of
/// `pivot_root`, whose cost grows with the tasks on the host.
pub(crate) fn pivot(
    root: &Path,
    root_propagation: Option<MsFlags>,
    staged: bool,
) -> Result<(), String> {
    if staged {
        berth_core::stage::switch(root, root_propagation.is_some())
            .map_err(|e| format!("making the rootfs the root: {e}"))?;
        return set_propagation(Path::new("/"), root_propagation);
    }
    // The old root, held open to reach it after `pivot_root` (where "." may name the new one).
    let old_root = match root_propagation {
        Some(_) => Some(fs::File::open("/").map_err(|e| format!("opening the old root: {e}"))?),
        None => None,
    };
    std::env::set_current_dir(root).map_err(|e| format!("chdir to rootfs: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    if let Some(old) = &old_root {
        nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(old))
            .map_err(|e| format!("chdir to the old root: {e}"))?;
        set_propagation(Path::new("."), Some(MsFlags::MS_SLAVE | MsFlags::MS_REC))?;
    }
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    set_propagation(Path::new("/"), root_propagation)?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
}

pub(crate) fn readonly(paths: &[String]) {
    for p in paths {
        if Path::new(p).exists()
            && mount(
                Some(p.as_str()),
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .is_ok()
        {
            let _ = mount(
                None::<&str>,
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None::<&str>,
            );
        }
    }
}

/// The host's cgroup filesystems, read before `pivot_root` hides them: cgroup2 at
/// `/sys/fs/cgroup`, or the v1 hierarchies (folder name under `/sys/fs/cgroup`, mount options).
#[derive(Debug, Clone, Default)]
pub struct CgroupLayout {
    /// Unified (v2) host.
    pub v2: bool,
    /// v1: (`memory`, `memory`), (`cpu,cpuacct`, `cpu,cpuacct`), (`systemd`, `name=systemd`).
    pub v1: Vec<(String, String)>,
}

impl CgroupLayout {
    /// The host's layout. With cgroup v2 at `/sys/fs/cgroup`, found without the mount table
    /// (`cgroups::probe`: flat in the number of mounts). v1 hierarchies are mounted with the
    /// host's own options (`xattr`, ...), which only the mount table tells: it is read until
    /// every hierarchy the probe expects has been seen — mounted at boot, they come long
    /// before the mounts of running containers, whose number does not matter then.
    pub fn host() -> CgroupLayout {
        match crate::cgroups::probe::host() {
            Some(crate::cgroups::probe::Found::V2) => CgroupLayout {
                v2: true,
                v1: Vec::new(),
            },
            Some(crate::cgroups::probe::Found::V1(expected)) => Self::read_until(|l| {
                expected
                    .iter()
                    .all(|(dir, _)| l.v1.iter().any(|(n, _)| n == dir))
            }),
            None => Self::from_mount_table(),
        }
    }

    /// Reads all of `/proc/self/mountinfo`.
    pub fn from_mount_table() -> CgroupLayout {
        Self::read_until(|_| false)
    }

    /// Reads `/proc/self/mountinfo` line by line (the kernel writes it as it is read) until
    /// `done` says the layout is complete, or to its end.
    fn read_until(done: impl Fn(&CgroupLayout) -> bool) -> CgroupLayout {
        use std::io::BufRead;
        let mut layout = CgroupLayout::default();
        let Ok(f) = fs::File::open("/proc/self/mountinfo") else {
            return layout;
        };
        for line in std::io::BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            layout.add(&line);
            if done(&layout) {
                break;
            }
        }
        layout
    }

    /// Takes in one mountinfo line.
    fn add(&mut self, line: &str) {
        let Some((left, right)) = line.split_once(" - ") else {
            return;
        };
        let point = left.split_whitespace().nth(4).unwrap_or("");
        let mut r = right.split_whitespace();
        let fstype = r.next().unwrap_or("");
        let opts = r.nth(1).unwrap_or("");
        if fstype == "cgroup2" && point == "/sys/fs/cgroup" {
            self.v2 = true;
        } else if let (true, Some(name)) =
            (fstype == "cgroup", point.strip_prefix("/sys/fs/cgroup/"))
        {
            let controllers: Vec<&str> = opts
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("agent"))
                .collect();
            if !name.contains('/') {
                self.v1.push((name.to_string(), controllers.join(",")));
            }
        }
    }
}

/// The `cgroup` mounts of a spec (done late, see [`mount_cgroups`]): their targets under
/// the new root and flags.
pub(crate) fn cgroup_mount_points(spec: &Value) -> Vec<(String, MsFlags)> {
    spec["mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["type"] == "cgroup")
                .map(|m| {
                    let (flags, _) = flags_of(&strs(&m["options"]));
                    let dest = m["destination"].as_str().unwrap_or("/sys/fs/cgroup");
                    (dest.to_string(), flags)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Mounts the container's view of its cgroups at `target` (`/sys/fs/cgroup`): with v2 one
/// cgroup2 mount; with v1 a tmpfs holding one mount per host hierarchy (same controllers),
/// made read-only as `flags` asks — or, read-only, the shared copy `skeleton` of such a tmpfs
/// (`shared_mounts`). Run after unsharing the cgroup namespace, so each mount's root is the
/// container's own cgroup.
pub(crate) fn mount_cgroups(
    target: &Path,
    flags: MsFlags,
    layout: &CgroupLayout,
    skeleton: Option<OwnedFd>,
) -> Result<(), String> {
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    if layout.v2 {
        return mount(
            Some("cgroup"),
            target,
            Some("cgroup2"),
            base | (flags & MsFlags::MS_RDONLY),
            None::<&str>,
        )
        .map_err(|e| format!("mounting cgroup2 on /sys/fs/cgroup: {e}"));
    }
    let hierarchies = &layout.v1;
    let read_only = flags.contains(MsFlags::MS_RDONLY);
    let shared =
        read_only && skeleton.is_some_and(|s| crate::shared_mounts::attach_cgroup(&s, target));
    if !shared {
        mount(Some("tmpfs"), target, Some("tmpfs"), base, Some("mode=755"))
            .map_err(|e| format!("mounting tmpfs on /sys/fs/cgroup: {e}"))?;
    }
    for (name, controllers) in hierarchies {
        let dir = target.join(name);
        if !shared {
            fs::create_dir_all(&dir).map_err(|e| format!("creating /sys/fs/cgroup/{name}: {e}"))?;
        }
        mount(
            Some("cgroup"),
            &dir,
            Some("cgroup"),
            base | (flags & MsFlags::MS_RDONLY),
            Some(controllers.as_str()),
        )
        .map_err(|e| format!("mounting cgroup {controllers} on /sys/fs/cgroup/{name}: {e}"))?;
    }
    if read_only && !shared {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
            Some("mode=755"),
        )
        .map_err(|e| format!("remounting /sys/fs/cgroup read-only: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holding_mount_is_the_mount_tables() {
        for p in ["/proc/self", "/sys/fs", "/"] {
            let by_table = holder(Path::new(p)).expect("mountinfo").0;
            let walked = holding_mount(Path::new(p)).expect("statx");
            assert_eq!(walked, Path::new(&by_table), "{p}");
        }
    }

    #[test]
    fn mountinfo_escapes_and_propagation_names() {
        assert_eq!(unescape("/a\\040b\\011c"), "/a b\tc");
        assert_eq!(unescape("/a\\777b"), "/a\\777b");
        assert_eq!(unescape("/a\\04"), "/a\\04");
        assert_eq!(
            propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(propagation("z"), None);
        let (point, _) = holder(Path::new("/proc/self")).expect("mountinfo");
        assert_eq!(point, "/proc");
    }
}
