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

/// How the container gets one of its namespaces (network, pid, ipc, uts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetNs {
    /// A new, empty namespace (bridge/none).
    #[default]
    New,
    /// The host's.
    Host,
    /// Another container's (`/proc/PID/ns/net`, `/proc/PID/ns/pid`, ...).
    Path(String),
}

/// The same choice for any namespace kind.
pub type NsMode = NetNs;

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

/// Where `--init`'s binary appears inside the container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

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
    /// `linux.rootfsPropagation` (empty: none, the container's tree is made private); Docker
    /// asks for `shared` or `rslave` when a bind has that propagation.
    #[serde(default)]
    pub rootfs_propagation: String,
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
    /// `--cpuset-cpus` (empty: all).
    pub cpuset_cpus: String,
    /// `--cpuset-mems` (empty: all).
    pub cpuset_mems: String,
    /// `--pids-limit` (0 = none).
    pub pids_limit: i64,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size` bytes (0 = 64 MiB).
    pub shm_size: i64,
    /// Network namespace.
    pub netns: NetNs,
    /// cgroup path relative to the hierarchy roots (empty = `berth/<id>`).
    pub cgroup_path: String,
    /// `--user` as `user[:group]` (names or numbers), resolved against the rootfs's
    /// `/etc/passwd` and `/etc/group` (groups: the primary one, then memberships, then
    /// `group_add`; `HOME` from passwd if `env` has none). Used unless `uid`/`gid`/
    /// `additional_gids` are given (non-zero/non-empty), which are then taken as they are;
    /// empty with nothing given = root, resolved the same way.
    pub user: String,
    /// `--group-add` (names or numbers).
    pub group_add: Vec<String>,
    /// Masked paths override (`--security-opt systempaths=unconfined` = `Some(vec![])`).
    pub masked_paths: Option<Vec<String>>,
    /// Read-only paths override.
    pub readonly_paths: Option<Vec<String>>,
    /// `--sysctl`.
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--oom-score-adj`.
    pub oom_score_adj: i32,
    /// `--init`: the host path of a static init (tini, Docker's `docker-init`); it is bound
    /// read-only at [`INIT_PATH`] and runs the command as its child, reaping zombies and
    /// forwarding signals.
    pub init: Option<String>,
    /// `--pid` (`host`, `container:<id>` as a `/proc/PID/ns/pid` path).
    pub pid_ns: NsMode,
    /// `--ipc`.
    pub ipc_ns: NsMode,
    /// `--uts` (with `Host` the hostname is not set).
    pub uts_ns: NsMode,
    /// `--security-opt seccomp=...`: the built-in profile, none, or a profile in Docker's
    /// format (no filter at all with `privileged`).
    pub seccomp: crate::seccomp::Seccomp,
    /// `--device`: host device nodes made in the container and allowed by its cgroup.
    #[serde(default)]
    pub devices: Vec<crate::devices::Device>,
    /// The folder of the read-only mounts containers share (`shared_mounts`), named in the
    /// spec's annotations for the native runtime; empty: none.
    #[serde(default)]
    pub shared_mounts: String,
    /// berthd removes the memory cgroup folder, not the runtime
    /// (`cgroups::DEFER_MEMORY_ANNOTATION`).
    #[serde(default)]
    pub defer_memory_cgroup: bool,
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

/// Docker's default device cgroup rules: deny all, allow mknod, the standard character
/// devices, ptys and tun.
fn device_rules(privileged: bool) -> Vec<Value> {
    if privileged {
        return vec![json!({"allow": true, "access": "rwm"})];
    }
    let mut v = vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "access": "m"}),
        json!({"allow": true, "type": "b", "access": "m"}),
    ];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        v.push(
            json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}),
        );
    }
    v.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    v
}

/// The `RLIMIT_NOFILE` (soft, hard) berthd was started with, the containers' default (its
/// own soft limit is raised at start: `berth_core::nofile`).
fn own_nofile() -> (u64, u64) {
    berth_core::nofile::original()
}

/// The user the process runs as: `o.user` resolved in the rootfs, or the numeric fields.
fn process_user(o: &SpecOptions) -> Result<(crate::user::User, Option<String>), RuntimeError> {
    let numeric_given = o.uid != 0 || o.gid != 0 || !o.additional_gids.is_empty();
    if o.user.is_empty() && o.group_add.is_empty() && numeric_given {
        return Ok((
            crate::user::User {
                uid: o.uid,
                gid: o.gid,
                additional_gids: o.additional_gids.clone(),
                home: String::new(),
            },
            None,
        ));
    }
    let u = crate::user::resolve(std::path::Path::new(&o.rootfs), &o.user, &o.group_add)?;
    let home = Some(if u.home.is_empty() {
        "/".to_string()
    } else {
        u.home.clone()
    });
    Ok((u, home))
}

/// The spec as JSON (what the native runtime and bundles use). Fails only when `o.user` or
/// `o.group_add` cannot be resolved.
pub fn build_json(o: &SpecOptions) -> Result<Value, RuntimeError> {
    let (user, home) = process_user(o)?;
    let mut env = o.env.clone();
    if let Some(h) = home {
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={h}"));
        }
    }
    let caps = crate::caps::compute(o.privileged, &o.cap_add, &o.cap_drop);
    let shm = if o.shm_size > 0 { o.shm_size } else { 64 << 20 };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    let mut args = o.args.clone();
    if let Some(init) = &o.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro"]}));
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    for m in &o.mounts {
        mounts.push(json!({"destination": m.destination, "type": m.kind, "source": m.source, "options": m.options}));
    }
    let mut namespaces = Vec::new();
    for (kind, mode) in [
        ("pid", &o.pid_ns),
        ("ipc", &o.ipc_ns),
        ("uts", &o.uts_ns),
        ("mount", &NsMode::New),
        ("cgroup", &NsMode::New),
        ("network", &o.netns),
    ] {
        match mode {
            NsMode::New => namespaces.push(json!({"type": kind})),
            NsMode::Host => {}
            NsMode::Path(p) => namespaces.push(json!({"type": kind, "path": p})),
        }
    }
    let nofile = o.ulimits.iter().find(|u| u.name == "nofile");
    let (soft, hard) = own_nofile();
    let mut rlimits = vec![
        json!({"type": "RLIMIT_NOFILE", "hard": nofile.map(|u| u.hard).unwrap_or(hard), "soft": nofile.map(|u| u.soft).unwrap_or(soft)}),
    ];
    for u in o.ulimits.iter().filter(|u| u.name != "nofile") {
        rlimits.push(json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "hard": u.hard, "soft": u.soft}));
    }
    let mut rules = device_rules(o.privileged);
    rules.extend(o.devices.iter().map(crate::devices::Device::rule));
    let mut resources = json!({"devices": rules});
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
    for (key, set) in [("cpus", &o.cpuset_cpus), ("mems", &o.cpuset_mems)] {
        if !set.is_empty() {
            cpu.insert(key.into(), json!(set));
        }
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if o.pids_limit > 0 {
        resources["pids"] = json!({"limit": o.pids_limit});
    }
    let cgroups_path = match o.cgroup_path.is_empty() {
        true => format!("/{}", crate::cgroups::default_path(&o.id)),
        false => format!("/{}", o.cgroup_path.trim_start_matches('/')),
    };
    let masked = match (&o.masked_paths, o.privileged) {
        (Some(p), _) => p.clone(),
        (None, true) => Vec::new(),
        (None, false) => MASKED.iter().map(|s| s.to_string()).collect(),
    };
    let readonly = match (&o.readonly_paths, o.privileged) {
        (Some(p), _) => p.clone(),
        (None, true) => Vec::new(),
        (None, false) => READONLY.iter().map(|s| s.to_string()).collect(),
    };
    let seccomp = o
        .seccomp
        .oci(o.privileged, &caps)
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let mut user_json = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        user_json["additionalGids"] = json!(user.additional_gids);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": o.tty,
            "user": user_json,
            "args": args,
            "env": env,
            "cwd": if o.cwd.is_empty() { "/" } else { o.cwd.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits,
            "noNewPrivileges": o.no_new_privileges,
            "oomScoreAdj": o.oom_score_adj,
        },
        "root": {"path": o.rootfs, "readonly": o.readonly_rootfs},
        "hostname": if o.uts_ns == NsMode::New { o.hostname.as_str() } else { "" },
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": masked,
            "readonlyPaths": readonly,
            "resources": resources,
            "cgroupsPath": cgroups_path,
            "sysctl": o.sysctls,
            "seccomp": seccomp,
        },
    });
    if !o.rootfs_propagation.is_empty() {
        spec["linux"]["rootfsPropagation"] = json!(o.rootfs_propagation);
    }
    if !o.devices.is_empty() {
        let devices: Vec<Value> = o.devices.iter().map(crate::devices::Device::oci).collect();
        spec["linux"]["devices"] = json!(devices);
    }
    if !o.shared_mounts.is_empty() {
        spec["annotations"][crate::shared_mounts::ANNOTATION] = json!(o.shared_mounts);
    }
    if o.defer_memory_cgroup {
        spec["annotations"][crate::cgroups::DEFER_MEMORY_ANNOTATION] = json!("true");
    }
    Ok(spec)
}

/// The spec as the `oci-spec` type.
pub fn build_spec(o: &SpecOptions) -> Result<Spec, RuntimeError> {
    serde_json::from_value(build_json(o)?)
        .map_err(|e| RuntimeError::Invalid(format!("building the OCI spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SpecOptions {
        SpecOptions {
            id: "abc".into(),
            args: vec!["sh".into()],
            rootfs: "/nonexistent".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_parse_as_oci() {
        let o = SpecOptions {
            memory: 64 << 20,
            pids_limit: 20,
            ..opts()
        };
        let s = build_spec(&o).expect("spec");
        assert_eq!(
            s.process().as_ref().and_then(|p| p.args().clone()),
            Some(vec!["sh".to_string()])
        );
    }

    #[test]
    fn docker_defaults() {
        let v = build_json(&opts()).expect("spec");
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .filter_map(|m| m["destination"].as_str())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ]
        );
        assert_eq!(v["mounts"][6]["options"][4], "size=67108864");
        let caps = v["process"]["capabilities"]["bounding"]
            .as_array()
            .expect("caps");
        assert_eq!(caps.len(), 14);
        assert!(v["process"]["capabilities"]["inheritable"].is_null());
        assert_eq!(v["linux"]["maskedPaths"].as_array().map(Vec::len), Some(12));
        assert_eq!(v["linux"]["readonlyPaths"][4], "/proc/sysrq-trigger");
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "cgroup", "network"]);
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc");
        assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["process"]["user"]["uid"], 0);
        assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], false);
    }

    #[test]
    fn rootfs_propagation_only_when_asked() {
        let v = build_json(&opts()).expect("spec");
        assert!(v["linux"]["rootfsPropagation"].is_null());
        let v = build_json(&SpecOptions {
            rootfs_propagation: "rslave".into(),
            ..opts()
        })
        .expect("spec");
        assert_eq!(v["linux"]["rootfsPropagation"], "rslave");
        build_spec(&SpecOptions {
            rootfs_propagation: "shared".into(),
            ..opts()
        })
        .expect("a valid OCI spec");
    }

    #[test]
    fn privileged_host_net_and_overrides() {
        let v = build_json(&SpecOptions {
            privileged: true,
            netns: NetNs::Host,
            ..opts()
        })
        .expect("spec");
        assert_eq!(v["linux"]["maskedPaths"].as_array().map(Vec::len), Some(0));
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .map(Vec::len),
            Some(crate::caps::ALL.len())
        );
        assert!(!v["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .iter()
            .any(|n| n["type"] == "network"));
        assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], true);
        let v = build_json(&SpecOptions {
            masked_paths: Some(vec![]),
            netns: NetNs::Path("/proc/1/ns/net".into()),
            memory: 100,
            memory_swap: 0,
            cpu_quota: 150_000,
            ..opts()
        })
        .expect("spec");
        assert_eq!(v["linux"]["maskedPaths"].as_array().map(Vec::len), Some(0));
        assert_eq!(
            v["linux"]["readonlyPaths"].as_array().map(Vec::len),
            Some(5)
        );
        assert_eq!(v["linux"]["namespaces"][5]["path"], "/proc/1/ns/net");
        assert_eq!(v["linux"]["resources"]["memory"]["swap"], 200);
        assert_eq!(v["linux"]["resources"]["cpu"]["period"], 100_000);
    }
}
