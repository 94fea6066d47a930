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
use crate::error::ServiceError;
use crate::model::network::NetworkRecord;
use crate::state::Ctx;
use berth_core::network::{EndpointDns, EndpointInfo, EndpointSpec, PortBinding};
use serde_json::{json, Value};

/// Modes that are not a network's name.
fn special_mode(mode: &str) -> bool {
    matches!(mode, "host" | "none") || mode.starts_with("container:")
}

/// The `NetworkSettings.Networks.<name>` entry of a configured, not yet joined endpoint.
pub fn entry(net: &NetworkRecord, epc: &Value) -> Value {
    let list = |v: &Value| if v.is_array() { v.clone() } else { Value::Null };
    let ipam = if epc["IPAMConfig"].is_object() {
        epc["IPAMConfig"].clone()
    } else {
        Value::Null
    };
    json!({"IPAMConfig": ipam, "Links": list(&epc["Links"]), "Aliases": list(&epc["Aliases"]),
        "MacAddress": epc["MacAddress"].as_str().unwrap_or(""), "DriverOpts": epc["DriverOpts"],
        "NetworkID": net.id, "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DNSNames": null})
}

/// Checks an endpoint configuration against its network, with Docker's texts.
pub fn validate(net: &NetworkRecord, epc: &Value) -> Result<(), ServiceError> {
    let user = !super::PREDEFINED.contains(&net.name.as_str());
    let ip = epc["IPAMConfig"]["IPv4Address"].as_str().unwrap_or("");
    let aliases = epc["Aliases"].as_array().is_some_and(|a| !a.is_empty());
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
    if !ip.is_empty() {
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(ServiceError::bad_request(format!(
                "invalid IPv4 address: {ip}"
            )));
        }
        if !net.user_subnet {
            return Err(ServiceError::bad_request(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
    }
    Ok(())
}

/// `NetworkSettings.Networks` of a new container: the mode's network and every network of
/// `NetworkingConfig.EndpointsConfig`, validated (unknown network: Docker's 404).
pub fn plan(ctx: &Ctx, host_config: &Value, networking: &Value) -> Result<Value, ServiceError> {
    let mode = host_config["NetworkMode"].as_str().unwrap_or("bridge");
    let mode = if mode.is_empty() || mode == "default" {
        "bridge"
    } else {
        mode
    };
    let eps = networking["EndpointsConfig"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut out = serde_json::Map::new();
    if special_mode(mode) {
        if let Some(k) = eps.keys().find(|k| k.as_str() != mode) {
            return Err(ServiceError::bad_request(format!(
                "conflicting options: network {k} cannot be used with network mode {mode}"
            )));
        }
        if !mode.starts_with("container:") {
            let net = ctx.networks.get(mode)?;
            out.insert(mode.to_string(), entry(&net, &Value::Null));
        }
        return Ok(Value::Object(out));
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
            .unwrap_or(Value::Null);
        if known.is_ok() {
            validate(&net, &epc)?;
        }
        out.insert(net.name.clone(), entry(&net, &epc));
    }
    Ok(Value::Object(out))
}

/// The names a container answers to on a network: its name, short id and the aliases.
pub fn dns_names(c: &Container, ep: &Value) -> Vec<String> {
    let mut names = vec![c.name(), c.id.chars().take(12).collect()];
    for a in ep["Aliases"].as_array().into_iter().flatten() {
        if let Some(a) = a.as_str().filter(|a| !a.is_empty()) {
            if !names.iter().any(|n| n == a) {
                names.push(a.to_string());
            }
        }
    }
    names
}

/// The networks to join, in order (the mode's network first).
fn to_join(rec: &Value) -> Vec<String> {
    let mode = rec
        .pointer("/HostConfig/NetworkMode")
        .and_then(Value::as_str)
        .unwrap_or("bridge");
    let mode = if mode == "default" || mode.is_empty() {
        "bridge"
    } else {
        mode
    };
    if special_mode(mode) {
        return Vec::new();
    }
    let mut names: Vec<String> = rec["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
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
) -> Result<(String, Value, Vec<PortBinding>), ServiceError> {
    let net = ctx.networks.get(key)?;
    let name = net.name.clone();
    let rec = c.record();
    let epc = rec["NetworkSettings"]["Networks"]
        .get(&name)
        .or_else(|| rec["NetworkSettings"]["Networks"].get(key))
        .cloned()
        .unwrap_or(Value::Null);
    let mut ep = entry(&net, &epc);
    let Some(drv) = ctx.networks.driver(&net, ctx.network.as_ref()) else {
        return Ok((name, ep, Vec::new()));
    };
    let spec = EndpointSpec {
        network_id: net.driver_id().to_string(),
        endpoint_id: c.id.clone(),
        container_id: c.id.clone(),
        netns_path: format!("/proc/{pid}/ns/net"),
        ifname,
        ip: epc["IPAMConfig"]["IPv4Address"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        mac: epc["MacAddress"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        ports,
    };
    let info = tokio::task::spawn_blocking(move || drv.join(&spec)).await??;
    fill(&mut ep, &c.id, &info);
    if !super::PREDEFINED.contains(&name.as_str()) {
        ep["DNSNames"] = json!(dns_names(c, &ep));
    }
    publish(ctx, &net, "connect", Some(&c.id));
    Ok((name, ep, info.ports))
}

/// The key of an endpoint entry holding the resolver settings its driver asked for.
const DRIVER_DNS: &str = "BerthDriverDNS";

/// Fills an endpoint entry's runtime fields from the driver's answer to `join`.
fn fill(ep: &mut Value, endpoint_id: &str, info: &EndpointInfo) {
    ep["EndpointID"] = json!(endpoint_id);
    ep["Gateway"] = json!(info.gateway);
    ep["IPAddress"] = json!(info.ip);
    ep["IPPrefixLen"] = json!(if info.ip.is_empty() {
        0
    } else {
        info.prefix_len
    });
    ep["MacAddress"] = json!(info.mac);
    let v6 = info.ipv6;
    ep["GlobalIPv6Address"] = json!(v6.map(|c| c.addr.to_string()).unwrap_or_default());
    ep["GlobalIPv6PrefixLen"] = json!(v6.map_or(0, |c| c.prefix));
    ep["IPv6Gateway"] = json!(info.gateway_v6.map(|g| g.to_string()).unwrap_or_default());
    if !info.dns.is_empty() {
        ep[DRIVER_DNS] = json!(info.dns);
    }
}

/// Clears an endpoint entry's runtime fields (the container left the network).
fn clear(ep: &mut Value) {
    for k in [
        "EndpointID",
        "Gateway",
        "IPAddress",
        "MacAddress",
        "GlobalIPv6Address",
        "IPv6Gateway",
    ] {
        ep[k] = json!("");
    }
    ep["IPPrefixLen"] = json!(0);
    ep["GlobalIPv6PrefixLen"] = json!(0);
    ep["DNSNames"] = Value::Null;
    if let Some(m) = ep.as_object_mut() {
        m.remove(DRIVER_DNS);
    }
}

/// The `resolv.conf` the driver of the container's first network asked for, if it asked
/// for any and the user gave no `--dns` (which wins, as in Docker).
pub fn driver_resolv(rec: &Value) -> Option<String> {
    if rec["HostConfig"]["Dns"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return None;
    }
    let first = to_join(rec).into_iter().next()?;
    let stored = rec["NetworkSettings"]["Networks"]
        .get(&first)?
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
fn ports_value(ports: &[PortBinding]) -> Value {
    let mut bound = serde_json::Map::new();
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            p.host_ip.as_str()
        };
        let entry = bound.entry(key).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({"HostIp": ip, "HostPort": p.host_port.to_string()}));
        }
    }
    Value::Object(bound)
}

/// Joins every network of a starting container (its process `pid` created, not yet running);
/// returns the address of its first endpoint. On failure nothing stays joined.
pub async fn join_all(ctx: &Ctx, c: &Container, pid: i64) -> Result<Option<String>, ServiceError> {
    let rec = c.record();
    let names = to_join(&rec);
    let mut joined: Vec<(String, Value)> = Vec::new();
    let mut bound = Vec::new();
    for (i, key) in names.iter().enumerate() {
        let ports = if i == 0 {
            crate::containers::exit::port_bindings(&rec)
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
                let ids: Vec<String> = joined
                    .iter()
                    .filter_map(|(n, _)| ctx.networks.get(n).ok())
                    .map(|n| n.driver_id().to_string())
                    .collect();
                leave_ids(ctx, c, ids).await;
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
        .map(|(_, ep)| ep["IPAddress"].as_str().unwrap_or_default().to_string())
        .filter(|ip| !ip.is_empty());
    c.update(|r| {
        let ns = &mut r["NetworkSettings"];
        if !ns["Networks"].is_object() {
            ns["Networks"] = json!({});
        }
        for (name, ep) in joined {
            if name == "bridge" {
                for k in ["IPAddress", "Gateway", "IPPrefixLen", "MacAddress"] {
                    ns[k] = ep[k].clone();
                }
            }
            ns["Networks"][&name] = ep;
        }
        ns["Ports"] = ports_value(&bound);
    });
    super::dns::serve(ctx, c, pid).await;
    Ok(first)
}

/// Leaves the driver side of networks `ids` (driver ids); errors are only logged.
async fn leave_ids(ctx: &Ctx, c: &Container, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let mut work = Vec::new();
    for nid in ids {
        let drv = ctx
            .networks
            .list()
            .into_iter()
            .find(|n| n.driver_id() == nid)
            .and_then(|n| ctx.networks.driver(&n, ctx.network.as_ref()))
            .or_else(|| ctx.network.clone());
        if let Some(d) = drv {
            work.push((d, nid));
        }
    }
    let id = c.id.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for (d, nid) in work {
            if let Err(e) = d.leave(&nid, &id) {
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
    let rec = c.record();
    // The default bridge always when the container has a network namespace of its own
    // (records from before a crash may not show it); none when it shares the host's or
    // another container's, or has no network (`none`), unless a network shows in its record.
    let mode = rec["HostConfig"]["NetworkMode"]
        .as_str()
        .unwrap_or("bridge");
    let own = !(mode == "none" || mode == "host" || mode.starts_with("container:"));
    let mut ids = if own {
        vec!["bridge".to_string()]
    } else {
        Vec::new()
    };
    let mut left = Vec::new();
    if let Some(m) = rec["NetworkSettings"]["Networks"].as_object() {
        for (name, ep) in m {
            let Ok(net) = ctx.networks.get(name) else {
                continue;
            };
            let id = net.driver_id().to_string();
            if !ids.contains(&id) && !super::PREDEFINED.contains(&name.as_str()) {
                ids.push(id);
            }
            if !ep["EndpointID"].as_str().unwrap_or_default().is_empty() {
                left.push(net);
            }
        }
    }
    leave_ids(ctx, c, ids).await;
    c.update(|r| {
        let ns = &mut r["NetworkSettings"];
        ns["IPAddress"] = json!("");
        ns["Gateway"] = json!("");
        ns["IPPrefixLen"] = json!(0);
        ns["MacAddress"] = json!("");
        ns["Ports"] = json!({});
        if let Some(m) = ns["Networks"].as_object_mut() {
            m.values_mut().for_each(clear);
        }
    });
    left
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut ep = entry(&net("n"), &Value::Null);
        fill(&mut ep, "c1", &info);
        assert_eq!(ep["GlobalIPv6Address"], "fd00:3::2");
        assert_eq!(ep["GlobalIPv6PrefixLen"], 64);
        assert_eq!(ep["IPv6Gateway"], "fd00:3::1");
        let mut rec = json!({"HostConfig": {"NetworkMode": "corp"},
            "NetworkSettings": {"Networks": {"corp": ep.clone()}}});
        assert_eq!(
            driver_resolv(&rec).as_deref(),
            Some("nameserver 10.3.0.1\nsearch corp.test\noptions ndots:1\n")
        );
        rec["HostConfig"]["Dns"] = json!(["9.9.9.9"]);
        assert_eq!(driver_resolv(&rec), None, "--dns wins");
        clear(&mut ep);
        assert!(ep.get(DRIVER_DNS).is_none());
        assert_eq!(ep["GlobalIPv6Address"], "");
    }

    #[test]
    fn a_driver_without_dns_wishes_leaves_resolv_conf_to_the_daemon() {
        let info = EndpointInfo {
            ip: "10.3.0.2".into(),
            ..EndpointInfo::default()
        };
        let mut ep = entry(&net("n"), &Value::Null);
        fill(&mut ep, "c1", &info);
        let rec = json!({"HostConfig": {"NetworkMode": "bridge"},
            "NetworkSettings": {"Networks": {"bridge": ep}}});
        assert_eq!(driver_resolv(&rec), None);
    }
}
