//! berthd's open-file limit: raised to its hard limit at start, as dockerd (Go) does, while
//! containers keep the limit berthd was started with as their default.
//!
//! berthd holds a descriptor or two per running container (the connection on which each
//! monitor reports the exit); at a soft limit of 1,024 (systemd's default) it would run out
//! near 1,000 containers. Raising the soft limit to the hard one costs nothing; the original
//! pair is remembered so that a container's `RLIMIT_NOFILE` does not change with it.

use std::sync::OnceLock;

static ORIGINAL: OnceLock<(u64, u64)> = OnceLock::new();

/// This process's `RLIMIT_NOFILE` now (soft, hard).
pub fn current() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0)
        .then_some((r.rlim_cur, r.rlim_max))
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit, remembering the limit it
/// had ([`original`]); returns the new soft limit. Best effort; call it once at start.
pub fn raise() -> Option<u64> {
    let (soft, hard) = current()?;
    let _ = ORIGINAL.set((soft, hard));
    if soft >= hard {
        return Some(soft);
    }
    let r = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit with a valid pointer to a local struct; lowering nothing.
    (unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0).then_some(hard)
}

/// The `RLIMIT_NOFILE` (soft, hard) this process started with (before [`raise`]): the
/// containers' default.
pub fn original() -> (u64, u64) {
    ORIGINAL
        .get()
        .copied()
        .or_else(current)
        .unwrap_or((1024, 4096))
}

#[cfg(test)]
mod tests {
    #[test]
    fn raising_keeps_the_original_for_containers() {
        let before = super::current().expect("getrlimit");
        let now = super::raise().expect("raise");
        assert_eq!(now, before.1);
        assert_eq!(super::original(), before);
    }
}
