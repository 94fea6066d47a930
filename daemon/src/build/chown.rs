//! `COPY`/`ADD --chown=user[:group]` as Docker's builder resolves it: numbers as they are,
//! names looked up in the `/etc/passwd` and `/etc/group` of the image being built (read inside
//! its rootfs, bounded), and a missing group taken as the user's numeric ID.

use super::BuildError;
use berth_confine::Root;

/// Largest `/etc/passwd` or `/etc/group` read.
const MAX_DB: u64 = 4 << 20;

/// The ID `name` has in the colon-separated database `file` (`name:x:id:...`).
fn lookup(root: Option<&Root>, file: &str, name: &str) -> Option<u32> {
    let bytes = root?.read_regular(file, MAX_DB).ok()?;
    String::from_utf8_lossy(&bytes).lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(name))
            .then(|| f.nth(1).and_then(|id| id.parse().ok()))
            .flatten()
    })
}

/// (uid, gid) of `spec`, names resolved in `root` (the image's rootfs; none for scratch).
pub fn resolve(spec: &str, root: Option<&Root>) -> Result<(u32, u32), BuildError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup(root, "etc/passwd", user).ok_or_else(|| {
            BuildError::msg(format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
            ))
        })?,
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(root, "etc/group", g).ok_or_else(|| {
                BuildError::msg(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                ))
            })?,
        },
    };
    Ok((uid, gid))
}
