//! `/version` and `/info` bodies, with Docker's field names. Every field defaults so that
//! replies of other daemons (or older berths) parse too.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Version {
    /// `{"Name": "berth"}`; the CLI prints it as `Server: <name>`.
    pub platform: Platform,
    /// The engine component (and others).
    pub components: Vec<ComponentVersion>,
    /// Server version.
    pub version: String,
    /// Highest API version served.
    pub api_version: String,
    /// Lowest API version served.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// Source revision.
    pub git_commit: String,
    /// Docker reports its Go version; berth the Rust toolchain.
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`.
    pub arch: String,
    /// Kernel release.
    pub kernel_version: String,
    /// Whether experimental features are on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub experimental: bool,
    /// When the server was built.
    pub build_time: String,
}

/// `Platform` in `/version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Platform {
    /// Product name.
    pub name: String,
}

/// One entry of `Components`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ComponentVersion {
    /// `Engine`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Free-form details (ApiVersion, MinAPIVersion, GitCommit, GoVersion, Os, Arch, ...).
    pub details: BTreeMap<String, String>,
}

/// `GET /info`. Only the fields berth fills; unknown fields of other daemons are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Info {
    /// Persistent daemon id.
    #[serde(rename = "ID")]
    pub id: String,
    /// All containers.
    pub containers: u64,
    /// Running containers.
    pub containers_running: u64,
    /// Paused containers.
    pub containers_paused: u64,
    /// Stopped containers.
    pub containers_stopped: u64,
    /// Images.
    pub images: u64,
    /// Storage driver name.
    pub driver: String,
    /// Storage driver status lines (`[key, value]`).
    pub driver_status: Vec<[String; 2]>,
    /// Plugins by kind.
    pub plugins: PluginsInfo,
    /// berth's loaded driver plugins (berth extension).
    pub berth_plugins: Vec<BerthPlugin>,
    /// Memory limits supported.
    pub memory_limit: bool,
    /// Swap limits supported.
    pub swap_limit: bool,
    /// CFS period supported.
    pub cpu_cfs_period: bool,
    /// CFS quota supported.
    pub cpu_cfs_quota: bool,
    /// CPU shares supported.
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    /// cpusets supported.
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    /// pids limit supported.
    pub pids_limit: bool,
    /// OOM-kill disabling supported.
    pub oom_kill_disable: bool,
    /// IPv4 forwarding enabled.
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    /// Debug mode.
    pub debug: bool,
    /// Open descriptors of the daemon.
    #[serde(rename = "NFd")]
    pub nfd: u64,
    /// Docker's goroutine count; berth reports its thread count.
    #[serde(rename = "NGoroutines")]
    pub ngoroutines: u64,
    /// Server time, RFC 3339 with nanoseconds.
    pub system_time: String,
    /// Default log driver.
    pub logging_driver: String,
    /// `cgroupfs`.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// Live `/events` listeners.
    #[serde(rename = "NEventsListener")]
    pub nevents_listener: u64,
    /// Kernel release.
    pub kernel_version: String,
    /// `PRETTY_NAME` of the host's os-release.
    pub operating_system: String,
    /// `VERSION_ID` of the host's os-release.
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `x86_64`, `aarch64`.
    pub architecture: String,
    /// Registry defaults.
    pub index_server_address: String,
    /// Registry configuration.
    pub registry_config: RegistryConfig,
    /// CPUs.
    #[serde(rename = "NCPU")]
    pub ncpu: u64,
    /// Bytes of RAM.
    pub mem_total: u64,
    /// Data root.
    pub docker_root_dir: String,
    /// Proxies of the daemon's environment.
    pub http_proxy: String,
    /// Proxies of the daemon's environment.
    pub https_proxy: String,
    /// Proxies of the daemon's environment.
    pub no_proxy: String,
    /// Host name.
    pub name: String,
    /// Daemon labels.
    pub labels: Vec<String>,
    /// Experimental build.
    pub experimental_build: bool,
    /// Server version.
    pub server_version: String,
    /// Configured runtimes.
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    /// Default runtime.
    pub default_runtime: String,
    /// Swarm state (always inactive).
    pub swarm: SwarmInfo,
    /// Live restore.
    pub live_restore_enabled: bool,
    /// Isolation (Windows only; empty).
    pub isolation: String,
    /// `name=...` security options.
    pub security_options: Vec<String>,
    /// Warnings the CLI prints at the end.
    pub warnings: Vec<String>,
}

/// `Plugins` in `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginsInfo {
    /// Volume drivers.
    pub volume: Vec<String>,
    /// Network drivers.
    pub network: Vec<String>,
    /// Authorization plugins (null).
    pub authorization: Option<Vec<String>>,
    /// Log drivers.
    pub log: Vec<String>,
}

/// One loaded berth plugin driver (berth extension of `/info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BerthPlugin {
    /// Plugin (library) name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// `storage`, `network`, `registry`, `runtime`.
    pub kind: String,
    /// Driver name.
    pub driver: String,
    /// Library file.
    pub library: String,
}

/// `RegistryConfig` in `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RegistryConfig {
    /// Insecure registry networks.
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    /// Per-registry settings.
    pub index_configs: BTreeMap<String, IndexInfo>,
    /// Pull-through mirrors.
    pub mirrors: Vec<String>,
}

/// One registry's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IndexInfo {
    /// Registry host.
    pub name: String,
    /// Its mirrors.
    pub mirrors: Vec<String>,
    /// TLS verification on.
    pub secure: bool,
    /// Docker Hub.
    pub official: bool,
}

/// One runtime in `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeInfo {
    /// Binary.
    pub path: String,
    /// Extra arguments.
    #[serde(rename = "runtimeArgs", skip_serializing_if = "Vec::is_empty")]
    pub runtime_args: Vec<String>,
}

/// `Swarm` in `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmInfo {
    /// Node id (empty).
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// Node address (empty).
    pub node_addr: String,
    /// `inactive`.
    pub local_node_state: String,
    /// Manager?
    pub control_available: bool,
    /// Error text.
    pub error: String,
    /// Managers (null).
    pub remote_managers: Option<Vec<String>>,
}
