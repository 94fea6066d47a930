//! Resolving `user[:group]` (names or numbers) against a root filesystem's `/etc/passwd` and
//! `/etc/group`, as Docker does.

use crate::RuntimeError;
use std::path::Path;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Home folder (for `HOME`).
    pub home: String,
}

fn read(rootfs: &Path, file: &str) -> String {
    std::fs::read_to_string(rootfs.join(file)).unwrap_or_default()
}

/// Resolves `spec` (`""`, `root`, `1000`, `nobody:nogroup`, `1000:1000`).
pub fn resolve(rootfs: &Path, spec: &str, extra_groups: &[String]) -> Result<User, RuntimeError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let passwd = read(rootfs, "etc/passwd");
    let group = read(rootfs, "etc/group");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && (f[0] == u || f[2] == u));
    // A numeric user missing from passwd runs with gid 0, as Docker does.
    let (uid, mut gid, home, name) = match (entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[5].to_string(),
            f[0].to_string(),
        ),
        (None, Ok(n)) => (n, 0, "/".to_string(), String::new()),
        (None, Err(_)) => {
            return Err(RuntimeError::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )))
        }
    };
    let lookup_group = |g: &str| -> Result<u32, RuntimeError> {
        if let Some(f) = group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && (f[0] == g || f[2] == g))
        {
            return Ok(f[2].parse().unwrap_or(0));
        }
        g.parse::<u32>().map_err(|_| {
            RuntimeError::Invalid(format!(
                "unable to find group {g}: no matching entries in group file"
            ))
        })
    };
    if let Some(g) = g {
        gid = lookup_group(g)?;
    }
    // Like Docker: the primary group first, then the groups listing the user as a member.
    let mut additional = vec![gid];
    if !name.is_empty() {
        for f in group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4)
        {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    additional.push(n);
                }
            }
        }
    }
    for g in extra_groups {
        additional.push(lookup_group(g)?);
    }
    let mut seen = std::collections::HashSet::new();
    additional.retain(|g| seen.insert(*g));
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_numbers() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("etc")).expect("etc");
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n",
        )
        .expect("passwd");
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n",
        )
        .expect("group");
        let u = resolve(d.path(), "nobody", &[]).expect("nobody");
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (65534, 65534, vec![65534, 50])
        );
        assert_eq!(resolve(d.path(), "1000:50", &[]).expect("numeric").gid, 50);
        let n = resolve(d.path(), "4242", &[]).expect("unknown numeric");
        assert_eq!((n.uid, n.gid), (4242, 0));
        let e = resolve(d.path(), "nope", &[]).expect_err("unknown name");
        assert_eq!(
            e.to_string(),
            "unable to find user nope: no matching entries in passwd file"
        );
        assert_eq!(resolve(d.path(), "", &[]).expect("root").uid, 0);
        assert!(resolve(d.path(), "nope", &[]).is_err());
    }
}
