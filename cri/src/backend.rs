//! What the CRI server needs from the engine under it: narrow traits the daemon implements
//! over its own services (the image store and pull service, later the container services and
//! events), in CRI-neutral terms. Nothing here names gRPC, protobuf or HTTP, so the daemon
//! implements them without knowing either wire, and this crate knows nothing of the daemon.

use crate::error::CriResult;
use std::future::Future;

/// An image as the engine's store holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRecord {
    /// `sha256:<hex>` (the config digest).
    pub id: String,
    /// Fully qualified tags (`docker.io/library/busybox:latest`).
    pub repo_tags: Vec<String>,
    /// Fully qualified digests (`docker.io/library/busybox@sha256:…`).
    pub repo_digests: Vec<String>,
    /// The size of its layers, bytes.
    pub size: u64,
    /// The image config's `User` (`""`, `1000`, `1000:1000`, `nobody`, `nobody:grp`).
    pub user: String,
    /// The image's config document (JSON), for `ImageStatus`'s verbose info.
    pub config_json: String,
}

/// Registry credentials a pull carries (already decoded from the CRI's `auth` field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name (empty: anonymous, or a token below).
    pub username: String,
    /// Password.
    pub password: String,
    /// An OAuth identity (refresh) token.
    pub identity_token: String,
    /// A bearer token for the registry itself.
    pub registry_token: String,
}

/// How much of a filesystem the engine's images use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsUsage {
    /// Where the filesystem holding the images is mounted (the storage driver's folder).
    pub mountpoint: String,
    /// Bytes the images use there.
    pub used_bytes: u64,
    /// Inodes the images use there.
    pub inodes_used: u64,
}

/// The cgroup driver the engine places containers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    /// cgroupfs (berth's own `berth/<id>` cgroups).
    Cgroupfs,
    /// systemd slices and scopes.
    Systemd,
}

/// One condition of `Status` (`RuntimeReady`, `NetworkReady`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// Whether it holds.
    pub ready: bool,
    /// A CamelCase reason when it does not (`NetworkPluginNotReady`).
    pub reason: String,
    /// A human-readable message.
    pub message: String,
}

/// The engine's health, as `Status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// `RuntimeReady`: containers can be run.
    pub runtime: Condition,
    /// `NetworkReady`: pods can get their network.
    pub network: Condition,
    /// Verbose information (key → JSON text), shown by `crictl info`.
    pub info: Vec<(String, String)>,
}

/// The image side of the engine: its one image store, shared with every other front end
/// (an image pulled through the CRI is the same image the Docker API shows).
pub trait ImageBackend: Send + Sync + 'static {
    /// Every image.
    fn list_images(&self) -> impl Future<Output = CriResult<Vec<ImageRecord>>> + Send;
    /// The image a reference (name, name:tag, name@digest, full or short ID) names, if any.
    fn image(&self, reference: &str)
        -> impl Future<Output = CriResult<Option<ImageRecord>>> + Send;
    /// Pulls `reference` with `auth` through the engine's registry client; answers the
    /// image's ID.
    fn pull_image(
        &self,
        reference: &str,
        auth: RegistryAuth,
    ) -> impl Future<Output = CriResult<String>> + Send;
    /// Removes the image `reference` names with all its tags; an absent image is no error
    /// (the CRI's removal is idempotent).
    fn remove_image(&self, reference: &str) -> impl Future<Output = CriResult<()>> + Send;
    /// The filesystems the images use.
    fn image_fs(&self) -> impl Future<Output = CriResult<Vec<FsUsage>>> + Send;
}

/// The runtime side's engine-wide facts.
pub trait RuntimeBackend: Send + Sync + 'static {
    /// The engine's version (`runtime_version` of `Version`).
    fn engine_version(&self) -> String;
    /// Readiness of the runtime and the pod network.
    fn health(&self) -> impl Future<Output = Health> + Send;
    /// The cgroup driver.
    fn cgroup_driver(&self) -> CgroupDriver;
    /// Called as each CRI request arrives (the engine may track its activity, e.g. to give
    /// memory back once idle).
    fn on_request(&self) {}
}

/// A pod's DNS settings (`resolv.conf` of its containers).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodDns {
    /// Name servers.
    pub servers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// `options` lines.
    pub options: Vec<String>,
}

/// A port of the pod published on the node (`port_mappings`; CNI's portmap plugin does it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PortMapping {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The port inside the pod.
    pub container_port: i32,
    /// The port on the node (0: none, the port is only declared).
    pub host_port: i32,
    /// The node address it is published on (empty: all).
    pub host_ip: String,
}

/// What a pod sandbox is asked to be.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.attempt`.
    pub attempt: u32,
    /// The pod's hostname (its UTS namespace's; empty: the node's).
    pub hostname: String,
    /// Where its containers' logs go (`log_directory`).
    pub log_directory: String,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// DNS.
    pub dns: PodDns,
    /// `hostNetwork`: the host's network (and UTS) namespace.
    pub host_network: bool,
    /// `hostIPC`: the host's IPC namespace.
    pub host_ipc: bool,
    /// The PID namespace of its containers: the pod's own (the CRI's default), one per
    /// container, or the host's (`hostPID`).
    pub pid: PidMode,
    /// Namespaced sysctls for the pod's containers (`linux.sysctls`).
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// Ports published on the node.
    pub port_mappings: Vec<PortMapping>,
    /// The cgroup its containers' cgroups are made under (`linux.cgroup_parent`, e.g.
    /// `/kubepods/besteffort/pod<uid>` from kubelet with the cgroupfs driver; empty: the
    /// runtime's default).
    pub cgroup_parent: String,
    /// The `RunPodSandbox` config as it came, as JSON (the verbose status shows it).
    pub config: serde_json::Value,
}

/// Whose PID namespace a pod's (or one container's) processes are in: the CRI's
/// `NamespaceMode` for `pid`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PidMode {
    /// The pod's own, shared by its containers (its init is PID 1).
    #[default]
    Pod,
    /// One of the container's own (it is PID 1 there).
    Container,
    /// The host's (`hostPID`).
    Node,
    /// That of another container of the pod (its ID; containers only).
    Target(String),
}

/// A pod sandbox as the engine knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// Its ID (64 hex).
    pub id: String,
    /// What it was asked to be.
    pub spec: PodSpec,
    /// Ready (namespaces held) or not (stopped).
    pub ready: bool,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// Its address (IPv4 first; empty: none but loopback, or the host's network).
    pub ip: String,
    /// Its other addresses (e.g. the IPv6 one of a dual-stack network).
    pub additional_ips: Vec<String>,
    /// The host PID of the process that holds it (its PID namespace's init; 0: none).
    pub pid: i32,
    /// The runtime its containers run on.
    pub runtime: String,
    /// The result of its network's CNI ADD, while attached.
    pub cni_result: Option<serde_json::Value>,
}

/// The pod side of the engine: sandboxes that hold the namespaces a pod's containers share.
pub trait PodBackend: Send + Sync + 'static {
    /// Makes a pod sandbox; answers its ID.
    fn run_pod(&self, spec: PodSpec) -> impl Future<Output = CriResult<String>> + Send;
    /// Stops a pod's containers and releases its namespaces; a missing or stopped pod is no
    /// error.
    fn stop_pod(&self, id: &str) -> impl Future<Output = CriResult<()>> + Send;
    /// Removes a pod and its containers; a missing pod is no error.
    fn remove_pod(&self, id: &str) -> impl Future<Output = CriResult<()>> + Send;
    /// The pod an ID (or a unique prefix of one) names.
    fn pod(&self, id: &str) -> impl Future<Output = CriResult<Option<PodInfo>>> + Send;
    /// Every pod.
    fn list_pods(&self) -> impl Future<Output = CriResult<Vec<PodInfo>>> + Send;
}

/// A bind mount a container asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindMount {
    /// Where it appears in the container.
    pub container_path: String,
    /// The host path.
    pub host_path: String,
    /// Read-only.
    pub readonly: bool,
    /// `private`, `rslave` or `rshared`.
    pub propagation: String,
}

/// What a container is asked to be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The pod sandbox it belongs to.
    pub pod_id: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.attempt`.
    pub attempt: u32,
    /// The image, as the request named it.
    pub image: String,
    /// The entrypoint (`command`; empty: the image's).
    pub command: Vec<String>,
    /// Its arguments (`args`; empty: the image's).
    pub args: Vec<String>,
    /// Working directory (empty: the image's).
    pub working_dir: String,
    /// Environment, `KEY=value`.
    pub env: Vec<String>,
    /// Bind mounts.
    pub mounts: Vec<BindMount>,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The log file, absolute (the pod's log directory joined with the request's path), or
    /// empty for none.
    pub log_path: String,
    /// Keep stdin open.
    pub stdin: bool,
    /// Close stdin after the first attach.
    pub stdin_once: bool,
    /// A terminal.
    pub tty: bool,
    /// Privileged.
    pub privileged: bool,
    /// Read-only root filesystem.
    pub readonly_rootfs: bool,
    /// `user[:group]` to run as (empty: the image's).
    pub user: String,
    /// Supplementary group IDs.
    pub supplemental_groups: Vec<i64>,
    /// Capabilities added and dropped.
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// `no_new_privs`.
    pub no_new_privs: bool,
    /// The seccomp profile.
    pub seccomp: SeccompProfile,
    /// Paths to mask (none: the runtime's defaults).
    pub masked_paths: Option<Vec<String>>,
    /// Paths to make read-only (none: the runtime's defaults).
    pub readonly_paths: Option<Vec<String>>,
    /// Its PID namespace.
    pub pid: PidMode,
    /// Host devices it is given.
    pub devices: Vec<DeviceMapping>,
    /// Linux resources (cgroup limits, OOM score).
    pub resources: crate::backend_stats::Resources,
}

/// A host device a container is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceMapping {
    /// Where it appears in the container.
    pub container_path: String,
    /// The host's device node.
    pub host_path: String,
    /// The cgroup access (some of `r`, `w`, `m`; empty: all).
    pub permissions: String,
}

/// A container's seccomp profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompProfile {
    /// None at all (the CRI's default when nothing is asked for).
    #[default]
    Unconfined,
    /// The runtime's default profile.
    RuntimeDefault,
    /// A profile file on the node (an absolute path).
    Localhost(String),
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, never started.
    #[default]
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// Unknown.
    Unknown,
}

/// A container as the engine knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Its ID.
    pub id: String,
    /// What it was asked to be (`pod_id`, `name`, `attempt`, `image`, labels, annotations,
    /// log path and mounts are kept).
    pub spec: ContainerSpec,
    /// The image ID it runs.
    pub image_id: String,
    /// State.
    pub state: ContainerState,
    /// Times, ns since the epoch (0: not yet).
    pub created_at: i64,
    /// Started.
    pub started_at: i64,
    /// Finished.
    pub finished_at: i64,
    /// Exit code (when exited).
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled` for an exited container.
    pub reason: String,
    /// A message (the start error).
    pub message: String,
}

/// What an `ExecSync` gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its standard output (capped).
    pub stdout: Vec<u8>,
    /// Its standard error (capped).
    pub stderr: Vec<u8>,
    /// Its exit code.
    pub exit_code: i32,
}

/// The container side of the engine: the same containers the Docker API shows, joined to
/// their pod's namespaces.
pub trait ContainerBackend: Send + Sync + 'static {
    /// Creates a container in a ready pod; answers its ID.
    fn create_container(
        &self,
        spec: ContainerSpec,
    ) -> impl Future<Output = CriResult<String>> + Send;
    /// Starts a created container.
    fn start_container(&self, id: &str) -> impl Future<Output = CriResult<()>> + Send;
    /// Stops a container, killing it after `timeout` seconds; a stopped one is no error.
    fn stop_container(&self, id: &str, timeout: i64) -> impl Future<Output = CriResult<()>> + Send;
    /// Removes a container (stopping it first); a missing one is no error.
    fn remove_container(&self, id: &str) -> impl Future<Output = CriResult<()>> + Send;
    /// The container an ID (or a unique prefix) names, if it belongs to a pod.
    fn container(&self, id: &str) -> impl Future<Output = CriResult<Option<ContainerInfo>>> + Send;
    /// Every container of every pod.
    fn list_containers(&self) -> impl Future<Output = CriResult<Vec<ContainerInfo>>> + Send;
    /// Runs `cmd` in a running container and waits for it, at most `timeout` seconds
    /// (0: no limit).
    fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> impl Future<Output = CriResult<ExecOutput>> + Send;
}
