//! `HostConfig.CgroupParent` (`docker run --cgroup-parent`, and a CRI pod's
//! `linux.cgroup_parent`): the cgroup a container's own cgroup is made under. As dockerd with
//! the cgroupfs driver, a parent is a path from each hierarchy's root, its leading `/`
//! optional; without one berth uses `berth` (dockerd: `/docker`). The container's cgroup is
//! `<parent>/<id>`, resolved once at create and kept in its record.
//!
//! The parent is client input joined under `/sys/fs/cgroup/...`: it is checked lexically
//! (bounded, no NUL, no `..`), which is enough there since cgroupfs has no symlinks. Missing
//! parent folders are made at start (`berth_runtime::cgroups::Cgroup::create`, in every v1
//! hierarchy berth uses or in the v2 tree) and left in place at removal: they may be shared
//! (kubelet owns a pod's).

use crate::error::ServiceError;

/// The parent of a container that names none.
pub const DEFAULT: &str = "berth";

/// The longest parent accepted, in bytes (a component is at most 255, as a file name).
pub const MAX_LEN: usize = 1024;

/// The parent a container asking for `parent` gets (empty: [`DEFAULT`]), without a leading
/// `/`, or why `parent` is refused. Its cgroup is `<that>/<id>`.
pub fn check(parent: &str) -> Result<String, ServiceError> {
    let p = normalise(parent).map_err(|why| {
        ServiceError::bad_request(format!("invalid cgroup parent {parent:?}: {why}"))
    })?;
    Ok(if p.is_empty() { DEFAULT.to_string() } else { p })
}

/// `parent` without empty and `.` components, joined by `/` (no leading one).
fn normalise(parent: &str) -> Result<String, &'static str> {
    if parent.len() > MAX_LEN {
        return Err("too long");
    }
    if parent.contains('\0') {
        return Err("contains a NUL byte");
    }
    let mut parts = Vec::new();
    for part in parent.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err("must not contain \"..\" components");
        }
        if part.len() > 255 {
            return Err("a component is longer than 255 bytes");
        }
        parts.push(part);
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(parent: &str) -> String {
        check(parent).expect("accepted")
    }

    fn refused(parent: &str) -> String {
        check(parent).expect_err("refused").to_string()
    }

    #[test]
    fn a_parent_is_taken_from_the_hierarchy_root() {
        assert_eq!(ok(""), "berth");
        assert_eq!(ok("/"), "berth");
        assert_eq!(ok("/mygroup"), "mygroup");
        assert_eq!(ok("mygroup"), "mygroup");
        assert_eq!(ok("/kubepods/besteffort/pod1/"), "kubepods/besteffort/pod1");
        assert_eq!(ok("a//./b"), "a/b");
    }

    #[test]
    fn hostile_parents_are_refused() {
        assert!(refused("../escape").contains("must not contain \"..\""));
        assert!(refused("/a/../../b").contains("invalid cgroup parent"));
        assert!(refused("a\0b").contains("NUL"));
        assert!(refused(&"a".repeat(MAX_LEN + 1)).contains("too long"));
        assert!(refused(&format!("a/{}", "b".repeat(256))).contains("255"));
        assert_eq!(ok(&"a/".repeat(MAX_LEN / 2)).len(), MAX_LEN - 1);
    }
}
