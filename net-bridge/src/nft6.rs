//! The IPv6 half of the firewall: a table of family `ip6` named as the driver's IPv4 table,
//! present while some network has an IPv6 subnet. It holds only the `forward` chain, with the
//! same Docker `FORWARD` semantics as the IPv4 one (`filter::forward_rules`: the operators'
//! `berth-user` chain first, isolation between berth's bridges and of `--internal`
//! networks, icc) over the IPv6 networks' bridges: the host routes IPv6 between its
//! interfaces whenever `net.ipv6.conf.all.forwarding` is on, and without these rules a
//! container could reach another network's containers through it. There is no IPv6 NAT:
//! traffic leaving a bridge keeps its source address.

use crate::filter;
use crate::nft;
use crate::state::NetState;
use berth_core::{DriverError, DriverResult};
use std::fmt::Write as _;
use std::process::{Command, Stdio};

const FORWARD_HOOK: &str = "type filter hook forward priority filter; policy accept;";

/// The networks with an IPv6 subnet.
fn v6_nets<'a>(nets: &[&'a NetState]) -> Vec<&'a NetState> {
    nets.iter()
        .copied()
        .filter(|n| !n.subnet_v6.is_empty())
        .collect()
}

/// The `ip6` table `table` for the IPv6 networks among `nets`, as one transaction that
/// replaces berth's chain and keeps the operators' one.
pub fn render(table: &str, nets: &[&NetState], default_icc: bool) -> String {
    let six = v6_nets(nets);
    let mut s = String::new();
    let _ = writeln!(s, "table ip6 {table} {{}}");
    let _ = writeln!(s, "add chain ip6 {table} {}", filter::USER_CHAIN);
    let _ = writeln!(s, "add chain ip6 {table} forward {{ {FORWARD_HOOK} }}");
    let _ = writeln!(s, "flush chain ip6 {table} forward");
    for r in filter::forward_rules(&six, default_icc) {
        let _ = writeln!(s, "add rule ip6 {table} forward {r}");
    }
    s
}

/// Brings the `ip6` table in line with `nets`: rendered while some has an IPv6 subnet (with
/// bridged IPv6 frames passing the hook when one of those is without icc), else retired —
/// deleted unless the operators' chain has rules, and never created for IPv4-only hosts.
pub fn apply(table: &str, nets: &[&NetState], default_icc: bool) -> DriverResult<()> {
    let six = v6_nets(nets);
    if six.is_empty() {
        return retire(table);
    }
    if filter::needs_br_netfilter(&six, default_icc) {
        filter::ensure_br_netfilter()?;
        std::fs::write("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "1")
            .map_err(|e| DriverError::io("enabling bridge-nf-call-ip6tables", e))?;
    }
    nft::apply(&render(table, &six, default_icc))
}

/// Removes the `ip6` table when it exists and the operators' chain in it is empty; with
/// operators' rules only berth's chain is emptied.
fn retire(table: &str) -> DriverResult<()> {
    let listing = Command::new("nft")
        .args(["list", "chain", "ip6", table, filter::USER_CHAIN])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| DriverError::io("running nft", e))?;
    if !listing.status.success() {
        return Ok(()); // no such table: nothing of ours
    }
    let text = String::from_utf8_lossy(&listing.stdout);
    if nft::has_rules(&text) {
        nft::apply(&render(table, &[], true))
    } else {
        nft::apply(&format!(
            "table ip6 {table} {{}}\ndelete table ip6 {table}\n"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::network::NetworkSpec;

    fn net(name: &str, v6: &str) -> NetState {
        NetState {
            spec: NetworkSpec {
                id: name.into(),
                name: name.into(),
                ..Default::default()
            },
            bridge: format!("br-{name}"),
            subnet: "10.1.0.0/24".into(),
            gateway: "10.1.0.1".into(),
            ip_range: "10.1.0.0/24".into(),
            subnet_v6: v6.into(),
            gateway_v6: String::new(),
            ip_range_v6: String::new(),
            last: 0,
            endpoints: Default::default(),
        }
    }

    #[test]
    fn only_ipv6_bridges_are_filtered_and_isolated() {
        let (a, b, c) = (
            net("a", "fd42:1::/64"),
            net("b", "fd42:2::/64"),
            net("c", ""),
        );
        let s = render("berth_x", &[&a, &b, &c], true);
        assert!(s.starts_with("table ip6 berth_x {}\n"), "{s}");
        assert!(
            s.contains("add rule ip6 berth_x forward jump berth-user"),
            "{s}"
        );
        assert!(
            s.contains("oifname \"br-a\" iifname { \"br-b\" } drop"),
            "{s}"
        );
        assert!(!s.contains("br-c"), "{s}");
    }
}
