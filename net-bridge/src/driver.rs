//! The `bridge` driver itself: networks (bridge device + address + nftables rules), endpoints
//! (lease, veth pair, container-side addressing, published ports) and start-up reconciliation.

use crate::filter;
use crate::ipam::{self, Pool, Subnet};
use crate::ipam6::{self, Subnet6};
use crate::link;
use crate::nft;
use crate::nl::Socket;
use crate::ports::{self, Reservation};
use crate::reaper::Reaper;
use crate::state::{is_safe_id, NetState, Store};
use berth_core::network::{
    EndpointInfo, EndpointSpec, NetworkCapabilities, NetworkInfo, NetworkSpec,
};
use berth_core::{DriverError, DriverResult, NetworkDriver};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};

/// The MTU of bridges and veths.
const MTU: u32 = 1500;
/// The option naming the bridge device.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";

/// The driver's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The default network's bridge device.
    pub default_bridge: String,
    /// The default network's `bip` (gateway/prefix).
    pub bip: Option<String>,
    /// Pools for networks without a subnet.
    pub pools: Vec<Pool>,
    /// The nftables table.
    pub table: String,
    /// `icc`: whether containers on the default network may talk to each other.
    pub icc: bool,
}

/// The bridge network driver.
pub struct BridgeDriver {
    settings: Settings,
    store: Store,
    inner: Mutex<Inner>,
    reaper: Reaper,
}

#[derive(Default)]
struct Inner {
    nets: BTreeMap<String, NetState>,
    reservations: HashMap<(String, String), Vec<Reservation>>,
    sock: Option<Socket>,
}

impl Inner {
    fn sock(&mut self) -> DriverResult<&mut Socket> {
        if self.sock.is_none() {
            self.sock = Some(Socket::open().map_err(|e| DriverError::io("opening netlink", e))?);
        }
        self.sock
            .as_mut()
            .ok_or_else(|| DriverError::Internal("netlink socket missing".into()))
    }

    fn render(&self, table: &str, icc: bool) -> String {
        let nets: Vec<&NetState> = self.nets.values().collect();
        nft::render(table, &nets, icc)
    }

    /// Replaces berth's rules with ones rendered from the current state, switching
    /// `br_netfilter` on first when a bridge without icc needs it.
    fn apply_rules(&self, table: &str, icc: bool) -> DriverResult<()> {
        let nets: Vec<&NetState> = self.nets.values().collect();
        crate::nft6::apply(table, &nets, icc)?;
        if nets.is_empty() {
            return nft::retire(table);
        }
        if filter::needs_br_netfilter(&nets, icc) {
            filter::ensure_br_netfilter()?;
        }
        nft::apply(&nft::render(table, &nets, icc))
    }
}

fn kernel(ctx: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DriverError {
    move |e| DriverError::io(ctx, e)
}

/// The host-side veth name of an endpoint (stable, so `leave` needs no state).
pub fn veth_name(network_id: &str, endpoint_id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in network_id.bytes().chain([b'/']).chain(endpoint_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("veth{:07x}", h & 0x0fff_ffff)
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl BridgeDriver {
    /// Creates the driver over state directory `root`, loading what a previous run left.
    pub fn new(root: &std::path::Path, settings: Settings) -> DriverResult<Self> {
        let store = Store::open(root)?;
        let nets = store
            .load_all()?
            .into_iter()
            .map(|n| (n.spec.id.clone(), n))
            .collect();
        Ok(BridgeDriver {
            settings,
            store,
            inner: Mutex::new(Inner {
                nets,
                ..Inner::default()
            }),
            reaper: Reaper::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Works out subnet, gateway, range and bridge name of a new network.
    fn plan(&self, inner: &Inner, spec: &NetworkSpec) -> DriverResult<NetState> {
        let default = spec.name == "bridge";
        let bridge = match spec.options.get(OPT_BRIDGE_NAME) {
            Some(b) => b.clone(),
            None if default => self.settings.default_bridge.clone(),
            None => format!("br-{}", spec.id.chars().take(12).collect::<String>()),
        };
        if !valid_ifname(&bridge) {
            return Err(DriverError::InvalidInput(format!(
                "invalid bridge name {bridge:?}"
            )));
        }
        filter::icc_option(&spec.options)?;
        if inner.nets.values().any(|n| n.bridge == bridge) {
            return Err(DriverError::Conflict(format!(
                "bridge name {bridge} is already used by another network"
            )));
        }
        let ours: Vec<Subnet> = inner
            .nets
            .values()
            .filter_map(|n| Subnet::parse(&n.subnet).ok())
            .collect();
        let (subnet, mut gateway) = match (&spec.subnet, default.then_some(&self.settings.bip)) {
            (Some(s), _) => (Subnet::parse(s)?, None),
            (None, Some(Some(bip))) => {
                let sub = Subnet::parse(bip)?;
                let gw = bip.split('/').next().map(ipam::parse_ip).transpose()?;
                (sub, gw.filter(|g| *g != sub.net))
            }
            _ => {
                let mut taken = ours.clone();
                taken.extend(ipam::host_routes());
                (ipam::pick_subnet(&self.settings.pools, &taken)?, None)
            }
        };
        if ours.iter().any(|o| o.overlaps(&subnet)) {
            return Err(DriverError::Conflict(
                "Pool overlaps with other one on this address space".into(),
            ));
        }
        if let Some(g) = &spec.gateway {
            gateway = Some(ipam::parse_ip(g)?);
        }
        let gateway = gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.contains(gateway) {
            return Err(DriverError::InvalidInput(format!(
                "invalid gateway {} for subnet {subnet}",
                Ipv4Addr::from(gateway)
            )));
        }
        let reserved = |ip: u32| ip == subnet.net || ip == subnet.broadcast();
        if reserved(gateway) {
            return Err(in_use("gateway", &Ipv4Addr::from(gateway).to_string()));
        }
        for (name, ip) in ipam::aux_v4(&spec.aux_addresses) {
            if reserved(ip) || ip == gateway {
                let name = name.trim_end_matches("/v6");
                let what = format!("secondary ip address ({name}:{})", Ipv4Addr::from(ip));
                return Err(DriverError::InvalidInput(format!(
                    "failed to allocate {what}: Address already in use"
                )));
            }
        }
        let range = match &spec.ip_range {
            Some(r) => {
                let r = Subnet::parse(r)?;
                if !subnet.contains(r.net) || r.prefix < subnet.prefix {
                    return Err(DriverError::InvalidInput(format!(
                        "ip-range {r} is not inside subnet {subnet}"
                    )));
                }
                r
            }
            None => subnet,
        };
        let v6 = match &spec.subnet_v6 {
            Some(s6) => {
                let ours6: Vec<Subnet6> = inner
                    .nets
                    .values()
                    .filter_map(|n| Subnet6::parse(&n.subnet_v6).ok())
                    .collect();
                Some(ipam6::plan(
                    s6,
                    spec.gateway_v6.as_deref(),
                    spec.ip_range_v6.as_deref(),
                    &spec.aux_addresses,
                    &ours6,
                )?)
            }
            None => None,
        };
        let (subnet_v6, gateway_v6, ip_range_v6) = match v6 {
            Some(p) => (p.subnet, p.gateway, p.range),
            None => Default::default(),
        };
        Ok(NetState {
            spec: spec.clone(),
            bridge,
            subnet: subnet.to_string(),
            gateway: Ipv4Addr::from(gateway).to_string(),
            ip_range: range.to_string(),
            subnet_v6,
            gateway_v6,
            ip_range_v6,
            last: 0,
            endpoints: Default::default(),
        })
    }

    /// Brings the kernel side of `net` up: bridge, address, forwarding, localhost routing.
    fn ensure_kernel(inner: &mut Inner, net: &NetState) -> DriverResult<()> {
        let sub = Subnet::parse(&net.subnet)?;
        let gw: Ipv4Addr = net
            .gateway
            .parse()
            .map_err(|_| DriverError::Internal(format!("bad gateway {}", net.gateway)))?;
        let sock = inner.sock()?;
        let idx = link::ensure_bridge(sock, &net.bridge, MTU)
            .map_err(kernel(format!("creating bridge {}", net.bridge)))?;
        link::add_addr(sock, idx, gw, sub.prefix)
            .map_err(kernel(format!("adding {gw} to {}", net.bridge)))?;
        if !net.subnet_v6.is_empty() {
            let sub6 = Subnet6::parse(&net.subnet_v6)?;
            let gw6: Ipv6Addr = net
                .gateway_v6
                .parse()
                .map_err(|_| DriverError::Internal(format!("bad gateway {}", net.gateway_v6)))?;
            // IPv6 on this bridge only (the host's other interfaces keep their settings).
            link::write_knob(
                &format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", net.bridge),
                "0",
            )
            .map_err(kernel(format!("enabling IPv6 on {}", net.bridge)))?;
            link::add_addr6(sock, idx, gw6, sub6.prefix)
                .map_err(kernel(format!("adding {gw6} to {}", net.bridge)))?;
        }
        link::write_knob("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(kernel("enabling net.ipv4.ip_forward"))?;
        link::write_knob(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
            "1",
        )
        .map_err(kernel("enabling route_localnet"))?;
        Ok(())
    }

    /// Re-takes the port reservations of `net`'s endpoints (after a restart).
    fn rebind(inner: &mut Inner, net_id: &str) {
        let Some(net) = inner.nets.get(net_id) else {
            return;
        };
        let mut taken = Vec::new();
        for (ep, lease) in &net.endpoints {
            let key = (net_id.to_string(), ep.clone());
            if inner.reservations.contains_key(&key) {
                continue;
            }
            let mut held = Vec::new();
            for p in &lease.ports {
                match ports::reserve(p) {
                    Ok((_, r)) => held.push(r),
                    Err(e) => tracing_warn(&format!("re-reserving {}: {e}", p.host_port)),
                }
            }
            taken.push((key, held));
        }
        inner.reservations.extend(taken);
    }
}

/// dockerd's text for an address IPAM cannot give to the gateway.
fn in_use(what: &str, addr: &str) -> DriverError {
    DriverError::InvalidInput(format!(
        "failed to allocate {what} ({addr}): Address already in use"
    ))
}

fn tracing_warn(msg: &str) {
    eprintln!("berth-net-bridge: {msg}");
}

impl NetworkDriver for BridgeDriver {
    fn name(&self) -> String {
        "bridge".into()
    }

    fn capabilities(&self) -> NetworkCapabilities {
        NetworkCapabilities {
            interface: true,
            ipv6: true,
            static_ip: true,
            ports: true,
        }
    }

    fn status(&self) -> Vec<(String, String)> {
        let inner = self.lock();
        vec![
            (
                "Default Bridge".into(),
                self.settings.default_bridge.clone(),
            ),
            (
                "Nftables Table".into(),
                format!("ip {}", self.settings.table),
            ),
            ("Networks".into(), inner.nets.len().to_string()),
        ]
    }

    fn create_network(&self, spec: &NetworkSpec) -> DriverResult<NetworkInfo> {
        if !is_safe_id(&spec.id) {
            return Err(DriverError::InvalidInput(format!(
                "invalid network id {:?}",
                spec.id
            )));
        }
        let mut inner = self.lock();
        let existing = inner.nets.get(&spec.id).cloned();
        let fresh = existing.is_none();
        let net = match existing {
            Some(n) => n,
            None => {
                let n = self.plan(&inner, spec)?;
                self.store.save(&n)?;
                inner.nets.insert(n.spec.id.clone(), n.clone());
                n
            }
        };
        let setup = Self::ensure_kernel(&mut inner, &net)
            .and_then(|()| inner.apply_rules(&self.settings.table, self.settings.icc));
        if let Err(e) = setup {
            if fresh {
                inner.nets.remove(&net.spec.id);
                if let Ok(sock) = inner.sock() {
                    let _ = link::delete(sock, &net.bridge);
                }
                let _ = self.store.remove(&net.spec.id);
            }
            return Err(e);
        }
        Self::rebind(&mut inner, &net.spec.id);
        let mut details = BTreeMap::new();
        details.insert(OPT_BRIDGE_NAME.to_string(), net.bridge.clone());
        details.insert("ip_range".to_string(), net.ip_range.clone());
        let v6 = |s: String| Some(s).filter(|s| !s.is_empty());
        Ok(NetworkInfo {
            subnet: net.subnet,
            gateway: net.gateway,
            details,
            subnet_v6: v6(net.subnet_v6),
            gateway_v6: v6(net.gateway_v6),
        })
    }

    fn delete_network(&self, network_id: &str) -> DriverResult<()> {
        let mut inner = self.lock();
        let Some(net) = inner.nets.get(network_id).cloned() else {
            return Err(DriverError::NotFound(format!(
                "network {network_id} not found"
            )));
        };
        if !net.endpoints.is_empty() {
            return Err(DriverError::Conflict(format!(
                "network {} has active endpoints",
                net.spec.name
            )));
        }
        let sock = inner.sock()?;
        link::delete(sock, &net.bridge).map_err(kernel(format!("deleting {}", net.bridge)))?;
        inner.nets.remove(network_id);
        inner.reservations.retain(|(n, _), _| n != network_id);
        self.store.remove(network_id)?;
        inner.apply_rules(&self.settings.table, self.settings.icc)
    }

    fn join(&self, spec: &EndpointSpec) -> DriverResult<EndpointInfo> {
        crate::endpoint::join(self, spec)
    }

    fn leave(&self, network_id: &str, endpoint_id: &str) -> DriverResult<()> {
        crate::endpoint::leave(self, network_id, endpoint_id)
    }

    fn reconcile(&self, keep: &[String]) -> DriverResult<()> {
        let mut inner = self.lock();
        let keep: BTreeSet<&str> = keep.iter().map(String::as_str).collect();
        let stale: Vec<NetState> = inner
            .nets
            .values()
            .filter(|n| !keep.contains(n.spec.id.as_str()))
            .cloned()
            .collect();
        for net in &stale {
            let sock = inner.sock()?;
            for port in link::bridge_ports(&net.bridge) {
                let _ = link::delete(sock, &port);
            }
            link::delete(sock, &net.bridge).map_err(kernel(format!("deleting {}", net.bridge)))?;
            inner.nets.remove(&net.spec.id);
            inner.reservations.retain(|(n, _), _| n != &net.spec.id);
            self.store.remove(&net.spec.id)?;
        }
        // Leases whose veth is gone: their container's namespace died while berthd was down
        // (or the machine restarted), so the address is free again.
        let ids: Vec<String> = inner.nets.keys().cloned().collect();
        for id in ids {
            let Some(net) = inner.nets.get_mut(&id) else {
                continue;
            };
            let dead: Vec<String> = net
                .endpoints
                .iter()
                .filter(|(_, l)| link::index_of(&l.veth).is_none())
                .map(|(ep, _)| ep.clone())
                .collect();
            if dead.is_empty() {
                continue;
            }
            for ep in &dead {
                net.endpoints.remove(ep);
                self.store.drop_lease(&id, ep)?;
            }
            inner
                .reservations
                .retain(|(n, ep), _| n != &id || !dead.contains(ep));
        }
        // veths on our bridges that no lease accounts for (a crash between veth and lease).
        let leftovers: Vec<String> = inner
            .nets
            .values()
            .flat_map(|n| {
                let known: BTreeSet<&str> = n.endpoints.values().map(|l| l.veth.as_str()).collect();
                link::bridge_ports(&n.bridge)
                    .into_iter()
                    .filter(|p| p.starts_with("veth") && !known.contains(p.as_str()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let sock = inner.sock()?;
        for port in leftovers {
            let _ = link::delete(sock, &port);
        }
        inner.apply_rules(&self.settings.table, self.settings.icc)
    }
}

/// Access for the endpoint module.
impl BridgeDriver {
    pub(crate) fn with_inner<T>(
        &self,
        f: impl FnOnce(&mut InnerRef<'_>) -> DriverResult<T>,
    ) -> DriverResult<T> {
        let mut guard = self.lock();
        let mut r = InnerRef {
            inner: &mut guard,
            store: &self.store,
            table: &self.settings.table,
            icc: self.settings.icc,
            reaper: &self.reaper,
        };
        f(&mut r)
    }
}

/// A locked view of the driver's state for the endpoint operations.
pub(crate) struct InnerRef<'a> {
    inner: &'a mut Inner,
    pub store: &'a Store,
    pub table: &'a str,
    icc: bool,
    pub reaper: &'a Reaper,
}

impl InnerRef<'_> {
    pub fn net_mut(&mut self, id: &str) -> Option<&mut NetState> {
        self.inner.nets.get_mut(id)
    }
    pub fn sock(&mut self) -> DriverResult<&mut Socket> {
        self.inner.sock()
    }
    pub fn hold(&mut self, net: &str, ep: &str, r: Vec<Reservation>) {
        self.inner
            .reservations
            .insert((net.to_string(), ep.to_string()), r);
    }
    pub fn render(&self) -> String {
        self.inner.render(self.table, self.icc)
    }
    pub fn release(&mut self, net: &str, ep: &str) {
        self.inner
            .reservations
            .remove(&(net.to_string(), ep.to_string()));
    }
}

/// Opens a namespace file for `IFLA_NET_NS_FD`.
pub(crate) fn open_netns(path: &str) -> DriverResult<File> {
    File::open(path).map_err(|e| DriverError::io(format!("opening network namespace {path}"), e))
}
