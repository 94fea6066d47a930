//! Linux capabilities: names, Docker's default set, and applying a set to the calling process
//! (bounding, effective, permitted, inheritable, ambient).

/// Every capability name, in number order (`CAP_CHOWN` = 0 ...).
pub const ALL: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capabilities.
pub const DOCKER_DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Normalises `net_admin` / `NET_ADMIN` / `CAP_NET_ADMIN` to `CAP_NET_ADMIN`; `ALL` stays.
pub fn normalize(name: &str) -> String {
    let up = name.to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The number of a capability name.
pub fn number(name: &str) -> Option<u32> {
    ALL.iter().position(|c| *c == name).map(|n| n as u32)
}

/// Docker's rule: defaults, plus `add`, minus `drop` (`ALL` allowed in either).
pub fn compute(privileged: bool, add: &[String], drop: &[String]) -> Vec<String> {
    if privileged {
        return ALL.iter().map(|s| s.to_string()).collect();
    }
    let add: Vec<String> = add.iter().map(|s| normalize(s)).collect();
    let drop: Vec<String> = drop.iter().map(|s| normalize(s)).collect();
    let mut set: Vec<String> = if drop.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DOCKER_DEFAULT.iter().map(|s| s.to_string()).collect()
    };
    set.retain(|c| !drop.contains(c));
    if add.iter().any(|a| a == "ALL") {
        set = ALL
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect();
    }
    for a in add {
        if a != "ALL" && !set.contains(&a) && number(&a).is_some() {
            set.push(a);
        }
    }
    set
}

/// The highest capability the running kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The capability sets of a process (names like `CAP_CHOWN`), as in an OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Bounding set.
    pub bounding: Vec<String>,
    /// Effective set.
    pub effective: Vec<String>,
    /// Permitted set.
    pub permitted: Vec<String>,
    /// Inheritable set (empty in Docker's defaults).
    pub inheritable: Vec<String>,
    /// Ambient set.
    pub ambient: Vec<String>,
}

fn numbers(names: &[String], last: u32) -> Vec<u32> {
    names
        .iter()
        .filter_map(|c| number(c))
        .filter(|n| *n <= last)
        .collect()
}

/// Drops every capability not in `bounding` from the bounding set. Needs CAP_SETPCAP, so
/// call it before switching to a non-root user.
pub fn limit_bounding(bounding: &[String]) -> std::io::Result<()> {
    let last = last_cap();
    let bset = numbers(bounding, last);
    for cap in 0..=last {
        if !bset.contains(&cap) {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Whether `cap` is in the calling thread's bounding set.
fn in_bounding(cap: u32) -> bool {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) == 1 }
}

/// Sets the effective/permitted/inheritable sets with capset(2) and the ambient set of the
/// calling thread (after [`limit_bounding`] and the user switch, done with
/// `PR_SET_KEEPCAPS`). Capabilities the host itself does not have (outside our bounding set,
/// e.g. `--privileged` on a restricted host) are left out instead of failing.
pub fn apply(sets: &CapSets) -> std::io::Result<()> {
    let last = last_cap();
    let numbers = |names: &[String]| -> Vec<u32> {
        numbers(names, last)
            .into_iter()
            .filter(|c| in_bounding(*c))
            .collect()
    };
    let mut data = [CapData::default(); 2];
    let bit = |c: u32| ((c / 32) as usize, 1u32 << (c % 32));
    for c in numbers(&sets.effective) {
        let (i, b) = bit(c);
        data[i].effective |= b;
    }
    for c in numbers(&sets.permitted) {
        let (i, b) = bit(c);
        data[i].permitted |= b;
    }
    for c in numbers(&sets.inheritable) {
        let (i, b) = bit(c);
        data[i].inheritable |= b;
    }
    let mut hdr = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    // SAFETY: capset with a v3 header and a two-element data array, as the ABI requires.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    raise_ambient(&numbers(&sets.ambient));
    Ok(())
}

/// Raises `caps` in the ambient set (for non-root users that should keep capabilities).
fn raise_ambient(caps: &[u32]) {
    for &c in caps {
        // SAFETY: prctl with integer arguments; failures leave the set unchanged.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                c as libc::c_ulong,
                0,
                0,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask() {
        let mask: u64 = DOCKER_DEFAULT
            .iter()
            .filter_map(|c| number(c))
            .map(|n| 1u64 << n)
            .sum();
        assert_eq!(mask, 0x00000000a80425fb);
        let s = compute(false, &["NET_ADMIN".into()], &["chown".into()]);
        assert!(s.contains(&"CAP_NET_ADMIN".to_string()) && !s.contains(&"CAP_CHOWN".to_string()));
    }
}
