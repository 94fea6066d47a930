//! A container's endpoints: which networks it is on (decided at create from `NetworkMode` and
//! `NetworkingConfig.EndpointsConfig`, or added by `network connect`), joining them at start
//! (the mode's network first, as `eth0`), and leaving them at exit.
//!
//! `NetworkSettings.Networks.<name>` keeps the endpoint's configuration (`Aliases`,
//! `IPAMConfig`) for the container's whole life, as Docker's does; the runtime fields
//! (`EndpointID`, `IPAddress`, `Gateway`, `MacAddress`, ...) are filled at start and cleared at
//! exit. An entry with a non-empty `EndpointID` is a live endpoint.
//!
//! The driver's answer to `join` ([`EndpointInfo`]) is the truth about the endpoint: its
//! IPv4 and IPv6 addresses and gateways fill the entry, and the resolver settings it asks
//! for (if any) are kept in the entry (`BerthDriverDNS`) and written to the container's
//! `resolv.conf` ([`driver_resolv`]) unless the user gave `--dns`; a driver with no DNS
//! wishes (the bridge) leaves today's choice: the embedded server on user networks, the
//! host's resolvers otherwise. The driver installs the routes it reports, inside the
//! namespace, before it answers (the network conformance suite checks both agree).

use crate::containers::Container;
use crate::containers::ContainerRecord;
use crate::error::ServiceError;
use crate::model::network::NetworkRecord;
use crate::state::Ctx;
use berth_api::types::container::{HostConfig, NetworkingConfig, PortBinding as HostPort};
use berth_api::types::network::EndpointSettings;
use berth_core::network::{EndpointDns, EndpointInfo, EndpointSpec, PortBinding};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Modes that are not a network's name.
pub(super) fn special_mode(mode: &str) -> bool {
    matches!(mode, "host" | "none") || mode.starts_with("container:")
}

/// An endpoint configuration of a request (`EndpointsConfig.<name>` of create or
/// `network connect`; absent = none), or Docker's 400 naming the field of the wrong type.
pub fn requested(epc: Option<&Value>, name: &str) -> Result<EndpointSettings, ServiceError> {
    match epc.filter(|v| !v.is_null()) {
        None => Ok(EndpointSettings::default()),
        Some(v) => serde_path_to_error::deserialize(v).map_err(|e| {
            ServiceError::bad_request(format!(
                "json: invalid value for EndpointsConfig.{name}.{}: {}",
                e.path(),
                e.inner()
            ))
        }),
    }
}

/// The `NetworkSettings.Networks.<name>` entry of a configured, not yet joined endpoint:
/// the configuration of `epc` on network `net`.
pub fn entry(net: &NetworkRecord, epc: &EndpointSettings) -> EndpointSettings {
    let mut ep = EndpointSettings {
        ipam_config: epc.ipam_config.clone(),
        links: epc.links.clone(),
        aliases: epc.aliases.clone(),
        mac_address: epc.mac_address.clone(),
        driver_opts: epc.driver_opts.clone(),
        network_id: net.id.clone(),
        ..EndpointSettings::default()
    };
    if !epc.mac_address.is_empty() {
        ep.extra
            .insert(CONFIGURED_MAC.into(), json!(epc.mac_address));
    }
    ep
}

/// The key of an endpoint entry holding the MAC address its configuration asked for, which
/// `MacAddress` shows again once the container has left the network (inspect hides it).
const CONFIGURED_MAC: &str = "BerthMacAddress";

/// Checks an endpoint configuration against its network, with Docker's texts.
pub fn validate(net: &NetworkRecord, epc: &EndpointSettings) -> Result<(), ServiceError> {
    let user = !super::PREDEFINED.contains(&net.name.as_str());
    let ip = requested_ip(epc).or(requested_ip6(epc)).unwrap_or("");
    let aliases = epc.aliases.as_ref().is_some_and(|a| !a.is_empty());
    if !user && !ip.is_empty() {
        return Err(ServiceError::bad_request(
            "user specified IP address is supported on user defined networks only",
        ));
    }
    if !user && aliases {
        return Err(ServiceError::bad_request(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if let Some(ip6) = requested_ip6(epc) {
        if ip6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ServiceError::bad_request(format!(
                "invalid IPv6 address: {ip6}"
            )));
        }
    }
    if let Some(v4) = requested_ip(epc) {
        if v4.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(ServiceError::bad_request(format!(
                "invalid IPv4 address: {v4}"
            )));
        }
    }
    // Each family's address needs a pool of that family the user configured (IPv6 pools
    // always are).
    let v6_pool = || {
        net.enable_ipv6
            && super::ipam::subnets(&net.ipam.config)
                .iter()
                .any(|c| c.is_v6())
    };
    let unconfigured = (requested_ip(epc).is_some() && !net.user_subnet)
        || (requested_ip6(epc).is_some() && !v6_pool());
    if unconfigured {
        return Err(ServiceError::bad_request(
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ));
    }
    Ok(())
}

/// The address asked for with `--ip`, if any.
fn requested_ip(epc: &EndpointSettings) -> Option<&str> {
    epc.ipam_config
        .as_ref()
        .map(|c| c.ipv4_address.as_str())
        .filter(|s| !s.is_empty())
}

/// The address asked for with `--ip6`, if any.
fn requested_ip6(epc: &EndpointSettings) -> Option<&str> {
    epc.ipam_config
        .as_ref()
        .map(|c| c.ipv6_address.as_str())
        .filter(|s| !s.is_empty())
}

/// `NetworkSettings.Networks` of a new container: the mode's network and every network of
/// `NetworkingConfig.EndpointsConfig`, validated (unknown network: Docker's 404).
pub fn plan(
    ctx: &Ctx,
    host_config: &HostConfig,
    networking: &NetworkingConfig,
) -> Result<BTreeMap<String, Box<EndpointSettings>>, ServiceError> {
    let mode = host_config.network_mode.as_str();
    let mode = if mode.is_empty() || mode == "default" {
        "bridge"
    } else {
        mode
    };
    let none = BTreeMap::new();
    let eps = networking.endpoints_config.as_ref().unwrap_or(&none);
    let mut out = BTreeMap::new();
    if special_mode(mode) {
        if let Some(k) = eps.keys().find(|k| k.as_str() != mode) {
            return Err(ServiceError::bad_request(format!(
                "conflicting options: network {k} cannot be used with network mode {mode}"
            )));
        }
        if !mode.starts_with("container:") {
            let net = ctx.networks.get(mode)?;
            let ep = entry(&net, &EndpointSettings::default());
            out.insert(mode.to_string(), Box::new(ep));
        }
        return Ok(out);
    }
    let mut keys: Vec<String> = vec![mode.to_string()];
    // The CLI names the default network `default`.
    let is_mode = |k: &str| k == mode || (k == "default" && mode == "bridge");
    keys.extend(eps.keys().filter(|k| !is_mode(k)).cloned());
    for key in keys {
        // As Docker, an unknown network is not a create error (a 404 here would make the CLI
        // pull the image): `start` reports it.
        let known = ctx.networks.get(&key);
        let net = known
            .as_ref()
            .cloned()
            .unwrap_or_else(|_| super::record("", &key, ""));
        let epc = eps
            .get(&key)
            .or_else(|| eps.get(&net.name))
            .or_else(|| {
                eps.iter()
                    .find(|(k, _)| key == mode && is_mode(k))
                    .map(|e| e.1)
            })
            .cloned()
            .unwrap_or_default();
        if known.is_ok() {
            validate(&net, &epc)?;
        }
        out.insert(net.name.clone(), Box::new(entry(&net, &epc)));
    }
    Ok(out)
}

/// The names a container answers to on a network: its name, short id and the aliases.
pub fn dns_names(rec: &ContainerRecord, ep: &EndpointSettings) -> Vec<String> {
    let mut names = vec![
        rec.short_name().to_string(),
        rec.id.chars().take(12).collect(),
    ];
    for a in ep.aliases.iter().flatten().filter(|a| !a.is_empty()) {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    names
}

/// The networks to join, in order (the mode's network first).
fn to_join(rec: &ContainerRecord) -> Vec<String> {
    let mode = rec.host_config.network_mode.as_str();
    let mode = if mode == "default" || mode.is_empty() {
        "bridge"
    } else {
        mode
    };
    if special_mode(mode) {
        return Vec::new();
    }
    let mut names: Vec<String> = rec.network_settings.networks.keys().cloned().collect();
    // Older records (and `--network <id>`) may not key the mode's network by its name.
    let first = names.iter().position(|n| n == mode).unwrap_or_else(|| {
        names.insert(0, mode.to_string());
        0
    });
    names.swap(0, first);
    names
}

/// Joins one network: the driver's `join`; returns the network's name, the entry with its
/// runtime fields filled, and the ports bound.
pub async fn join_one(
    ctx: &Ctx,
    c: &Container,
    pid: i64,
    key: &str,
    ifname: String,
    ports: Vec<PortBinding>,
) -> Result<(String, EndpointSettings, Vec<PortBinding>), ServiceError> {
    let net = ctx.networks.get(key)?;
    let name = net.name.clone();
    let epc = c.view(|r| {
        let nets = &r.network_settings.networks;
        nets.get(&name).or_else(|| nets.get(key)).cloned()
    });
    let mut ep = entry(&net, &epc.unwrap_or_default());
    let Some(drv) = ctx.networks.driver(&net, ctx.network.as_ref()) else {
        return Ok((name, ep, Vec::new()));
    };
    // A fresh id per endpoint, as dockerd's (never the container's).
    let endpoint_id = super::random_id();
    let mac = Some(ep.mac_address.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| super::mac::first_mac(c, &ifname));
    let spec = EndpointSpec {
        network_id: net.driver_id().to_string(),
        endpoint_id: endpoint_id.clone(),
        container_id: c.id.clone(),
        netns_path: format!("/proc/{pid}/ns/net"),
        ifname,
        ip: requested_ip(&ep).map(str::to_string),
        mac,
        ports,
        ip6: requested_ip6(&ep).map(str::to_string),
    };
    let info = tokio::task::spawn_blocking(move || drv.join(&spec)).await??;
    fill(&mut ep, &endpoint_id, &info);
    if !super::PREDEFINED.contains(&name.as_str()) {
        ep.dns_names = Some(c.view(|r| dns_names(r, &ep)));
    }
    publish(ctx, &net, "connect", Some(&c.id));
    Ok((name, ep, info.ports))
}

/// Whether an endpoint entry's member is berth's bookkeeping (not shown by inspect).
pub fn bookkeeping(key: &str) -> bool {
    key.starts_with("Berth")
}

/// The key of an endpoint entry holding the resolver settings its driver asked for.
const DRIVER_DNS: &str = "BerthDriverDNS";

/// Fills an endpoint entry's runtime fields from the driver's answer to `join`.
fn fill(ep: &mut EndpointSettings, endpoint_id: &str, info: &EndpointInfo) {
    ep.endpoint_id = endpoint_id.to_string();
    ep.gateway.clone_from(&info.gateway);
    ep.ip_address.clone_from(&info.ip);
    ep.ip_prefix_len = if info.ip.is_empty() {
        0
    } else {
        i64::from(info.prefix_len)
    };
    ep.mac_address.clone_from(&info.mac);
    let v6 = info.ipv6;
    ep.global_ipv6_address = v6.map(|c| c.addr.to_string()).unwrap_or_default();
    ep.global_ipv6_prefix_len = v6.map_or(0, |c| i64::from(c.prefix));
    ep.ipv6_gateway = info.gateway_v6.map(|g| g.to_string()).unwrap_or_default();
    if !info.dns.is_empty() {
        ep.extra.insert(DRIVER_DNS.into(), json!(info.dns));
    }
}

/// Clears an endpoint entry's runtime fields (the container left the network).
fn clear(ep: &mut EndpointSettings) {
    ep.clear_runtime();
    if let Some(mac) = ep.extra.get(CONFIGURED_MAC).and_then(Value::as_str) {
        ep.mac_address = mac.to_string();
    }
    ep.global_ipv6_address.clear();
    ep.global_ipv6_prefix_len = 0;
    ep.ipv6_gateway.clear();
    ep.extra.remove(DRIVER_DNS);
}

/// The `resolv.conf` the driver of the container's first network asked for, if it asked
/// for any and the user gave no `--dns` (which wins, as in Docker).
pub fn driver_resolv(rec: &ContainerRecord) -> Option<String> {
    if rec.host_config.dns.as_ref().is_some_and(|d| !d.is_empty()) {
        return None;
    }
    let first = to_join(rec).into_iter().next()?;
    let stored = rec
        .network_settings
        .networks
        .get(&first)?
        .extra
        .get(DRIVER_DNS)?;
    let dns: EndpointDns = serde_json::from_value(stored.clone()).ok()?;
    if dns.servers.is_empty() {
        return None;
    }
    Some(resolv_text(&dns))
}

/// Renders resolver settings as `resolv.conf` lines.
fn resolv_text(dns: &EndpointDns) -> String {
    let mut out: String = dns
        .servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    if !dns.search.is_empty() {
        out.push_str(&format!("search {}\n", dns.search.join(" ")));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

/// A network event as Docker emits them (`create`, `destroy`, and `connect`/`disconnect`
/// with the container, also when a container joins or leaves at start and stop).
pub fn publish(ctx: &Ctx, net: &NetworkRecord, action: &str, container: Option<&str>) {
    let mut attrs: std::collections::BTreeMap<String, String> =
        [("name", net.name.as_str()), ("type", net.driver.as_str())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    if let Some(c) = container {
        attrs.insert("container".to_string(), c.to_string());
    }
    ctx.events.publish("network", action, &net.id, attrs);
}

/// `NetworkSettings.Ports` from the bound ports.
fn ports_value(ports: &[PortBinding]) -> BTreeMap<String, Option<Vec<HostPort>>> {
    let mut bound: BTreeMap<String, Option<Vec<HostPort>>> = BTreeMap::new();
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            p.host_ip.as_str()
        };
        bound
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(HostPort {
                host_ip: ip.to_string(),
                host_port: p.host_port.to_string(),
            });
    }
    bound
}

/// Joins every network of a starting container (its process `pid` created, not yet running);
/// returns the address of its first endpoint. On failure nothing stays joined.
pub async fn join_all(ctx: &Ctx, c: &Container, pid: i64) -> Result<Option<String>, ServiceError> {
    let (names, first_ports) = c.view(|r| (to_join(r), crate::containers::exit::port_bindings(r)));
    let mut first_ports = Some(first_ports);
    let mut joined: Vec<(String, EndpointSettings)> = Vec::new();
    let mut bound = Vec::new();
    for (i, key) in names.iter().enumerate() {
        let ports = if i == 0 {
            first_ports.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        match join_one(ctx, c, pid, key, format!("eth{i}"), ports).await {
            Ok((name, ep, p)) => {
                if i == 0 {
                    bound = p;
                }
                joined.push((name, ep));
            }
            Err(e) => {
                let ids: Vec<(String, String)> = joined
                    .iter()
                    .filter_map(|(n, ep)| {
                        let net = ctx.networks.get(n).ok()?;
                        Some((net.driver_id().to_string(), ep.endpoint_id.clone()))
                    })
                    .collect();
                leave_ids(ctx, ids).await;
                let e = if e.is_server_side() || e.to_string().contains("already allocated") {
                    ServiceError::internal(format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {}",
                        c.name(),
                        c.id,
                        e
                    ))
                } else {
                    e
                };
                return Err(e);
            }
        }
    }
    let first = joined
        .first()
        .map(|(_, ep)| ep.ip_address.clone())
        .filter(|ip| !ip.is_empty());
    c.update(|r| {
        let ns = &mut r.network_settings;
        for (name, ep) in joined {
            if name == "bridge" {
                ns.show_default(&ep);
            }
            ns.networks.insert(name, Box::new(ep));
        }
        ns.ports = ports_value(&bound);
    });
    super::dns::serve(ctx, c, pid).await;
    Ok(first)
}

/// Leaves the driver side of endpoints `ids` (network driver id, endpoint id); errors are
/// only logged.
async fn leave_ids(ctx: &Ctx, ids: Vec<(String, String)>) {
    if ids.is_empty() {
        return;
    }
    let mut work = Vec::new();
    for (nid, ep) in ids {
        let drv = ctx
            .networks
            .list()
            .into_iter()
            .find(|n| n.driver_id() == nid)
            .and_then(|n| ctx.networks.driver(&n, ctx.network.as_ref()))
            .or_else(|| ctx.network.clone());
        if let Some(d) = drv {
            work.push((d, nid, ep));
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        for (d, nid, ep) in work {
            if let Err(e) = d.leave(&nid, &ep) {
                tracing::warn!("leaving network {nid}: {e}");
            }
        }
    })
    .await;
}

/// Leaves every network of a container that stopped (or failed to start) and clears the
/// endpoints' runtime fields, keeping their configuration. Returns the networks it left, for
/// their `disconnect` events ([`publish`]), which Docker sends after the container's `die`.
pub async fn leave_all(ctx: &Ctx, c: &Container) -> Vec<NetworkRecord> {
    ctx.networks.dns.stop(&c.id);
    // The default bridge always when the container has a network namespace of its own
    // (records from before a crash may not show it); none when it shares the host's or
    // another container's, or has no network (`none`), unless a network shows in its record.
    let (mode, nets) = c.view(|r| {
        let nets: Vec<(String, String)> = r
            .network_settings
            .networks
            .iter()
            .map(|(name, ep)| (name.clone(), ep.endpoint_id.clone()))
            .collect();
        (r.host_config.network_mode.clone(), nets)
    });
    let mode = if mode.is_empty() { "bridge" } else { &mode };
    let own = !(mode == "none" || mode == "host" || mode.starts_with("container:"));
    // Endpoints are left by the id they joined with; one not recorded live is left by the
    // container's id, the endpoint id of berths before 16 (missing is not an error).
    let mut ids: Vec<(String, String)> = Vec::new();
    let live_bridge = nets.iter().any(|(n, e)| n == "bridge" && !e.is_empty());
    if own && !live_bridge {
        ids.push(("bridge".to_string(), c.id.clone()));
    }
    let mut left = Vec::new();
    for (name, endpoint) in nets {
        let Ok(net) = ctx.networks.get(&name) else {
            continue;
        };
        if name == "host" || name == "none" {
            continue;
        }
        let live = !endpoint.is_empty();
        let ep = if live { endpoint } else { c.id.clone() };
        let key = (net.driver_id().to_string(), ep);
        if !ids.contains(&key) {
            ids.push(key);
        }
        if live {
            left.push(net);
        }
    }
    leave_ids(ctx, ids).await;
    c.update(|r| {
        let ns = &mut r.network_settings;
        ns.show_default(&EndpointSettings::default());
        ns.ports.clear();
        ns.networks.values_mut().for_each(|ep| clear(ep));
    });
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record on one network `name` with endpoint `ep`.
    fn record(name: &str, ep: &EndpointSettings) -> ContainerRecord {
        let mut rec = ContainerRecord::default();
        rec.host_config.network_mode = name.into();
        rec.network_settings
            .networks
            .insert(name.into(), Box::new(ep.clone()));
        rec
    }

    fn net(id: &str) -> NetworkRecord {
        crate::network::record(id, "n", "bridge")
    }

    #[test]
    fn a_drivers_answer_fills_the_entry_and_its_dns_becomes_resolv_conf() {
        let info = EndpointInfo {
            ip: "10.3.0.2".into(),
            prefix_len: 24,
            gateway: "10.3.0.1".into(),
            mac: "02:42:0a:03:00:02".into(),
            ipv6: "fd00:3::2/64".parse().ok(),
            gateway_v6: "fd00:3::1".parse().ok(),
            dns: EndpointDns {
                servers: vec!["10.3.0.1".parse().expect("ip")],
                search: vec!["corp.test".into()],
                options: vec!["ndots:1".into()],
            },
            ..EndpointInfo::default()
        };
        let mut ep = entry(&net("n"), &EndpointSettings::default());
        fill(&mut ep, "c1", &info);
        assert_eq!(ep.global_ipv6_address, "fd00:3::2");
        assert_eq!(ep.global_ipv6_prefix_len, 64);
        assert_eq!(ep.ipv6_gateway, "fd00:3::1");
        let mut rec = record("corp", &ep);
        assert_eq!(
            driver_resolv(&rec).as_deref(),
            Some("nameserver 10.3.0.1\nsearch corp.test\noptions ndots:1\n")
        );
        rec.host_config.dns = Some(vec!["9.9.9.9".into()]);
        assert_eq!(driver_resolv(&rec), None, "--dns wins");
        clear(&mut ep);
        assert!(!ep.extra.contains_key(DRIVER_DNS));
        assert_eq!(ep.global_ipv6_address, "");
    }

    #[test]
    fn a_driver_without_dns_wishes_leaves_resolv_conf_to_the_daemon() {
        let info = EndpointInfo {
            ip: "10.3.0.2".into(),
            ..EndpointInfo::default()
        };
        let mut ep = entry(&net("n"), &EndpointSettings::default());
        fill(&mut ep, "c1", &info);
        assert_eq!(driver_resolv(&record("bridge", &ep)), None);
    }
}
