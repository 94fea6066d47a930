//! What a network driver's `join` answers: the endpoint as it is inside the container's
//! namespace (interface, MAC, IPv4 and optional IPv6 addresses, gateways, the routes the
//! driver installed, the DNS settings it wants) and the driver's capabilities.
//!
//! The shape crosses the plugin ABI as JSON and is versioned: an answer without `version`
//! is a version-1 answer (an older plugin: only `ip`, `prefix_len`, `gateway`, `mac`,
//! `ports`), and [`EndpointInfo::effective_routes`] gives it the default route version 1
//! implied. Every later field has a default, and unknown fields are ignored, so an older or
//! newer plugin's answer still loads.

use super::PortBinding;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The [`EndpointInfo`] shape this berth writes (1: without the fields marked "since 2").
pub const ENDPOINT_INFO_VERSION: u32 = 2;

fn legacy_version() -> u32 {
    1
}

/// An address with a prefix length (`10.0.0.0/24`, `fd00::/64`); a plain string on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    /// The address (of the network or of a host in it).
    pub addr: IpAddr,
    /// The prefix length (≤ 32 for IPv4, ≤ 128 for IPv6).
    pub prefix: u8,
}

/// A malformed [`Cidr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {0:?}")]
pub struct BadCidr(pub String);

impl Cidr {
    /// `addr/prefix`, checked.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, BadCidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(BadCidr(format!("{addr}/{prefix}")));
        }
        Ok(Cidr { addr, prefix })
    }

    /// The default route's destination of a family (`0.0.0.0/0` or `::/0`).
    pub fn default_route(v6: bool) -> Self {
        let addr = if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        };
        Cidr { addr, prefix: 0 }
    }

    /// Whether this is an IPv6 prefix.
    pub fn is_v6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr {
            addr,
            prefix: self.prefix,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Cidr::new(addr, prefix).map_err(|_| bad())
    }
}

impl TryFrom<String> for Cidr {
    type Error = BadCidr;
    fn try_from(s: String) -> Result<Self, BadCidr> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

/// A route inside the container's namespace, through the endpoint's interface. Its family
/// is its destination's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    /// The destination prefix (`0.0.0.0/0` for the default route).
    pub destination: Cidr,
    /// The next hop; `None` for a directly connected destination.
    #[serde(default)]
    pub next_hop: Option<IpAddr>,
}

impl Route {
    /// Whether this is an IPv6 route.
    pub fn is_v6(&self) -> bool {
        self.destination.is_v6()
    }
}

/// The resolver settings a driver wants for the container; empty means "no opinion" (the
/// daemon then keeps its own: embedded DNS on user networks, the host's resolvers otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDns {
    /// Name servers, in order.
    #[serde(default)]
    pub servers: Vec<IpAddr>,
    /// Search domains.
    #[serde(default)]
    pub search: Vec<String>,
    /// resolv.conf options (`ndots:2`, ...).
    #[serde(default)]
    pub options: Vec<String>,
}

impl EndpointDns {
    /// Whether the driver said nothing about DNS.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.search.is_empty() && self.options.is_empty()
    }
}

/// What a joined endpoint got: the state the driver put into the namespace. Everything but
/// `ports` is what `ip addr` and `ip route` show inside it (the conformance suite checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// The shape's version ([`ENDPOINT_INFO_VERSION`]; 1 when the plugin sent none).
    #[serde(default = "legacy_version")]
    pub version: u32,
    /// The IPv4 address handed out; empty when the endpoint has none.
    pub ip: String,
    /// The IPv4 subnet's prefix length.
    pub prefix_len: u8,
    /// The IPv4 gateway, if any (empty otherwise).
    pub gateway: String,
    /// The interface's MAC address (empty when there is no interface).
    pub mac: String,
    /// The ports actually bound (host ports filled in).
    #[serde(default)]
    pub ports: Vec<PortBinding>,
    /// Since 2: the interface's name inside the namespace (empty: none was made).
    #[serde(default)]
    pub ifname: String,
    /// Since 2: the IPv6 address and its prefix, if the endpoint has one.
    #[serde(default)]
    pub ipv6: Option<Cidr>,
    /// Since 2: the IPv6 gateway, if any.
    #[serde(default)]
    pub gateway_v6: Option<IpAddr>,
    /// Since 2: every route the driver installed through the interface (default routes
    /// included; not the connected subnet routes the kernel adds with an address).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Since 2: the resolver settings the driver wants.
    #[serde(default)]
    pub dns: EndpointDns,
}

impl Default for EndpointInfo {
    fn default() -> Self {
        EndpointInfo {
            version: ENDPOINT_INFO_VERSION,
            ip: String::new(),
            prefix_len: 0,
            gateway: String::new(),
            mac: String::new(),
            ports: Vec::new(),
            ifname: String::new(),
            ipv6: None,
            gateway_v6: None,
            routes: Vec::new(),
            dns: EndpointDns::default(),
        }
    }
}

impl EndpointInfo {
    /// The IPv4 address and prefix, if the endpoint has a (well-formed) one.
    pub fn ipv4(&self) -> Option<Cidr> {
        let addr: IpAddr = self.ip.parse().ok().filter(IpAddr::is_ipv4)?;
        Cidr::new(addr, self.prefix_len).ok()
    }

    /// The routes the endpoint has: those reported, or for a version-1 answer the default
    /// route via its gateway that every version-1 driver (the bridge) installed.
    pub fn effective_routes(&self) -> Vec<Route> {
        if self.version >= 2 {
            return self.routes.clone();
        }
        match self.gateway.parse::<IpAddr>() {
            Ok(gw) if !self.ip.is_empty() => vec![Route {
                destination: Cidr::default_route(gw.is_ipv6()),
                next_hop: Some(gw),
            }],
            _ => Vec::new(),
        }
    }
}

/// What a network driver can do; the conformance suite checks exactly what is claimed.
/// All false is what an older plugin (without the `capabilities` call) is taken to claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCapabilities {
    /// `join` puts an interface with an IPv4 address into the namespace, and endpoints on
    /// one network reach each other.
    #[serde(default)]
    pub interface: bool,
    /// Networks can have an IPv6 subnet (`NetworkSpec::subnet_v6`).
    #[serde(default)]
    pub ipv6: bool,
    /// `EndpointSpec::ip` (a requested address) is honoured.
    #[serde(default)]
    pub static_ip: bool,
    /// Ports can be published.
    #[serde(default)]
    pub ports: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_answer_loads_and_keeps_its_default_route() {
        let old = r#"{"ip":"10.1.0.2","prefix_len":24,"gateway":"10.1.0.1","mac":"02:42:0a:01:00:02","ports":[]}"#;
        let info: EndpointInfo = serde_json::from_str(old).expect("old answer loads");
        assert_eq!(info.version, 1);
        assert_eq!(
            info.ipv4().map(|c| c.to_string()).as_deref(),
            Some("10.1.0.2/24")
        );
        assert_eq!(
            info.effective_routes(),
            vec![Route {
                destination: "0.0.0.0/0".parse().expect("cidr"),
                next_hop: Some("10.1.0.1".parse().expect("ip")),
            }]
        );
        let none: EndpointInfo =
            serde_json::from_str(r#"{"ip":"","prefix_len":0,"gateway":"","mac":""}"#)
                .expect("null-style answer loads");
        assert!(none.effective_routes().is_empty());
    }

    #[test]
    fn a_version_2_answer_round_trips_and_ignores_unknown_fields() {
        let info = EndpointInfo {
            ip: "10.1.0.2".into(),
            prefix_len: 24,
            gateway: "10.1.0.1".into(),
            ifname: "eth0".into(),
            ipv6: Some("fd00:1::2/64".parse().expect("cidr")),
            gateway_v6: Some("fd00:1::1".parse().expect("ip")),
            routes: vec![Route {
                destination: "::/0".parse().expect("cidr"),
                next_hop: Some("fd00:1::1".parse().expect("ip")),
            }],
            dns: EndpointDns {
                servers: vec!["10.1.0.1".parse().expect("ip")],
                search: vec!["example.test".into()],
                options: vec!["ndots:2".into()],
            },
            ..EndpointInfo::default()
        };
        let mut v = serde_json::to_value(&info).expect("encode");
        assert_eq!(v["ipv6"], "fd00:1::2/64");
        v["from_the_future"] = serde_json::json!(1);
        let back: EndpointInfo = serde_json::from_value(v).expect("decode");
        assert_eq!(back, info);
        assert_eq!(back.effective_routes(), info.routes);
    }

    #[test]
    fn cidrs_are_checked() {
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("fd00::/129".parse::<Cidr>().is_err());
        let c: Cidr = "10.1.2.3/24".parse().expect("cidr");
        assert_eq!(c.network().to_string(), "10.1.2.0/24");
        let c: Cidr = "fd00:1::5/64".parse().expect("cidr");
        assert_eq!(c.network().to_string(), "fd00:1::/64");
        assert_eq!(Cidr::default_route(false).to_string(), "0.0.0.0/0");
    }
}
