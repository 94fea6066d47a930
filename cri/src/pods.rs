//! The pod sandbox calls of the `RuntimeService`: the CRI's requests turned into
//! [`PodSpec`]s for a [`PodBackend`], and its [`PodInfo`]s back into the CRI's statuses and
//! lists (with the filters kubelet and crictl send: ID, state, label selector).

use crate::backend::{PidMode, PodBackend, PodDns, PodInfo, PodSpec, PortMapping};
use crate::error::{CriError, CriResult};
use k8s_cri::v1 as cri;
use std::collections::{BTreeMap, HashMap};

fn btree(m: HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

fn hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The spec a `RunPodSandbox` config asks for.
pub fn spec(c: cri::PodSandboxConfig) -> CriResult<PodSpec> {
    let config = serde_json::to_value(&c).unwrap_or_default();
    let m = c.metadata.ok_or_else(|| {
        CriError::InvalidArgument("the pod sandbox config has no metadata".into())
    })?;
    if m.name.is_empty() {
        return Err(CriError::InvalidArgument(
            "the pod sandbox has no name".into(),
        ));
    }
    let ns = c
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    let sysctls = c
        .linux
        .as_ref()
        .map(|l| btree(l.sysctls.clone()))
        .unwrap_or_default();
    let cgroup_parent = c
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.clone())
        .unwrap_or_default();
    let node = cri::NamespaceMode::Node as i32;
    let dns = c.dns_config.unwrap_or_default();
    let port_mappings = c
        .port_mappings
        .iter()
        .map(|p| PortMapping {
            protocol: cri::Protocol::try_from(p.protocol)
                .unwrap_or(cri::Protocol::Tcp)
                .as_str_name()
                .to_ascii_lowercase(),
            container_port: p.container_port,
            host_port: p.host_port,
            host_ip: p.host_ip.clone(),
        })
        .collect();
    Ok(PodSpec {
        name: m.name,
        uid: m.uid,
        namespace: m.namespace,
        attempt: m.attempt,
        hostname: c.hostname,
        log_directory: c.log_directory,
        labels: btree(c.labels),
        annotations: btree(c.annotations),
        dns: PodDns {
            servers: dns.servers,
            searches: dns.searches,
            options: dns.options,
        },
        host_network: ns.is_some_and(|n| n.network == node),
        host_ipc: ns.is_some_and(|n| n.ipc == node),
        pid: pid_mode(ns.map_or(0, |n| n.pid), ""),
        sysctls,
        port_mappings,
        cgroup_parent,
        config,
    })
}

/// The PID namespace a `NamespaceMode` (and, for `TARGET`, a container ID) asks for; an
/// unknown value is the CRI's default, the pod's.
pub fn pid_mode(mode: i32, target: &str) -> PidMode {
    match cri::NamespaceMode::try_from(mode) {
        Ok(cri::NamespaceMode::Container) => PidMode::Container,
        Ok(cri::NamespaceMode::Node) => PidMode::Node,
        Ok(cri::NamespaceMode::Target) => PidMode::Target(target.to_string()),
        _ => PidMode::Pod,
    }
}

/// A `PidMode` as the CRI's `NamespaceMode`.
fn pid_enum(p: &PidMode) -> i32 {
    (match p {
        PidMode::Pod => cri::NamespaceMode::Pod,
        PidMode::Container => cri::NamespaceMode::Container,
        PidMode::Node => cri::NamespaceMode::Node,
        PidMode::Target(_) => cri::NamespaceMode::Target,
    }) as i32
}

/// A pod's metadata.
pub(crate) fn metadata(s: &PodSpec) -> cri::PodSandboxMetadata {
    cri::PodSandboxMetadata {
        name: s.name.clone(),
        uid: s.uid.clone(),
        namespace: s.namespace.clone(),
        attempt: s.attempt,
    }
}

fn state(p: &PodInfo) -> i32 {
    if p.ready {
        cri::PodSandboxState::SandboxReady as i32
    } else {
        cri::PodSandboxState::SandboxNotready as i32
    }
}

fn mode(host: bool, pod: cri::NamespaceMode) -> i32 {
    if host {
        cri::NamespaceMode::Node as i32
    } else {
        pod as i32
    }
}

/// `PodSandboxStatus`'s status.
pub fn status(p: &PodInfo) -> cri::PodSandboxStatus {
    let s = &p.spec;
    cri::PodSandboxStatus {
        id: p.id.clone(),
        metadata: Some(metadata(s)),
        state: state(p),
        created_at: p.created_at,
        network: Some(cri::PodSandboxNetworkStatus {
            ip: p.ip.clone(),
            additional_ips: p
                .additional_ips
                .iter()
                .map(|ip| cri::PodIp { ip: ip.clone() })
                .collect(),
        }),
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: Some(cri::NamespaceOption {
                    network: mode(s.host_network, cri::NamespaceMode::Pod),
                    pid: pid_enum(&s.pid),
                    ipc: mode(s.host_ipc, cri::NamespaceMode::Pod),
                    ..Default::default()
                }),
            }),
        }),
        labels: hash(&s.labels),
        annotations: hash(&s.annotations),
        runtime_handler: String::new(),
    }
}

/// Whether `labels` has every pair of `selector`.
pub fn selected(labels: &BTreeMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `ListPodSandbox`, filtered.
pub async fn list<B: PodBackend>(
    b: &B,
    filter: Option<cri::PodSandboxFilter>,
) -> CriResult<Vec<cri::PodSandbox>> {
    let f = filter.unwrap_or_default();
    let pods = b.list_pods().await?;
    Ok(pods
        .iter()
        .filter(|p| f.id.is_empty() || p.id.starts_with(&f.id))
        .filter(|p| f.state.as_ref().is_none_or(|s| s.state == state(p)))
        .filter(|p| selected(&p.spec.labels, &f.label_selector))
        .map(|p| cri::PodSandbox {
            id: p.id.clone(),
            metadata: Some(metadata(&p.spec)),
            state: state(p),
            created_at: p.created_at,
            labels: hash(&p.spec.labels),
            annotations: hash(&p.spec.annotations),
            runtime_handler: String::new(),
        })
        .collect())
}

/// A pod's verbose `info` document, shaped as containerd's (`SandboxInfo`: the holding
/// process's PID and state, whether its network namespace is gone, the runtime, the config as
/// given, the CNI result); berth has no sandbox image, snapshot or OCI spec, so those are
/// empty. A pod that is not ready has no process: as containerd's, whose sandbox task is
/// deleted once it exits, its PID is 0 and its process status `deleted`.
fn verbose_info(p: &PodInfo) -> serde_json::Value {
    serde_json::json!({
        "pid": if p.ready { p.pid } else { 0 },
        "processStatus": if p.ready { "running" } else { "deleted" },
        "netNamespaceClosed": !p.ready && !p.spec.host_network,
        "image": "",
        "snapshotKey": "",
        "snapshotter": "",
        "runtimeHandler": "",
        "runtimeType": p.runtime,
        "runtimeOptions": null,
        "config": p.spec.config,
        "runtimeSpec": null,
        "cniResult": p.cni_result,
    })
}

/// `PodSandboxStatus`: NotFound for an unknown pod, as kubelet expects.
pub async fn pod_status<B: PodBackend>(
    b: &B,
    req: cri::PodSandboxStatusRequest,
) -> CriResult<cri::PodSandboxStatusResponse> {
    let p = b.pod(&req.pod_sandbox_id).await?.ok_or_else(|| {
        CriError::NotFound(format!("pod sandbox {} not found", req.pod_sandbox_id))
    })?;
    let info = if req.verbose {
        HashMap::from([("info".to_string(), verbose_info(&p).to_string())])
    } else {
        HashMap::new()
    };
    Ok(cri::PodSandboxStatusResponse {
        status: Some(status(&p)),
        info,
        ..Default::default()
    })
}
