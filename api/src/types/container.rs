//! Container bodies: the create request (`Config` + `HostConfig` + `NetworkingConfig`),
//! inspect (`ContainerJSON`), list (`ContainerSummary`), wait, exec and top replies, with
//! Docker's field names. Every field defaults and unknown fields are ignored, so bodies of
//! the docker CLI, docker-py and other daemons parse.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use super::container_state::ContainerState;
pub use super::network::{EndpointSettings, NetworkSettings};

/// Reads `null` as the default value (clients send `"LogConfig": null` and the like).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `Config` of a container (also the top level of the create body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `{"80/tcp": {}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<super::health::HealthConfig>,
    /// The image as the user named it.
    pub image: String,
    /// `{"/data": {}}`.
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub network_disabled: bool,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    pub on_build: Option<Vec<String>>,
    /// Every other field a client sent, kept as sent: Docker round-trips them in inspect
    /// (`MacAddress`, `ArgsEscaped`, ...), and berth interprets none of them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `""`, `no`, `always`, `on-failure`, `unless-stopped`.
    pub name: String,
    pub maximum_retry_count: i64,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    /// `json-file`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

/// One host port binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// `HostConfig.Mounts[]` (`--mount`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<Value>,
}

/// `HostConfig.Ulimits[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `HostConfig` (the fields berth acts on; the rest round-trips through `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    #[serde(deserialize_with = "nullable")]
    pub log_config: LogConfig,
    pub network_mode: String,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    #[serde(deserialize_with = "nullable")]
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub volume_driver: String,
    pub volumes_from: Option<Vec<String>>,
    pub console_size: Option<[u32; 2]>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    /// Legacy links: `name[:alias]` as sent, `/target:/container/alias` as dockerd shows them.
    pub links: Option<Vec<String>>,
    pub ipc_mode: String,
    pub pid_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub shm_size: i64,
    pub runtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<Ulimit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    pub oom_score_adj: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<BTreeMap<String, String>>,
    /// Paths masked in the container (none: Docker's default list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only in the container (none: Docker's default list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly_paths: Option<Vec<String>>,
    /// The cgroup the container's cgroup is made under (`--cgroup-parent`; empty: the
    /// daemon's default), as sent.
    pub cgroup_parent: String,
    /// Everything else a client sent (`MemorySwappiness`, `CgroupnsMode`, `Devices`, ...),
    /// kept as sent: Docker round-trips these in inspect.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `NetworkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

/// `POST /containers/create` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreate {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(deserialize_with = "nullable")]
    pub host_config: HostConfig,
    #[serde(deserialize_with = "nullable")]
    pub networking_config: NetworkingConfig,
}

/// `POST /containers/create` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

/// `{"Id": ...}`: the reply of `POST /containers/{id}/exec` and `POST /commit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IdResponse {
    pub id: String,
}

/// One entry of `Mounts` in inspect and list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerJson {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub state: ContainerState,
    /// The image id (`sha256:...`).
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    /// `/name`.
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub host_config: HostConfig,
    #[serde(deserialize_with = "nullable")]
    pub graph_driver: super::image::GraphDriver,
    #[serde(deserialize_with = "nullable")]
    pub mounts: Vec<MountPoint>,
    #[serde(deserialize_with = "nullable")]
    pub config: ContainerConfig,
    #[serde(deserialize_with = "nullable")]
    pub network_settings: NetworkSettings,
}

/// A port of a container in `ContainerSummary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Port {
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    pub private_port: u16,
    #[serde(skip_serializing_if = "is_zero")]
    pub public_port: u16,
    #[serde(rename = "Type")]
    pub kind: String,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

/// One element of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: Value,
    pub network_settings: Value,
    pub mounts: Vec<MountPoint>,
}

/// `POST /containers/{id}/wait` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitResponse {
    pub status_code: i64,
    pub error: Option<WaitError>,
}

/// `Error` of a wait reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitError {
    pub message: String,
}

/// `GET /containers/{id}/top` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// `GET /containers/{id}/changes` element (Kind 0 modified, 1 added, 2 deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// `POST /containers/prune` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainersPruneResponse {
    pub containers_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

/// `POST /containers/{id}/exec` body (`null` members read as their defaults, as Docker's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    #[serde(deserialize_with = "nullable")]
    pub user: String,
    #[serde(deserialize_with = "nullable")]
    pub privileged: bool,
    #[serde(deserialize_with = "nullable")]
    pub tty: bool,
    pub console_size: Option<[u32; 2]>,
    #[serde(deserialize_with = "nullable")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "nullable")]
    pub attach_stderr: bool,
    #[serde(deserialize_with = "nullable")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "nullable")]
    pub detach: bool,
    /// docker-py sends it as `detachKeys` (Go's decoder ignores the case).
    #[serde(deserialize_with = "nullable", alias = "detachKeys")]
    pub detach_keys: String,
    pub env: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub working_dir: String,
    #[serde(deserialize_with = "nullable")]
    pub cmd: Vec<String>,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStart {
    pub detach: bool,
    pub tty: bool,
    pub console_size: Option<[u32; 2]>,
}

/// `GET /exec/{id}/json` reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub pid: i64,
    pub process_config: ExecProcessConfig,
    pub can_remove: bool,
    pub detach_keys: String,
}

/// `ProcessConfig` of an exec's inspect (lower-case names, as Docker's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecProcessConfig {
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
    pub privileged: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_create_body() {
        let body = r#"{"Hostname":"","Tty":true,"Cmd":["sh"],"Image":"busybox","Volumes":{},"Entrypoint":null,
            "HostConfig":{"Binds":null,"ConsoleSize":[40,120],"AutoRemove":true,"NetworkMode":"default",
            "RestartPolicy":{"Name":"no","MaximumRetryCount":0},"MemorySwappiness":-1,"PortBindings":{}},
            "NetworkingConfig":{"EndpointsConfig":{"default":{}}},"Unknown":1}"#;
        let c: ContainerCreate = serde_json::from_str(body).expect("test");
        assert_eq!(c.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(c.host_config.console_size, Some([40, 120]));
        assert!(c.host_config.auto_remove);
        assert_eq!(
            c.host_config.extra.get("MemorySwappiness"),
            Some(&serde_json::json!(-1))
        );
    }

    #[test]
    fn parses_docker_py_create_body() {
        let body = r#"{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"NetworkMode":"default","LogConfig":null}}"#;
        let c: ContainerCreate = serde_json::from_str(body).expect("test");
        assert_eq!(c.config.image, "busybox");
        assert_eq!(c.host_config.log_config, LogConfig::default());
    }
}
