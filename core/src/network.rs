//! The network driver trait: networks, endpoints joined into a container's network namespace,
//! and address management (IPAM) — the shape of moby's libnetwork drivers, synchronous.
//! What `join` answers, and what a driver claims it can do, is in [`joined`].

mod joined;

pub use joined::{
    BadCidr, Cidr, EndpointDns, EndpointInfo, NetworkCapabilities, Route, ENDPOINT_INFO_VERSION,
};

use crate::error::DriverResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the daemon asks for when it creates a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The network's 64-hex id (the daemon's).
    pub id: String,
    /// The user-facing name (`bridge`, `app`, ...).
    pub name: String,
    /// The subnet in CIDR form; `None` lets the driver pick one from its pools.
    pub subnet: Option<String>,
    /// The gateway address; `None` takes the first address of the subnet.
    pub gateway: Option<String>,
    /// The range to hand out addresses from (CIDR inside `subnet`).
    pub ip_range: Option<String>,
    /// No route to the outside (`--internal`).
    pub internal: bool,
    /// Driver options (`-o`), e.g. `com.docker.network.bridge.name`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// An IPv6 subnet in CIDR form (only for drivers claiming
    /// [`NetworkCapabilities::ipv6`]); `None`: IPv4 only.
    #[serde(default)]
    pub subnet_v6: Option<String>,
    /// The IPv6 gateway; `None` takes the first address of `subnet_v6`.
    #[serde(default)]
    pub gateway_v6: Option<String>,
    /// The range to hand out IPv6 addresses from (CIDR inside `subnet_v6`).
    #[serde(default)]
    pub ip_range_v6: Option<String>,
    /// Addresses (of either family) IPAM must never hand out, by name
    /// (`IPAM.Config[].AuxiliaryAddresses`).
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, String>,
}

/// What the driver reports about a network it created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// The subnet in CIDR form.
    pub subnet: String,
    /// The gateway address.
    pub gateway: String,
    /// Driver-specific facts (e.g. the bridge device's name).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    /// The IPv6 subnet, if the network has one.
    #[serde(default)]
    pub subnet_v6: Option<String>,
    /// The IPv6 gateway, if the network has one.
    #[serde(default)]
    pub gateway_v6: Option<String>,
}

/// A published port (`-p host_ip:host_port:container_port/proto`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// The port inside the container.
    pub container_port: u16,
    /// The host address to listen on; empty means all.
    pub host_ip: String,
    /// The host port; 0 asks the driver to choose one.
    pub host_port: u16,
}

/// What the daemon asks for when a container joins a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// The network's id.
    pub network_id: String,
    /// The endpoint's id (unique per network).
    pub endpoint_id: String,
    /// The container's id.
    pub container_id: String,
    /// Path of the container's network namespace (`/proc/PID/ns/net` or a bind-mounted file).
    pub netns_path: String,
    /// Name of the interface inside the namespace (`eth0`).
    pub ifname: String,
    /// A requested address (`--ip`); `None` lets IPAM choose.
    pub ip: Option<String>,
    /// A requested MAC address.
    pub mac: Option<String>,
    /// Ports to publish.
    #[serde(default)]
    pub ports: Vec<PortBinding>,
    /// A requested IPv6 address (`--ip6`); `None` lets IPAM choose (on a network with an
    /// IPv6 subnet).
    #[serde(default)]
    pub ip6: Option<String>,
}

/// A network driver.
pub trait NetworkDriver: Send + Sync {
    /// The driver's name (`bridge`, `null`, ...).
    fn name(&self) -> String;

    /// Key/value lines for `info` and `network inspect`.
    fn status(&self) -> Vec<(String, String)>;

    /// What the driver can do (see [`NetworkCapabilities`]; default: nothing claimed).
    fn capabilities(&self) -> NetworkCapabilities {
        NetworkCapabilities::default()
    }

    /// Creates (or, at start-up, re-creates) a network.
    fn create_network(&self, spec: &NetworkSpec) -> DriverResult<NetworkInfo>;

    /// Deletes a network; it must have no endpoints left (`Conflict`), and must exist
    /// (`NotFound`: a second delete).
    fn delete_network(&self, network_id: &str) -> DriverResult<()>;

    /// Creates an endpoint, allocates its address and moves it into the namespace, with its
    /// routes; answers what it set up. Unknown network: `NotFound`; an endpoint id already
    /// joined: `AlreadyExists`.
    fn join(&self, spec: &EndpointSpec) -> DriverResult<EndpointInfo>;

    /// Removes an endpoint and releases its address and ports. Missing is not an error.
    fn leave(&self, network_id: &str, endpoint_id: &str) -> DriverResult<()>;

    /// Removes whatever the driver left in the kernel that is not in `keep` (network ids).
    fn reconcile(&self, keep: &[String]) -> DriverResult<()> {
        let _ = keep;
        Ok(())
    }
}
