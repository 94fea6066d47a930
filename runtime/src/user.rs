//! Resolving `user[:group]` (names or numbers) against a root filesystem's `/etc/passwd` and
//! `/etc/group`, as Docker does.
//!
//! Both files belong to the image (or the running container): they are read through
//! [`berth_confine::Root::read_regular`], so a symlink cannot lead out of the root, and only a
//! regular file of at most [`LIMIT`] bytes is read (`/etc/passwd -> /dev/zero` or a fifo is
//! refused instead of read forever). A file that cannot be read counts as empty for numeric
//! users and groups; a name looked up in it gets an error saying why.

use crate::RuntimeError;
use berth_confine::Root;
use std::path::Path;

/// The largest `/etc/passwd` or `/etc/group` read (Docker reads them unbounded).
pub const LIMIT: u64 = 4 << 20;

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

/// One of the two files: its text, or why it could not be read (a missing file is empty).
struct Db {
    text: String,
    unreadable: Option<String>,
}

impl Db {
    /// The database from the outcome of reading `file` (`etc/passwd`).
    fn read(read: Result<Vec<u8>, berth_confine::ConfineError>, file: &str) -> Db {
        match read {
            Ok(b) => Db {
                text: String::from_utf8_lossy(&b).into_owned(),
                unreadable: None,
            },
            Err(e) if e.is_not_found() => Db {
                text: String::new(),
                unreadable: None,
            },
            Err(e) => Db {
                text: String::new(),
                unreadable: Some(match e {
                    berth_confine::ConfineError::NotRegular { .. } => {
                        format!("/{file} is not a regular file")
                    }
                    berth_confine::ConfineError::TooLarge { .. } => {
                        format!("/{file} is larger than {LIMIT} bytes")
                    }
                    other => other.to_string(),
                }),
            },
        }
    }

    fn entries(&self, min: usize) -> impl Iterator<Item = Vec<&str>> {
        self.text
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(move |f| f.len() >= min)
    }

    /// The error for a name not found in it.
    fn missing(&self, what: &str, name: &str, file: &str) -> RuntimeError {
        RuntimeError::Invalid(match &self.unreadable {
            Some(why) => format!("unable to find {what} {name}: {why}"),
            None => format!("unable to find {what} {name}: no matching entries in {file} file"),
        })
    }
}

/// Resolves `spec` (`""`, `root`, `1000`, `nobody:nogroup`, `1000:1000`).
pub fn resolve(rootfs: &Path, spec: &str, extra_groups: &[String]) -> Result<User, RuntimeError> {
    // A rootfs that cannot be opened has no passwd file (numeric users still resolve).
    let root = Root::open(rootfs).ok();
    let read = |file: &str| match &root {
        Some(r) => r.read_regular(file, LIMIT),
        None => Ok(Vec::new()),
    };
    resolve_with(read, spec, extra_groups)
}

/// [`resolve`] with the files read by `read` (given `etc/passwd` or `etc/group`; it should
/// read through a [`Root`] with [`LIMIT`], a missing file being a not-found error), for a
/// root that is not one folder (a container with volumes mounted over `/etc`).
pub fn resolve_with(
    mut read: impl FnMut(&str) -> Result<Vec<u8>, berth_confine::ConfineError>,
    spec: &str,
    extra_groups: &[String],
) -> Result<User, RuntimeError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let passwd = Db::read(read("etc/passwd"), "etc/passwd");
    let group = Db::read(read("etc/group"), "etc/group");
    let entry = passwd.entries(7).find(|f| f[0] == u || f[2] == u);
    // A numeric user missing from passwd runs with gid 0, as Docker does.
    let (uid, mut gid, home, name) = match (entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[5].to_string(),
            f[0].to_string(),
        ),
        (None, Ok(n)) => (n, 0, "/".to_string(), String::new()),
        (None, Err(_)) => return Err(passwd.missing("user", u, "passwd")),
    };
    let lookup_group = |g: &str| -> Result<u32, RuntimeError> {
        if let Some(f) = group.entries(3).find(|f| f[0] == g || f[2] == g) {
            return Ok(f[2].parse().unwrap_or(0));
        }
        g.parse::<u32>()
            .map_err(|_| group.missing("group", g, "group"))
    };
    if let Some(g) = g {
        gid = lookup_group(g)?;
    }
    // Like Docker: the primary group first, then the groups listing the user as a member.
    let mut additional = vec![gid];
    if !name.is_empty() {
        for f in group.entries(4) {
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

    #[test]
    fn hostile_passwd_is_refused_not_read() {
        let d = tempfile::tempdir().expect("tmp");
        let out = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("etc")).expect("etc");
        // A symlink to a device that never ends, and a group file that is a fifo.
        std::os::unix::fs::symlink("/dev/zero", d.path().join("etc/passwd")).expect("link");
        std::fs::create_dir_all(d.path().join("dev")).expect("dev");
        let zero = std::ffi::CString::new(d.path().join("dev/zero").to_str().expect("utf8"))
            .expect("cstr");
        // SAFETY: a NUL-terminated path; makes /dev/zero (1,5) inside the test's root.
        let rc = unsafe { libc::mknod(zero.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 5)) };
        assert_eq!(rc, 0, "mknod");
        let fifo = std::ffi::CString::new(d.path().join("etc/group").to_str().expect("utf8"))
            .expect("cstr");
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
        let e = resolve(d.path(), "nobody", &[]).expect_err("named user");
        assert_eq!(
            e.to_string(),
            "unable to find user nobody: /etc/passwd is not a regular file"
        );
        let n = resolve(d.path(), "1000", &[]).expect("numeric user needs no passwd");
        assert_eq!((n.uid, n.gid), (1000, 0));
        let e = resolve(d.path(), "1000:staff", &[]).expect_err("named group");
        assert!(
            e.to_string().contains("/etc/group is not a regular file"),
            "{e}"
        );
        // A symlink out of the root reads the root's own file, not the host's.
        std::fs::remove_file(d.path().join("etc/passwd")).expect("rm");
        std::fs::write(out.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").expect("host");
        std::os::unix::fs::symlink(out.path().join("passwd"), d.path().join("etc/passwd"))
            .expect("link");
        assert!(resolve(d.path(), "evil", &[]).is_err());
    }
}
