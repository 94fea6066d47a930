//! The isolation check: namespaces distinct from the host's, the hostname, the container's own
//! root filesystem, and who the container's root is on the host.

use crate::checks::host_pid;
use crate::Suite;

/// What a runtime promises beyond the common checks.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// The container's uid 0 is the host's uid 0 (false for a user-namespaced runtime, whose
    /// root must be an unprivileged host uid).
    pub root_is_host_root: bool,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            root_is_host_root: true,
        }
    }
}

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The first (real) uid of `pid` on the host.
fn host_uid(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}

/// pid, mount, uts, ipc and net namespaces are the container's own; `--hostname` is its
/// hostname; its root may write in the image's root-owned folders; a file it writes lands in
/// its own layer (`docker diff`); uid 0 inside is host root, or not, as `expect` says.
pub fn isolation(s: &Suite<'_>, expect: Expect) {
    let rt = s.runtime;
    let id = s.detached(&["--hostname", "confhost"], &["sleep", "300"]);
    let pid = host_pid(s, &id);
    for kind in ["pid", "mnt", "uts", "ipc", "net"] {
        let (inside, host) = (ns(&pid.to_string(), kind), ns("self", kind));
        assert!(!inside.is_empty(), "[{rt}] no {kind} namespace for {pid}");
        assert_ne!(inside, host, "[{rt}] {kind} namespace is the host's");
    }
    assert_eq!(s.ok(&["exec", &id, "hostname"]), "confhost", "[{rt}]");
    let procs = s.ok(&["exec", &id, "sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
    let n: u32 = procs.parse().unwrap_or(u32::MAX);
    assert!(n <= 4, "[{rt}] the container sees {procs} processes");
    s.ok(&["exec", &id, "sh", "-c", "echo m > /tmp/conformance-marker"]);
    // The container's root owns the image's files, whoever it is on the host: it writes in
    // a root-owned 0755 folder, and what it writes is its own.
    let owner = s.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo m > /etc/conformance-marker && stat -c %u:%g /etc/conformance-marker",
    ]);
    assert_eq!(owner, "0:0", "[{rt}] owner of a file root wrote in /etc");
    let diff = s.ok(&["diff", &id]);
    for f in ["/tmp/conformance-marker", "/etc/conformance-marker"] {
        assert!(
            diff.lines().any(|l| l == format!("A {f}")),
            "[{rt}] the write of {f} is not in the container's layer: {diff}"
        );
    }
    assert_eq!(s.ok(&["exec", &id, "id", "-u"]), "0", "[{rt}] uid inside");
    let uid = host_uid(pid).expect("the init's status");
    if expect.root_is_host_root {
        assert_eq!(uid, 0, "[{rt}] container root on the host");
    } else {
        assert_ne!(uid, 0, "[{rt}] container root is host root");
    }
    s.remove(&id);
}
