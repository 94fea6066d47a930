//! Which sysctls a container may set: only those the kernel keeps per namespace, and only
//! when the container has that namespace of its own (runc's rules, which Docker relies on):
//! the IPC ones (`kernel.msg*`, `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`) with a private
//! IPC namespace, `net.*` outside the host's network namespace, `kernel.domainname` with a
//! private UTS namespace; `kernel.hostname` conflicts with the spec's hostname. Everything
//! else would change the host. berthd checks a container's sysctls with [`check`] before it
//! starts it, and the init checks them again (and resolves the file with [`path`]) so that
//! a spec from elsewhere cannot reach a host value either.

use std::path::PathBuf;

/// The IPC sysctls outside `fs.mqueue`.
const IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Which namespaces the container has of its own (not the host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Private {
    /// A network namespace other than the host's (its own or another container's).
    pub net: bool,
    /// An IPC namespace other than the host's.
    pub ipc: bool,
    /// A UTS namespace other than the host's.
    pub uts: bool,
}

/// A sysctl the container may not set; the texts are runc's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysctlError {
    /// Not a namespaced sysctl (or its namespace is the host's, for `kernel.domainname`).
    #[error("sysctl {0:?} is not in a separate kernel namespace")]
    NotNamespaced(String),
    /// An IPC sysctl in the host's IPC namespace.
    #[error("sysctl {0:?} is not allowed in the hosts ipc namespace")]
    HostIpc(String),
    /// A `net.*` sysctl in the host's network namespace.
    #[error("sysctl {0:?} not allowed in host network namespace")]
    HostNet(String),
    /// `kernel.hostname`: the spec's hostname decides.
    #[error("sysctl {0:?} is not allowed as it conflicts with the OCI \"hostname\" field")]
    Hostname(String),
    /// An empty, `.` or `..` component, or a key that is no sysctl name at all.
    #[error("sysctl {0:?} is not a valid sysctl name")]
    Invalid(String),
}

/// The key's components: split at `/` when it has one (then dots are part of names, as in
/// `net/ipv4/conf/eth0.100/forwarding`), else at `.`.
fn components(key: &str) -> Result<Vec<&str>, SysctlError> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let parts: Vec<&str> = key.split(sep).collect();
    let bad = |p: &&str| p.is_empty() || *p == "." || *p == ".." || p.contains('\0');
    if parts.len() < 2 || parts.iter().any(bad) {
        return Err(SysctlError::Invalid(key.to_string()));
    }
    Ok(parts)
}

/// Whether the container may set `key`.
pub fn check(key: &str, private: Private) -> Result<(), SysctlError> {
    let parts = components(key)?;
    let dotted = parts.join(".");
    let owned = || key.to_string();
    if IPC.contains(&dotted.as_str()) || (parts[0] == "fs" && parts[1] == "mqueue") {
        return match private.ipc {
            true => Ok(()),
            false => Err(SysctlError::HostIpc(owned())),
        };
    }
    if parts[0] == "net" {
        return match private.net {
            true => Ok(()),
            false => Err(SysctlError::HostNet(owned())),
        };
    }
    match dotted.as_str() {
        "kernel.domainname" if private.uts => Ok(()),
        "kernel.hostname" if private.uts => Err(SysctlError::Hostname(owned())),
        _ => Err(SysctlError::NotNamespaced(owned())),
    }
}

/// The identity (device, inode) of a namespace file; `None` when it cannot be read.
fn ns_id(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| (m.dev(), m.ino())).ok()
}

/// The host's namespaces, as seen by a process that is in them (berthd; the init before it
/// joins namespaces by path, when those kinds are still its parent's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostNs {
    net: Option<(u64, u64)>,
    ipc: Option<(u64, u64)>,
    uts: Option<(u64, u64)>,
}

impl HostNs {
    /// The calling process's own network, IPC and UTS namespaces.
    pub fn current() -> HostNs {
        HostNs {
            net: ns_id("/proc/self/ns/net"),
            ipc: ns_id("/proc/self/ns/ipc"),
            uts: ns_id("/proc/self/ns/uts"),
        }
    }

    /// Whether namespace file `path` of `kind` (`network`, `ipc`, `uts`) is the host's (one
    /// that cannot be compared counts as the host's).
    pub fn is_host(&self, kind: &str, path: &str) -> bool {
        let host = match kind {
            "network" => self.net,
            "ipc" => self.ipc,
            "uts" => self.uts,
            _ => None,
        };
        match (ns_id(path), host) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

/// What the spec's `linux.namespaces` give the container: a kind counts as private when it
/// is listed and, joined by path, is not the host's.
pub fn private_in(namespaces: &[serde_json::Value], host: &HostNs) -> Private {
    let own = |kind: &str| {
        namespaces.iter().any(|n| {
            n["type"] == kind
                && match n["path"].as_str() {
                    None => true,
                    Some(p) => !host.is_host(kind, p),
                }
        })
    };
    Private {
        net: own("network"),
        ipc: own("ipc"),
        uts: own("uts"),
    }
}

/// The file under `/proc/sys` for `key` (which must be valid).
pub fn path(key: &str) -> Result<PathBuf, SysctlError> {
    let mut p = PathBuf::from("/proc/sys");
    for c in components(key)? {
        p.push(c);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Private = Private {
        net: true,
        ipc: true,
        uts: true,
    };

    #[test]
    fn namespaced_ones_pass() {
        for k in [
            "kernel.shmmax",
            "kernel.shm_rmid_forced",
            "fs.mqueue.msg_max",
            "net.ipv4.ping_group_range",
            "net/ipv4/conf/eth0.100/forwarding",
            "kernel.domainname",
        ] {
            assert_eq!(check(k, ALL), Ok(()), "{k}");
        }
    }

    #[test]
    fn host_ones_are_refused_with_runcs_texts() {
        let e = check("kernel.core_pattern", ALL).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "sysctl \"kernel.core_pattern\" is not in a separate kernel namespace"
        );
        let host_net = Private { net: false, ..ALL };
        let e = check("net.ipv4.ip_forward", host_net).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        let host_ipc = Private { ipc: false, ..ALL };
        assert!(matches!(
            check("kernel.shmmax", host_ipc),
            Err(SysctlError::HostIpc(_))
        ));
        let host_uts = Private { uts: false, ..ALL };
        assert!(matches!(
            check("kernel.domainname", host_uts),
            Err(SysctlError::NotNamespaced(_))
        ));
        assert!(matches!(
            check("kernel.hostname", ALL),
            Err(SysctlError::Hostname(_))
        ));
        for k in ["kernel.modprobe", "vm.overcommit_memory", "fs.file-max"] {
            assert!(check(k, ALL).is_err(), "{k}");
        }
    }

    #[test]
    fn escapes_are_invalid() {
        for k in [
            "net.ipv4..forwarding",
            "net/../kernel/core_pattern",
            "net/ipv4/./x",
            "net",
            "",
            "/net/ipv4/ip_forward",
            "net.ipv4.",
        ] {
            assert!(matches!(check(k, ALL), Err(SysctlError::Invalid(_))), "{k}");
            assert!(path(k).is_err(), "{k}");
        }
        assert_eq!(
            path("net.ipv4.ip_forward").expect("valid"),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path("net/ipv4/conf/eth0.100/forwarding").expect("valid"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
    }

    #[test]
    fn the_init_refuses_before_writing() {
        let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").expect("read");
        for key in ["kernel.core_pattern", "net/../kernel/core_pattern"] {
            let map = serde_json::json!({ key: "|/bin/false" });
            assert!(crate::process::sysctls(&map, ALL).is_err(), "{key}");
        }
        let host_net = Private { net: false, ..ALL };
        let map = serde_json::json!({"net.ipv4.ip_forward": "1"});
        let e = crate::process::sysctls(&map, host_net).expect_err("host net");
        assert!(e.contains("not allowed in host network namespace"), "{e}");
        let after = std::fs::read_to_string("/proc/sys/kernel/core_pattern").expect("read");
        assert_eq!(before, after);
    }
}
