//! Network bodies with Docker's field names: a network (`NetworkResource`: inspect, list)
//! with its IPAM, and a container's `NetworkSettings` with one `EndpointSettings` per network
//! (inspect). Every field defaults and unknown fields are kept in `extra` maps, so records
//! and replies of other daemons parse and round-trip.

use super::container::{nullable, PortBinding};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

/// `IPAM.Config[]` of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    #[serde(skip_serializing_if = "is_empty", deserialize_with = "nullable")]
    pub subnet: String,
    #[serde(
        rename = "IPRange",
        skip_serializing_if = "is_empty",
        deserialize_with = "nullable"
    )]
    pub ip_range: String,
    #[serde(skip_serializing_if = "is_empty", deserialize_with = "nullable")]
    pub gateway: String,
    /// `AuxiliaryAddresses` and anything else, kept as sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `IPAM` of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    #[serde(deserialize_with = "nullable")]
    pub driver: String,
    pub options: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "nullable")]
    pub config: Vec<IpamConfig>,
}

impl Default for Ipam {
    fn default() -> Self {
        Ipam {
            driver: "default".into(),
            options: None,
            config: Vec::new(),
        }
    }
}

/// `ConfigFrom` of a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigReference {
    pub network: String,
}

/// One entry of a network's `Containers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkContainer {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// A network (`GET /networks/{id}`, list element).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkResource {
    pub name: String,
    pub id: String,
    pub created: String,
    /// `local`.
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM", deserialize_with = "nullable")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    #[serde(deserialize_with = "nullable")]
    pub config_from: ConfigReference,
    pub config_only: bool,
    #[serde(deserialize_with = "nullable")]
    pub containers: BTreeMap<String, NetworkContainer>,
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Fields berth does not interpret (`Peers`, `Services`, ...), kept as they came.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Default for NetworkResource {
    fn default() -> Self {
        NetworkResource {
            name: String::new(),
            id: String::new(),
            created: String::new(),
            scope: "local".into(),
            driver: String::new(),
            enable_ipv4: true,
            enable_ipv6: false,
            ipam: Ipam::default(),
            internal: false,
            attachable: false,
            ingress: false,
            config_from: ConfigReference::default(),
            config_only: false,
            containers: BTreeMap::new(),
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// `POST /networks/create` body (`null` members read as their defaults; members berth does
/// not interpret — `Scope`, `ConfigFrom`... — are ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateRequest {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Empty: `bridge`.
    #[serde(deserialize_with = "nullable")]
    pub driver: String,
    #[serde(deserialize_with = "nullable")]
    pub internal: bool,
    #[serde(deserialize_with = "nullable")]
    pub attachable: bool,
    #[serde(rename = "EnableIPv6", deserialize_with = "nullable")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM", deserialize_with = "nullable")]
    pub ipam: Ipam,
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

/// `POST /networks/create` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateResponse {
    pub id: String,
    pub warning: String,
}

/// `POST /networks/prune` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworksPruneResponse {
    /// `null` when nothing was deleted, as Docker's.
    pub networks_deleted: Option<Vec<String>>,
}

/// `IPAMConfig` of an endpoint (`--ip`, `--ip6`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "is_empty")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", skip_serializing_if = "is_empty")]
    pub ipv6_address: String,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Option::is_none")]
    pub link_local_ips: Option<Vec<String>>,
}

/// `NetworkSettings.Networks.<name>` of a container (also `EndpointsConfig.<name>` of a
/// create or connect request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    pub links: Option<Vec<String>>,
    pub aliases: Option<Vec<String>>,
    pub mac_address: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
    /// Fields berth does not interpret (`GwPriority`, `Links` of other daemons...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl EndpointSettings {
    /// Forgets what a join gave (address, gateway, endpoint): the configuration stays.
    pub fn clear_runtime(&mut self) {
        self.endpoint_id.clear();
        self.gateway.clear();
        self.ip_address.clear();
        self.mac_address.clear();
        self.ip_prefix_len = 0;
        self.dns_names = None;
    }
}

/// `NetworkSettings` of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    /// `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`; `null` for a port
    /// exposed but not published.
    #[serde(deserialize_with = "nullable")]
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    /// Boxed: a map node holds room for 11 values, and an `EndpointSettings` is ~400 bytes,
    /// so a container on one network kept 4 KiB here (berthd holds every container's).
    #[serde(deserialize_with = "nullable")]
    pub networks: BTreeMap<String, Box<EndpointSettings>>,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    pub gateway: String,
    pub mac_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    /// Fields berth does not interpret (`SandboxKey`, `HairpinMode`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl NetworkSettings {
    /// Shows the default network's endpoint `ep` in the top-level fields (deprecated by the
    /// API, still there as in dockerd); a default entry clears them.
    pub fn show_default(&mut self, ep: &EndpointSettings) {
        self.endpoint_id.clone_from(&ep.endpoint_id);
        self.ip_address.clone_from(&ep.ip_address);
        self.gateway.clone_from(&ep.gateway);
        self.ip_prefix_len = ep.ip_prefix_len;
        self.mac_address.clone_from(&ep.mac_address);
        self.global_ipv6_address.clone_from(&ep.global_ipv6_address);
        self.global_ipv6_prefix_len = ep.global_ipv6_prefix_len;
        self.ipv6_gateway.clone_from(&ep.ipv6_gateway);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_resource_round_trips_docker_shape() {
        let body = r#"{"Name":"n1","Id":"ab","Created":"x","Scope":"local","Driver":"bridge",
            "EnableIPv4":true,"EnableIPv6":false,"IPAM":{"Driver":"default","Options":null,
            "Config":[{"Subnet":"10.1.0.0/16","Gateway":"10.1.0.1"}]},"Internal":false,
            "Attachable":false,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,
            "Containers":{},"Options":{},"Labels":{"a":"b"},"Peers":[1]}"#;
        let n: NetworkResource = serde_json::from_str(body).expect("t");
        assert_eq!(n.ipam.config[0].subnet, "10.1.0.0/16");
        let back = serde_json::to_value(&n).expect("t");
        let want: Value = serde_json::from_str(body).expect("t");
        assert_eq!(back, want);
    }

    #[test]
    fn create_request_tolerates_nulls() {
        let body = r#"{"Name":"n1","Driver":null,"Options":null,"Labels":{"a":"b"},
            "IPAM":{"Driver":null,"Config":[{"Subnet":"10.9.0.0/24","Gateway":null}],
            "Options":null},"EnableIPv6":false,"CheckDuplicate":true}"#;
        let r: NetworkCreateRequest = serde_json::from_str(body).expect("t");
        assert_eq!(r.driver, "");
        assert_eq!(r.ipam.config[0].subnet, "10.9.0.0/24");
        assert_eq!(r.ipam.config[0].gateway, "");
        assert_eq!(r.labels["a"], "b");
        let none: NetworkCreateRequest = serde_json::from_str(r#"{"IPAM":null}"#).expect("t");
        assert!(none.ipam.config.is_empty());
    }

    #[test]
    fn endpoint_tolerates_nulls_and_keeps_unknowns() {
        let body = r#"{"IPAMConfig":null,"Links":null,"Aliases":["a"],"MacAddress":"",
            "DriverOpts":null,"NetworkID":"n","EndpointID":"","Gateway":"","IPAddress":"",
            "IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,
            "DNSNames":null,"GwPriority":0}"#;
        let e: EndpointSettings = serde_json::from_str(body).expect("t");
        assert_eq!(e.aliases.as_deref(), Some(&["a".to_string()][..]));
        let back = serde_json::to_value(&e).expect("t");
        let want: Value = serde_json::from_str(body).expect("t");
        assert_eq!(back, want);
    }
}
