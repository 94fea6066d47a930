//! A pod's network through CNI, as containerd and CRI-O give it: at RunPodSandbox the node's
//! network configuration (the first file of the `cri` section's `cni-conf-dir`, plugins from
//! `cni-bin-dir`) is run (`ADD`) for the pod's pinned network namespace, interface `eth0`,
//! with kubelet's `K8S_POD_*` CNI_ARGS and the pod's host ports as the `portMappings`
//! capability; the result's addresses are the pod's IPs. What `DEL` needs later — the
//! configuration as it was, the arguments and the ADD's result — is kept in the pod's record
//! ([`PodNetwork`]), so StopPodSandbox can detach the pod even after a berthd restart or a
//! change of the configuration folder. Without any configuration, `NetworkReady` is false
//! (reason `NetworkPluginNotReady`, as containerd) and pods keep a loopback-only namespace.

use super::config::CriConfig;
use super::pods::PodRecord;
use berth_cni::{Attachment, Cni, CniError, NetworkList};
use berth_cri::backend::Condition;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The pod's interface, as kubelet's runtimes name it.
pub const IFNAME: &str = "eth0";
/// How long one plugin run may take (a hang guard: bridge, host-local and portmap take
/// milliseconds).
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A pod's CNI attachment, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodNetwork {
    /// The network configuration ADD ran (DEL runs the same, whatever the folder holds by
    /// then).
    pub config: NetworkList,
    /// `CNI_ARGS`.
    #[serde(default)]
    pub args: Vec<(String, String)>,
    /// The capability arguments (`portMappings`).
    #[serde(default)]
    pub capability_args: Map<String, Value>,
    /// The ADD's result (none: ADD did not finish, e.g. berthd died during it).
    #[serde(default)]
    pub result: Option<Value>,
    /// The pod's addresses, IPv4 first.
    #[serde(default)]
    pub ips: Vec<String>,
}

fn client(cfg: &CriConfig) -> Cni {
    Cni::new(vec![cfg.cni_bin_dir.clone()], PLUGIN_TIMEOUT)
}

/// The node's network configuration, if it has one.
pub fn load(cfg: &CriConfig) -> Result<Option<NetworkList>, CniError> {
    berth_cni::load_first(&cfg.cni_conf_dir)
}

/// What attaching pod `r` to `config` will pass: kubelet's CNI_ARGS and the pod's host ports
/// (containerd passes only mappings with a host port, protocols in lower case).
pub fn plan(r: &PodRecord, config: NetworkList) -> PodNetwork {
    let s = &r.spec;
    let args = [
        ("IgnoreUnknown", "1"),
        ("K8S_POD_NAMESPACE", s.namespace.as_str()),
        ("K8S_POD_NAME", s.name.as_str()),
        ("K8S_POD_INFRA_CONTAINER_ID", r.id.as_str()),
        ("K8S_POD_UID", s.uid.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let ports: Vec<Value> = s
        .port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| {
            let mut m = json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": p.protocol,
            });
            if !p.host_ip.is_empty() {
                m["hostIP"] = json!(p.host_ip);
            }
            m
        })
        .collect();
    let mut capability_args = Map::new();
    if !ports.is_empty() {
        capability_args.insert("portMappings".into(), Value::Array(ports));
    }
    PodNetwork {
        config,
        args,
        capability_args,
        result: None,
        ips: Vec::new(),
    }
}

fn attachment(id: &str, netns: Option<PathBuf>, net: &PodNetwork) -> Attachment {
    Attachment {
        container_id: id.to_string(),
        netns,
        ifname: IFNAME.to_string(),
        args: net.args.clone(),
        capability_args: net.capability_args.clone(),
    }
}

/// ADD: attaches pod `id`'s namespace at `netns`; fills in the result and the addresses.
pub fn attach(
    cfg: &CriConfig,
    id: &str,
    netns: PathBuf,
    net: &mut PodNetwork,
) -> Result<(), CniError> {
    let r = client(cfg).add(&net.config, &attachment(id, Some(netns), net))?;
    net.ips = r.ips.iter().map(ToString::to_string).collect();
    net.result = Some(r.raw);
    Ok(())
}

/// DEL: detaches pod `id` (its namespace at `netns`, or `None` once it is gone: the plugins
/// then only free what they hold on the node).
pub fn detach(
    cfg: &CriConfig,
    id: &str,
    netns: Option<PathBuf>,
    net: &PodNetwork,
) -> Result<(), CniError> {
    client(cfg).del(
        &net.config,
        &attachment(id, netns, net),
        net.result.as_ref(),
    )
}

/// `NetworkReady`: whether a network configuration is there (and readable).
pub fn condition(cfg: &CriConfig) -> (Condition, Option<NetworkList>) {
    match load(cfg) {
        Ok(Some(list)) => (
            Condition {
                ready: true,
                ..Default::default()
            },
            Some(list),
        ),
        Ok(None) => (
            Condition {
                ready: false,
                reason: "NetworkPluginNotReady".into(),
                message: "Network plugin returns error: cni plugin not initialized".into(),
            },
            None,
        ),
        Err(e) => (
            Condition {
                ready: false,
                reason: "NetworkPluginNotReady".into(),
                message: format!("Network plugin returns error: {e}"),
            },
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_cri::backend::{PodSpec, PortMapping};

    #[test]
    fn only_host_ports_become_port_mappings_and_kubelets_args_are_passed() {
        let port = |container_port, host_port, host_ip: &str| PortMapping {
            protocol: "udp".into(),
            container_port,
            host_port,
            host_ip: host_ip.into(),
        };
        let r = PodRecord {
            id: "p1".into(),
            spec: PodSpec {
                name: "web".into(),
                namespace: "ns".into(),
                uid: "u".into(),
                port_mappings: vec![
                    port(80, 0, ""),
                    port(53, 5353, "127.0.0.1"),
                    port(81, 8081, ""),
                ],
                ..Default::default()
            },
            ..Default::default()
        };
        let list = NetworkList {
            name: "n".into(),
            cni_version: "1.0.0".into(),
            plugins: Vec::new(),
            source: PathBuf::new(),
        };
        let net = plan(&r, list);
        assert_eq!(
            Value::Object(net.capability_args),
            json!({"portMappings": [
                {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
                {"hostPort": 8081, "containerPort": 81, "protocol": "udp"}
            ]})
        );
        assert!(net
            .args
            .contains(&("K8S_POD_INFRA_CONTAINER_ID".to_string(), "p1".to_string())));
        assert!(net
            .args
            .contains(&("K8S_POD_NAME".to_string(), "web".to_string())));
        let none = plan(&PodRecord::default(), net.config);
        assert!(none.capability_args.is_empty());
    }
}
