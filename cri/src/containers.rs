//! The container calls of the `RuntimeService`: a `CreateContainer` request turned into a
//! [`ContainerSpec`] for a [`ContainerBackend`], its [`ContainerInfo`]s back into the CRI's
//! statuses and lists (filtered by ID, pod, state and labels), and `ExecSync`.

use crate::backend::{
    BindMount, ContainerBackend, ContainerInfo, ContainerSpec, ContainerState, DeviceMapping,
    PidMode, SeccompProfile,
};
use crate::error::{CriError, CriResult};
use crate::pods::selected;
use k8s_cri::v1 as cri;
use std::collections::HashMap;

/// The seccomp profile a security context asks for: the `seccomp` field, else the deprecated
/// `seccomp_profile_path` (`""`/`unconfined`, `runtime/default`, `docker/default`,
/// `localhost/<path>`); nothing asked is unconfined, as the CRI says.
pub fn seccomp(profile: Option<cri::SecurityProfile>, path: &str) -> CriResult<SeccompProfile> {
    use cri::security_profile::ProfileType;
    if let Some(p) = profile {
        return Ok(match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => SeccompProfile::RuntimeDefault,
            Ok(ProfileType::Localhost) => SeccompProfile::Localhost(p.localhost_ref),
            _ => SeccompProfile::Unconfined,
        });
    }
    match path {
        "" | "unconfined" => Ok(SeccompProfile::Unconfined),
        "runtime/default" | "docker/default" => Ok(SeccompProfile::RuntimeDefault),
        p => match p.strip_prefix("localhost/") {
            Some(file) => Ok(SeccompProfile::Localhost(file.to_string())),
            None => Err(CriError::InvalidArgument(format!(
                "unsupported seccomp profile {p:?}: use unconfined, runtime/default or localhost/<path>"
            ))),
        },
    }
}

/// The spec of a `CreateContainer` request; `log_directory` is the pod's.
pub fn spec(req: cri::CreateContainerRequest) -> CriResult<ContainerSpec> {
    let c = req
        .config
        .ok_or_else(|| CriError::InvalidArgument("CreateContainer without a config".into()))?;
    let m = c
        .metadata
        .ok_or_else(|| CriError::InvalidArgument("the container config has no metadata".into()))?;
    let image = c.image.map(|i| i.image).unwrap_or_default();
    if m.name.is_empty() || image.is_empty() {
        return Err(CriError::InvalidArgument(
            "a container needs a name and an image".into(),
        ));
    }
    let log_dir = req
        .sandbox_config
        .map(|s| s.log_directory)
        .unwrap_or_default();
    let log_path = match (log_dir.is_empty(), c.log_path.is_empty()) {
        (_, true) => String::new(),
        (true, false) => c.log_path,
        (false, false) => format!("{}/{}", log_dir.trim_end_matches('/'), c.log_path),
    };
    let resources = crate::stats::resources(c.linux.as_ref().and_then(|l| l.resources.as_ref()))?;
    let sec = c.linux.and_then(|l| l.security_context).unwrap_or_default();
    if sec.run_as_group.is_some() && sec.run_as_user.is_none() && sec.run_as_username.is_empty() {
        return Err(CriError::InvalidArgument(
            "run_as_group is set without run_as_user or run_as_username".into(),
        ));
    }
    let mut user = sec
        .run_as_user
        .map(|u| u.value.to_string())
        .unwrap_or(sec.run_as_username);
    if let Some(g) = sec.run_as_group {
        if !user.is_empty() {
            user = format!("{user}:{}", g.value);
        }
    }
    // critest 1.26 still sends the deprecated path field.
    #[allow(deprecated)]
    let path = sec.seccomp_profile_path.clone();
    let seccomp = seccomp(sec.seccomp.clone(), &path)?;
    let pid = sec
        .namespace_options
        .as_ref()
        .map_or(PidMode::Pod, |n| crate::pods::pid_mode(n.pid, &n.target_id));
    if matches!(&pid, PidMode::Target(t) if t.is_empty()) {
        return Err(CriError::InvalidArgument(
            "the PID namespace mode TARGET needs a target container ID".into(),
        ));
    }
    let caps = sec.capabilities.unwrap_or_default();
    let propagation = |p: i32| match cri::MountPropagation::try_from(p) {
        Ok(cri::MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(cri::MountPropagation::PropagationBidirectional) => "rshared",
        _ => "rprivate",
    };
    Ok(ContainerSpec {
        pod_id: req.pod_sandbox_id,
        name: m.name,
        attempt: m.attempt,
        image,
        command: c.command,
        args: c.args,
        working_dir: c.working_dir,
        env: c
            .envs
            .into_iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect(),
        mounts: c
            .mounts
            .into_iter()
            .map(|m| BindMount {
                propagation: propagation(m.propagation).into(),
                container_path: m.container_path,
                host_path: m.host_path,
                readonly: m.readonly,
            })
            .collect(),
        labels: c.labels.into_iter().collect(),
        annotations: c.annotations.into_iter().collect(),
        log_path,
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        tty: c.tty,
        privileged: sec.privileged,
        readonly_rootfs: sec.readonly_rootfs,
        user,
        supplemental_groups: sec.supplemental_groups,
        cap_add: caps.add_capabilities,
        cap_drop: caps.drop_capabilities,
        no_new_privs: sec.no_new_privs,
        seccomp,
        // kubelet sends the lists it wants; an empty one means the runtime's defaults.
        masked_paths: Some(sec.masked_paths).filter(|p| !p.is_empty()),
        readonly_paths: Some(sec.readonly_paths).filter(|p| !p.is_empty()),
        pid,
        devices: c
            .devices
            .into_iter()
            .map(|d| DeviceMapping {
                container_path: d.container_path,
                host_path: d.host_path,
                permissions: d.permissions,
            })
            .collect(),
        resources,
    })
}

/// A bind mount's propagation (`rprivate`, `rslave`, `rshared`, or their non-recursive
/// forms) as the CRI's enum.
fn propagation_enum(p: &str) -> i32 {
    (match p.trim_start_matches('r') {
        "slave" => cri::MountPropagation::PropagationHostToContainer,
        "shared" => cri::MountPropagation::PropagationBidirectional,
        _ => cri::MountPropagation::PropagationPrivate,
    }) as i32
}

fn state(s: ContainerState) -> i32 {
    (match s {
        ContainerState::Created => cri::ContainerState::ContainerCreated,
        ContainerState::Running => cri::ContainerState::ContainerRunning,
        ContainerState::Exited => cri::ContainerState::ContainerExited,
        ContainerState::Unknown => cri::ContainerState::ContainerUnknown,
    }) as i32
}

fn hash(m: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A container's metadata.
pub(crate) fn metadata(c: &ContainerInfo) -> cri::ContainerMetadata {
    cri::ContainerMetadata {
        name: c.spec.name.clone(),
        attempt: c.spec.attempt,
    }
}

fn image(c: &ContainerInfo) -> cri::ImageSpec {
    cri::ImageSpec {
        image: c.spec.image.clone(),
        ..Default::default()
    }
}

/// `ContainerStatus`'s status.
pub fn status(c: &ContainerInfo) -> cri::ContainerStatus {
    cri::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(metadata(c)),
        state: state(c.state),
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: c.finished_at,
        exit_code: c.exit_code,
        image: Some(image(c)),
        image_ref: c.image_id.clone(),
        image_id: c.image_id.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        labels: hash(&c.spec.labels),
        annotations: hash(&c.spec.annotations),
        mounts: c
            .spec
            .mounts
            .iter()
            .map(|m| cri::Mount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
                readonly: m.readonly,
                propagation: propagation_enum(&m.propagation),
                ..Default::default()
            })
            .collect(),
        log_path: c.spec.log_path.clone(),
        ..Default::default()
    }
}

/// `ListContainers`, filtered.
pub async fn list<B: ContainerBackend>(
    b: &B,
    filter: Option<cri::ContainerFilter>,
) -> CriResult<Vec<cri::Container>> {
    let f = filter.unwrap_or_default();
    let all = b.list_containers().await?;
    Ok(all
        .iter()
        .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
        .filter(|c| f.pod_sandbox_id.is_empty() || c.spec.pod_id.starts_with(&f.pod_sandbox_id))
        .filter(|c| f.state.as_ref().is_none_or(|s| s.state == state(c.state)))
        .filter(|c| selected(&c.spec.labels, &f.label_selector))
        .map(|c| cri::Container {
            id: c.id.clone(),
            pod_sandbox_id: c.spec.pod_id.clone(),
            metadata: Some(metadata(c)),
            image: Some(image(c)),
            image_ref: c.image_id.clone(),
            image_id: c.image_id.clone(),
            state: state(c.state),
            created_at: c.created_at,
            labels: hash(&c.spec.labels),
            annotations: hash(&c.spec.annotations),
        })
        .collect())
}

/// `ContainerStatus`: NotFound for an unknown container.
pub async fn container_status<B: ContainerBackend>(
    b: &B,
    req: cri::ContainerStatusRequest,
) -> CriResult<cri::ContainerStatusResponse> {
    let c = b
        .container(&req.container_id)
        .await?
        .ok_or_else(|| CriError::NotFound(format!("container {} not found", req.container_id)))?;
    Ok(cri::ContainerStatusResponse {
        status: Some(status(&c)),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_profiles_from_the_field_or_the_deprecated_path() {
        use SeccompProfile as S;
        assert_eq!(seccomp(None, "").ok(), Some(S::Unconfined));
        assert_eq!(seccomp(None, "unconfined").ok(), Some(S::Unconfined));
        assert_eq!(
            seccomp(None, "docker/default").ok(),
            Some(S::RuntimeDefault)
        );
        assert_eq!(
            seccomp(None, "runtime/default").ok(),
            Some(S::RuntimeDefault)
        );
        assert_eq!(
            seccomp(None, "localhost//etc/p.json").ok(),
            Some(S::Localhost("/etc/p.json".into()))
        );
        assert!(seccomp(None, "/etc/p.json").is_err());
        let field = cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::Localhost as i32,
            localhost_ref: "/p".into(),
        };
        assert_eq!(
            seccomp(Some(field), "unconfined").ok(),
            Some(S::Localhost("/p".into()))
        );
    }

    /// A minimal request whose container has the security context `sec` and resources `res`.
    fn request(
        sec: cri::LinuxContainerSecurityContext,
        res: Option<cri::LinuxContainerResources>,
    ) -> cri::CreateContainerRequest {
        cri::CreateContainerRequest {
            pod_sandbox_id: "p".into(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "c".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: "busybox".into(),
                    ..Default::default()
                }),
                linux: Some(cri::LinuxContainerConfig {
                    security_context: Some(sec),
                    resources: res,
                }),
                devices: vec![cri::Device {
                    container_path: "/dev/k".into(),
                    host_path: "/dev/kmsg".into(),
                    permissions: "r".into(),
                }],
                ..Default::default()
            }),
            sandbox_config: None,
        }
    }

    #[test]
    fn pid_modes_oom_score_and_devices() {
        let ns = |pid: cri::NamespaceMode, target: &str| cri::LinuxContainerSecurityContext {
            namespace_options: Some(cri::NamespaceOption {
                pid: pid as i32,
                target_id: target.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = spec(request(Default::default(), None)).expect("spec");
        assert_eq!(s.pid, PidMode::Pod, "the CRI's default");
        assert_eq!(s.devices[0].host_path, "/dev/kmsg");
        assert_eq!(s.devices[0].permissions, "r");
        let s = spec(request(ns(cri::NamespaceMode::Node, ""), None)).expect("spec");
        assert_eq!(s.pid, PidMode::Node);
        let s = spec(request(ns(cri::NamespaceMode::Target, "abc"), None)).expect("spec");
        assert_eq!(s.pid, PidMode::Target("abc".into()));
        assert!(spec(request(ns(cri::NamespaceMode::Target, ""), None)).is_err());
        let res = |adj| {
            Some(cri::LinuxContainerResources {
                oom_score_adj: adj,
                ..Default::default()
            })
        };
        let s = spec(request(Default::default(), res(-999))).expect("spec");
        assert_eq!(s.resources.oom_score_adj, -999);
        assert!(spec(request(Default::default(), res(1001))).is_err());
    }
}
