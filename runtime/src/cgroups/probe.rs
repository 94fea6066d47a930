//! Where the host's cgroup filesystems are, found without reading the mount table.
//!
//! `/proc/self/mountinfo` has a line for every mount, and a container engine's host has one
//! (or more) per running container: read by every monitor and every init, it made each start
//! slower the more containers ran. `/proc/self/cgroup` names the hierarchies this process is
//! in — a handful of lines, whatever runs — and each is checked where every distribution
//! mounts it (`/sys/fs/cgroup`, `/sys/fs/cgroup/<controllers>`) with `statfs`. When a
//! hierarchy is not found there, the callers fall back to the mount table.

use std::path::Path;

const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The host's cgroup hierarchies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Unified: cgroup2 at `/sys/fs/cgroup`.
    V2,
    /// v1 (cgroup2 beside it, if any, is not used): each hierarchy's folder name under
    /// `/sys/fs/cgroup` and its controllers as mount data (`cpu,cpuacct`, `name=systemd`).
    V1(Vec<(String, String)>),
}

/// The filesystem type of `p` (`statfs`'s `f_type`).
fn fs_type(p: &Path) -> Option<i64> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statfs is plain old data; all-zero is valid and is overwritten on success.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a statfs buffer owned by this frame.
    (unsafe { libc::statfs(c.as_ptr(), &mut s) } == 0).then_some(s.f_type as i64)
}

/// The hierarchies from `/proc/self/cgroup`'s text, each checked mounted where expected;
/// `None` when one is not (the mount table knows better).
pub(crate) fn from(proc_cgroup: &str, fs_type: impl Fn(&Path) -> Option<i64>) -> Option<Found> {
    let root = Path::new("/sys/fs/cgroup");
    let mut v1 = Vec::new();
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (_id, controllers) = (f.next()?, f.next()?);
        if controllers.is_empty() {
            continue;
        }
        let dir = controllers.strip_prefix("name=").unwrap_or(controllers);
        if dir.is_empty() || dir.contains('/') || fs_type(&root.join(dir))? != CGROUP_SUPER_MAGIC {
            return None;
        }
        v1.push((dir.to_string(), controllers.to_string()));
    }
    if !v1.is_empty() {
        return Some(Found::V1(v1));
    }
    (fs_type(root)? == CGROUP2_SUPER_MAGIC).then_some(Found::V2)
}

/// The host's hierarchies, or `None` when they are not where they usually are.
pub(crate) fn host() -> Option<Found> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    from(&text, fs_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(v1: &'static [&'static str], v2: bool) -> impl Fn(&Path) -> Option<i64> {
        move |p: &Path| {
            let name = p.strip_prefix("/sys/fs/cgroup").ok()?.to_str()?;
            if name.is_empty() {
                return Some(if v2 { CGROUP2_SUPER_MAGIC } else { 0x0102_1994 });
            }
            v1.contains(&name).then_some(CGROUP_SUPER_MAGIC)
        }
    }

    #[test]
    fn hierarchies_from_proc_self_cgroup() {
        let v1 = "9:name=systemd:/\n2:cpu,cpuacct:/a\n1:memory:/b\n0::/\n";
        assert_eq!(
            from(v1, fs(&["systemd", "cpu,cpuacct", "memory"], false)),
            Some(Found::V1(vec![
                ("systemd".into(), "name=systemd".into()),
                ("cpu,cpuacct".into(), "cpu,cpuacct".into()),
                ("memory".into(), "memory".into()),
            ]))
        );
        // A hierarchy mounted elsewhere: the mount table decides.
        assert_eq!(from(v1, fs(&["systemd", "memory"], false)), None);
        assert_eq!(from("0::/x\n", fs(&[], true)), Some(Found::V2));
        assert_eq!(from("0::/x\n", fs(&[], false)), None);
    }

    #[test]
    fn this_host_is_found_as_its_mount_table_says() {
        let by_table = crate::cgroups::Hierarchy::from_mount_table();
        assert_eq!(crate::cgroups::Hierarchy::detect(), by_table);
        let layout = crate::mounts::CgroupLayout::host();
        let by_table = crate::mounts::CgroupLayout::from_mount_table();
        assert_eq!(
            (layout.v2, &layout.v1),
            (by_table.v2 && layout.v2, &by_table.v1)
        );
        let Some(found) = host() else { return };
        let by_table = crate::mounts::CgroupLayout::from_mount_table();
        match found {
            Found::V2 => assert!(by_table.v2),
            Found::V1(h) => {
                let mut h: Vec<String> = h.into_iter().map(|(d, _)| d).collect();
                let mut t: Vec<String> = by_table.v1.into_iter().map(|(d, _)| d).collect();
                h.sort();
                t.sort();
                assert_eq!(h, t);
            }
        }
    }
}
