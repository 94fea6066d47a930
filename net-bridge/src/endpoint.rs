//! Endpoints: `join` leases an address, reserves the published ports, creates the veth pair
//! with its peer inside the container's namespace and programs it; `leave` undoes all of it.
//! Either everything is set up or nothing is left behind.

use crate::driver::{open_netns, veth_name, BridgeDriver, InnerRef};
use crate::inside::{self, Inside};
use crate::ipam::{self, Subnet};
use crate::ipam6::{self, Subnet6};
use crate::link::{self, VethSpec};
use crate::nft;
use crate::nl::parse_mac;
use crate::ports;
use crate::state::Lease;
use crate::state::NetState;
use berth_core::network::{Cidr, EndpointInfo, EndpointSpec, Route};
use berth_core::{DriverError, DriverResult};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

const MTU: u32 = 1500;

/// Joins a container to a network.
pub fn join(d: &BridgeDriver, spec: &EndpointSpec) -> DriverResult<EndpointInfo> {
    let ifname = if spec.ifname.is_empty() {
        "eth0"
    } else {
        spec.ifname.as_str()
    };
    if ifname.len() > 15 || ifname.contains('/') {
        return Err(DriverError::InvalidInput(format!(
            "invalid interface name {ifname:?}"
        )));
    }
    let ns = open_netns(&spec.netns_path)?;
    let netns_ino = ns.metadata().map(|m| m.ino()).unwrap_or(0);
    d.with_inner(|inner| {
        let table = inner.table.to_string();
        // 1. Lease an address (saved before the kernel is touched).
        let (lease, bridge, subnet, gateway, internal, v6) = {
            let net = inner.net_mut(&spec.network_id).ok_or_else(|| {
                DriverError::NotFound(format!("network {} not found", spec.network_id))
            })?;
            if net.endpoints.contains_key(&spec.endpoint_id) {
                return Err(DriverError::AlreadyExists(format!(
                    "endpoint {} already exists in network {}",
                    spec.endpoint_id, net.spec.name
                )));
            }
            let subnet = Subnet::parse(&net.subnet)?;
            let range = Subnet::parse(&net.ip_range)?;
            let gw = ipam::parse_ip(&net.gateway)?;
            let aux: Vec<u32> = ipam::aux_v4(&net.spec.aux_addresses)
                .into_iter()
                .map(|a| a.1)
                .collect();
            let used = |ip: u32| net.endpoints.holds4(ip) || aux.contains(&ip);
            let ip = match &spec.ip {
                Some(want) => {
                    let ip = ipam::parse_ip(want)?;
                    if !subnet.contains(ip) || ip == subnet.net || ip == subnet.broadcast() {
                        return Err(DriverError::InvalidInput(format!(
                            "no configured subnet or ip-range contain the IP address {want}"
                        )));
                    }
                    if ip == gw || used(ip) {
                        return Err(DriverError::Conflict("Address already in use".into()));
                    }
                    ip
                }
                None => ipam::next_free(&subnet, &range, gw, used, net.last).ok_or_else(|| {
                    DriverError::Conflict(format!(
                        "no available IPv4 addresses on this network's address pools: {} ({})",
                        net.spec.name, net.spec.id
                    ))
                })?,
            };
            let mac = match &spec.mac {
                Some(m) => parse_mac(m).ok_or_else(|| {
                    DriverError::InvalidInput(format!("invalid MAC address {m:?}"))
                })?,
                None => ipam::mac_for(ip),
            };
            let ip6 = allocate6(net, spec.ip6.as_deref())?;
            if spec.ip.is_none() {
                net.last = ip;
            }
            let lease = Lease {
                container_id: spec.container_id.clone(),
                ip: Ipv4Addr::from(ip).to_string(),
                ip6,
                mac: ipam::mac_string(&mac),
                veth: veth_name(&spec.network_id, &spec.endpoint_id),
                ports: Vec::new(),
                netns: spec.netns_path.clone(),
                netns_ino,
            };
            let v6 = v6_of(net)?;
            (lease, net.bridge.clone(), subnet, gw, net.spec.internal, v6)
        };
        // 2. Reserve the host ports (all or nothing: reservations drop on error).
        let mut lease = lease;
        let mut held = Vec::new();
        for p in &spec.ports {
            let (bound, r) = ports::reserve(p)?;
            if lease
                .ports
                .iter()
                .any(|q| q.host_port == bound.host_port && q.proto == bound.proto)
            {
                let ip = ports::host_addr(p)?;
                return Err(ports::in_use(ip, bound.host_port));
            }
            lease.ports.push(bound);
            held.push(r);
        }
        save_lease(
            inner,
            &spec.network_id,
            &spec.endpoint_id,
            Some(lease.clone()),
        )?;
        // 3. Kernel: veth pair, container side, port rules.
        let ip: Ipv4Addr = Ipv4Addr::from(ipam::parse_ip(&lease.ip)?);
        let mac = parse_mac(&lease.mac).unwrap_or([0x02, 0x42, 0, 0, 0, 0]);
        let setup = (|| -> DriverResult<()> {
            let master = link::index_of(&bridge)
                .ok_or_else(|| DriverError::NotFound(format!("bridge {bridge} does not exist")))?;
            let vs = VethSpec {
                host: &lease.veth,
                master,
                peer: ifname,
                peer_mac: mac,
                mtu: MTU,
            };
            let sock = inner.sock()?;
            let created = match link::create_veth(sock, &vs, ns.as_fd()) {
                // The same endpoint's previous veth, not reaped yet (see `reaper`).
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => link::delete(sock, vs.host)
                    .and_then(|()| link::create_veth(sock, &vs, ns.as_fd())),
                r => r,
            };
            created.map_err(|e| DriverError::io(format!("creating veth {}", lease.veth), e))?;
            let ip6 = lease.ip6.parse::<Ipv6Addr>().ok();
            let cfg = Inside {
                ifname,
                ip,
                prefix: subnet.prefix,
                gateway: (!internal).then(|| Ipv4Addr::from(gateway)),
                ip6: ip6.zip(v6.map(|v| v.0)),
                gateway6: v6.map(|v| v.1).filter(|_| !internal),
            };
            inside::configure(&ns, &spec.netns_path, &cfg)?;
            if !lease.ports.is_empty() {
                let hp = format!("/sys/class/net/{}/brport/hairpin_mode", lease.veth);
                let _ = link::write_knob(&hp, "1");
                let entries = nft::lease_dnats(&lease.ip, &lease.ports);
                nft::apply(&nft::elements(&table, &entries, true))?;
            }
            Ok(())
        })();
        if let Err(e) = setup {
            if let Ok(sock) = inner.sock() {
                let _ = link::delete(sock, &lease.veth);
            }
            let _ = save_lease(inner, &spec.network_id, &spec.endpoint_id, None);
            return Err(e);
        }
        inner.hold(&spec.network_id, &spec.endpoint_id, held);
        let gw = Ipv4Addr::from(gateway);
        // The default route `configure_inside` installed; DNS is left to the daemon (its
        // embedded server on user networks, the host's resolvers on the default one).
        let ipv6 = lease
            .ip6
            .parse::<Ipv6Addr>()
            .ok()
            .zip(v6)
            .and_then(|(a, (prefix, _))| Cidr::new(IpAddr::V6(a), prefix).ok());
        let gateway_v6 = ipv6.and(v6).map(|v| IpAddr::V6(v.1));
        let mut routes = Vec::new();
        if !internal {
            routes.push(Route {
                destination: Cidr::default_route(false),
                next_hop: Some(IpAddr::V4(gw)),
            });
            if let Some(g6) = gateway_v6 {
                routes.push(Route {
                    destination: Cidr::default_route(true),
                    next_hop: Some(g6),
                });
            }
        }
        Ok(EndpointInfo {
            ip: lease.ip.clone(),
            prefix_len: subnet.prefix,
            gateway: gw.to_string(),
            mac: lease.mac.clone(),
            ports: lease.ports.clone(),
            ifname: ifname.to_string(),
            ipv6,
            gateway_v6,
            routes,
            ..EndpointInfo::default()
        })
    })
}

/// The IPv6 prefix length and gateway of a network with an IPv6 subnet.
fn v6_of(net: &NetState) -> DriverResult<Option<(u8, Ipv6Addr)>> {
    if net.subnet_v6.is_empty() {
        return Ok(None);
    }
    let sub = Subnet6::parse(&net.subnet_v6)?;
    let gw = Ipv6Addr::from(ipam6::parse_ip6(&net.gateway_v6)?);
    Ok(Some((sub.prefix, gw)))
}

/// The IPv6 address of a new endpoint on `net`: `want` (`--ip6`) if free, else the lowest
/// free one; empty on a network without an IPv6 subnet (where `--ip6` is refused).
fn allocate6(net: &mut NetState, want: Option<&str>) -> DriverResult<String> {
    if net.subnet_v6.is_empty() {
        return match want {
            Some(w) => Err(DriverError::InvalidInput(format!(
                "no configured subnet or ip-range contain the IP address {w}"
            ))),
            None => Ok(String::new()),
        };
    }
    let sub = Subnet6::parse(&net.subnet_v6)?;
    let range = Subnet6::parse(&net.ip_range_v6).unwrap_or(sub);
    let gw = ipam6::parse_ip6(&net.gateway_v6)?;
    let aux: Vec<u128> = ipam6::aux_v6(&net.spec.aux_addresses)
        .into_iter()
        .map(|a| a.1)
        .collect();
    let leases = &net.endpoints;
    let used = |ip: u128| leases.holds6(ip) || aux.contains(&ip);
    let ip = match want {
        Some(w) => {
            let ip = ipam6::parse_ip6(w)?;
            if !sub.contains(ip) || ip == sub.net {
                return Err(DriverError::InvalidInput(format!(
                    "no configured subnet or ip-range contain the IP address {w}"
                )));
            }
            if ip == gw || used(ip) {
                return Err(DriverError::Conflict("Address already in use".into()));
            }
            ip
        }
        None => {
            let ip = ipam6::next_free(&sub, &range, gw, used, leases.low6()).ok_or_else(|| {
                DriverError::Conflict(format!(
                    "no available IPv6 addresses on this network's address pools: {} ({})",
                    net.spec.name, net.spec.id
                ))
            })?;
            net.endpoints.allocated6(ip);
            ip
        }
    };
    Ok(Ipv6Addr::from(ip).to_string())
}

/// Records (or with `None` drops) an endpoint's lease, in memory and on disk.
fn save_lease(
    inner: &mut InnerRef<'_>,
    net_id: &str,
    ep: &str,
    lease: Option<Lease>,
) -> DriverResult<()> {
    let store = inner.store;
    let net = inner
        .net_mut(net_id)
        .ok_or_else(|| DriverError::NotFound(format!("network {net_id} not found")))?;
    match lease {
        Some(l) => {
            store.put_lease(net_id, ep, &l)?;
            net.endpoints.insert(ep.to_string(), l);
        }
        None => {
            store.drop_lease(net_id, ep)?;
            net.endpoints.remove(ep);
        }
    }
    Ok(())
}

/// Removes an endpoint: veth, port rules, reservations, lease. Missing is not an error.
pub fn leave(d: &BridgeDriver, network_id: &str, endpoint_id: &str) -> DriverResult<()> {
    d.with_inner(|inner| {
        let table = inner.table.to_string();
        let lease = inner
            .net_mut(network_id)
            .and_then(|n| n.endpoints.get(endpoint_id).cloned());
        let veth = lease
            .as_ref()
            .map(|l| l.veth.clone())
            .unwrap_or_else(|| veth_name(network_id, endpoint_id));
        // A container that exited took its namespace with it: the kernel deletes the pair by
        // itself, and the reaper makes sure of it without this call waiting.
        // (No veth at all, e.g. `--network none`: nothing to ask the kernel, whose rtnl lock
        // may be busy dismantling the previous container's namespace.)
        let index = link::index_of(&veth);
        let deferred = lease.as_ref().is_some_and(|l| !netns_alive(l))
            && index.is_some_and(|i| inner.reaper.delete_later(i).is_ok());
        if index.is_some() && !deferred {
            link::delete(inner.sock()?, &veth)
                .map_err(|e| DriverError::io(format!("deleting {veth}"), e))?;
        }
        let Some(lease) = lease else { return Ok(()) };
        inner.release(network_id, endpoint_id);
        save_lease(inner, network_id, endpoint_id, None)?;
        if !lease.ports.is_empty() {
            let entries = nft::lease_dnats(&lease.ip, &lease.ports);
            if nft::apply(&nft::elements(&table, &entries, false)).is_err() {
                // An element was already gone (table re-rendered): render the table afresh.
                nft::apply(&inner.render())?;
            }
        }
        Ok(())
    })
}

/// Whether the namespace an endpoint joined is still there: its file names the same
/// namespace (a dead container's `/proc/PID` is gone, or is another process's). Unknown
/// (a lease from an older berthd) counts as alive.
fn netns_alive(l: &Lease) -> bool {
    l.netns_ino == 0
        || std::fs::metadata(&l.netns)
            .map(|m| m.ino() == l.netns_ino)
            .unwrap_or(false)
}
