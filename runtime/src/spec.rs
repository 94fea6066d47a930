//! Building the OCI runtime spec of a container with Docker's defaults.

use crate::RuntimeError;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A mount requested by the container's configuration (binds, volumes, tmpfs, files).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Path inside the container.
    pub destination: String,
    /// `bind`, `tmpfs`, ...
    pub kind: String,
    /// Host path (bind) or fs source.
    pub source: String,
    /// Options (`ro`, `rbind`, `size=...`).
    pub options: Vec<String>,
}

/// How the container gets its network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetNs {
    /// A new, empty namespace (bridge/none).
    #[default]
    New,
    /// The host's.
    Host,
    /// Another container's (`/proc/PID/ns/net`).
    Path(String),
}

/// A resource limit (`--ulimit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `nofile`, `nproc`, ...
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Everything `build_spec` needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpecOptions {
    /// The container's id.
    pub id: String,
    /// argv.
    pub args: Vec<String>,
    /// `KEY=value`.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Hostname.
    pub hostname: String,
    /// Root filesystem path.
    pub rootfs: String,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `-t`.
    pub tty: bool,
    /// Extra mounts.
    pub mounts: Vec<MountSpec>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--memory` bytes (0 = none).
    pub memory: i64,
    /// `--memory-swap` bytes (0 = default, -1 = unlimited).
    pub memory_swap: i64,
    /// CFS quota µs (from `--cpus`), 0 = none.
    pub cpu_quota: i64,
    /// CFS period µs.
    pub cpu_period: u64,
    /// `--cpu-shares`.
    pub cpu_shares: u64,
    /// `--pids-limit` (0 = none).
    pub pids_limit: i64,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size` bytes (0 = 64 MiB).
    pub shm_size: i64,
    /// Network namespace.
    pub netns: NetNs,
    /// cgroup path relative to the hierarchy roots.
    pub cgroup_path: String,
}

/// Docker's masked paths.
pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Docker's read-only paths.
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The spec as JSON (what the native runtime and bundles use).
pub fn build_json(o: &SpecOptions) -> Value {
    let caps = crate::caps::compute(o.privileged, &o.cap_add, &o.cap_drop);
    let shm = if o.shm_size > 0 { o.shm_size } else { 64 << 20 };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    for m in &o.mounts {
        mounts.push(json!({"destination": m.destination, "type": m.kind, "source": m.source, "options": m.options}));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match &o.netns {
        NetNs::New => namespaces.push(json!({"type": "network"})),
        NetNs::Host => {}
        NetNs::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    let nofile = o.ulimits.iter().find(|u| u.name == "nofile");
    let mut rlimits = vec![
        json!({"type": "RLIMIT_NOFILE", "hard": nofile.map(|u| u.hard).unwrap_or(1_048_576), "soft": nofile.map(|u| u.soft).unwrap_or(1_048_576)}),
    ];
    for u in o.ulimits.iter().filter(|u| u.name != "nofile") {
        rlimits.push(json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "hard": u.hard, "soft": u.soft}));
    }
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if o.memory > 0 {
        let swap = match o.memory_swap {
            0 => o.memory * 2,
            -1 => -1,
            s => s,
        };
        resources["memory"] = json!({"limit": o.memory, "swap": swap});
    }
    let mut cpu = serde_json::Map::new();
    if o.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(o.cpu_shares));
    }
    if o.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(o.cpu_quota));
        cpu.insert(
            "period".into(),
            json!(if o.cpu_period > 0 {
                o.cpu_period
            } else {
                100_000
            }),
        );
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if o.pids_limit > 0 {
        resources["pids"] = json!({"limit": o.pids_limit});
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": o.tty,
            "user": {"uid": o.uid, "gid": o.gid, "additionalGids": o.additional_gids},
            "args": o.args,
            "env": o.env,
            "cwd": if o.cwd.is_empty() { "/" } else { o.cwd.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps},
            "rlimits": rlimits,
            "noNewPrivileges": o.no_new_privileges,
            "oomScoreAdj": 0,
        },
        "root": {"path": o.rootfs, "readonly": o.readonly_rootfs},
        "hostname": o.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": if o.privileged { vec![] } else { MASKED.to_vec() },
            "readonlyPaths": if o.privileged { vec![] } else { READONLY.to_vec() },
            "resources": resources,
            "cgroupsPath": o.cgroup_path,
        },
    })
}

/// The spec as the `oci-spec` type.
pub fn build_spec(o: &SpecOptions) -> Result<Spec, RuntimeError> {
    serde_json::from_value(build_json(o))
        .map_err(|e| RuntimeError::Invalid(format!("building the OCI spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_as_oci() {
        let o = SpecOptions {
            args: vec!["sh".into()],
            rootfs: "/r".into(),
            memory: 64 << 20,
            pids_limit: 20,
            ..Default::default()
        };
        let s = build_spec(&o).expect("spec");
        assert_eq!(
            s.process().as_ref().and_then(|p| p.args().clone()),
            Some(vec!["sh".to_string()])
        );
    }
}
