//! The filtering half of the driver's nftables table, Docker's `FORWARD` semantics in
//! berth's own table:
//!
//! * `forward` (filter hook) first jumps to `berth-user`, the operators' chain (Docker's
//!   `DOCKER-USER`), which berth creates empty and never flushes or deletes; then it drops
//!   traffic between different berth bridges and into or out of `--internal` networks, accepts
//!   established/related traffic, and per bridge accepts DNAT'ed traffic (published ports),
//!   traffic between its containers (`icc`, or drops it without), traffic leaving it, and drops
//!   everything else that is routed onto it (an unpublished container port reached from
//!   another host).
//! * `prerouting_raw` drops packets for 127.0.0.0/8 that arrive on any interface but `lo`
//!   before conntrack and NAT see them: berth sets `route_localnet` on its bridges (so the
//!   host reaches `-p 127.0.0.1:P:CP` through DNAT), which must neither let a container reach
//!   the host's loopback services nor let another host reach a loopback-only published port
//!   by sending to 127.0.0.1.
//!
//! Containers on one bridge talk to each other at layer 2; those frames reach the `forward`
//! hook only through `br_netfilter` (`bridge-nf-call-iptables=1`), which a network without
//! icc therefore switches on, as Docker does.

use crate::state::NetState;
use berth_core::{DriverError, DriverResult};
use std::collections::BTreeMap;

/// The operators' chain, evaluated first on the forward path; berth never touches its rules.
pub const USER_CHAIN: &str = "berth-user";
/// The network option that turns inter-container communication on or off.
pub const OPT_ENABLE_ICC: &str = "com.docker.network.bridge.enable_icc";

/// Reads a boolean as Go's `strconv.ParseBool` does (Docker's reading of driver options).
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The `enable_icc` option of a network, `None` when unset; an unreadable value is an error.
pub fn icc_option(options: &BTreeMap<String, String>) -> DriverResult<Option<bool>> {
    match options.get(OPT_ENABLE_ICC) {
        None => Ok(None),
        Some(v) => parse_bool(v.trim()).map(Some).ok_or_else(|| {
            DriverError::InvalidInput(format!(
                "failed to parse {OPT_ENABLE_ICC} value {v:?}: invalid syntax"
            ))
        }),
    }
}

/// Whether containers of `net` may talk to each other: the option, else (the default network)
/// the daemon's `icc`, else yes.
pub fn icc(net: &NetState, default_icc: bool) -> bool {
    match icc_option(&net.spec.options) {
        Ok(Some(v)) => v,
        _ if net.spec.name == "bridge" => default_icc,
        _ => true,
    }
}

/// The rules of the `forward` chain, in order.
pub fn forward_rules(nets: &[&NetState], default_icc: bool) -> Vec<String> {
    let mut r = vec![format!("jump {USER_CHAIN}")];
    for n in nets {
        let (br, id) = (&n.bridge, &n.spec.id);
        if n.spec.internal {
            r.push(format!(
                "iifname \"{br}\" oifname != \"{br}\" drop comment \"net {id} internal\""
            ));
            r.push(format!(
                "oifname \"{br}\" iifname != \"{br}\" drop comment \"net {id} internal\""
            ));
        }
        let others: Vec<String> = nets
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| format!("\"{}\"", o.bridge))
            .collect();
        if !others.is_empty() {
            r.push(format!(
                "oifname \"{br}\" iifname {{ {} }} drop comment \"net {id} isolation\"",
                others.join(", ")
            ));
        }
    }
    if nets.is_empty() {
        return r;
    }
    r.push("ct state established,related accept".into());
    for n in nets {
        let (br, id) = (&n.bridge, &n.spec.id);
        r.push(format!(
            "oifname \"{br}\" ct status dnat accept comment \"net {id} published\""
        ));
        let verdict = if icc(n, default_icc) {
            "accept"
        } else {
            "drop"
        };
        r.push(format!(
            "iifname \"{br}\" oifname \"{br}\" {verdict} comment \"net {id} icc\""
        ));
        r.push(format!("iifname \"{br}\" accept comment \"net {id} out\""));
        r.push(format!("oifname \"{br}\" drop comment \"net {id} in\""));
    }
    r
}

/// The rules of the `prerouting_raw` chain.
pub fn raw_rules() -> Vec<String> {
    vec!["iifname != \"lo\" ip daddr 127.0.0.0/8 drop comment \"loopback from outside\"".into()]
}

/// Whether any of `nets` needs `br_netfilter` (a bridge without icc).
pub fn needs_br_netfilter(nets: &[&NetState], default_icc: bool) -> bool {
    nets.iter().any(|n| !icc(n, default_icc))
}

/// Makes bridged IPv4 traffic pass the `forward` hook (loading `br_netfilter` if needed).
pub fn ensure_br_netfilter() -> DriverResult<()> {
    const KNOB: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if !std::path::Path::new(KNOB).exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    match std::fs::read_to_string(KNOB) {
        Ok(v) if v.trim() == "1" => Ok(()),
        Ok(_) => std::fs::write(KNOB, "1")
            .map_err(|e| DriverError::io("enabling bridge-nf-call-iptables", e)),
        Err(e) => Err(DriverError::io(
            "networks without inter-container communication need br_netfilter",
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::network::NetworkSpec;

    fn net(name: &str, bridge: &str, icc: Option<&str>) -> NetState {
        let mut spec = NetworkSpec {
            id: name.into(),
            name: name.into(),
            ..Default::default()
        };
        if let Some(v) = icc {
            spec.options.insert(OPT_ENABLE_ICC.into(), v.into());
        }
        NetState {
            spec,
            bridge: bridge.into(),
            subnet: "10.1.0.0/24".into(),
            gateway: "10.1.0.1".into(),
            ip_range: "10.1.0.0/24".into(),
            subnet_v6: String::new(),
            gateway_v6: String::new(),
            ip_range_v6: String::new(),
            last: 0,
            endpoints: Default::default(),
        }
    }

    #[test]
    fn icc_follows_the_option_then_the_daemon() {
        assert!(!icc(&net("bridge", "b0", None), false));
        assert!(icc(&net("bridge", "b0", Some("true")), false));
        assert!(icc(&net("app", "b1", None), false));
        assert!(!icc(&net("app", "b1", Some("0")), true));
        let mut bad = BTreeMap::new();
        bad.insert(OPT_ENABLE_ICC.to_string(), "perhaps".to_string());
        assert!(icc_option(&bad).is_err());
    }

    #[test]
    fn the_user_chain_comes_first_and_each_bridge_ends_in_a_drop() {
        let (a, b) = (net("a", "ba", Some("false")), net("b", "bb", None));
        let rules = forward_rules(&[&a, &b], true);
        assert_eq!(rules[0], format!("jump {USER_CHAIN}"));
        let pos = |needle: &str| {
            rules
                .iter()
                .position(|r| r.starts_with(needle))
                .unwrap_or(usize::MAX)
        };
        assert!(pos("oifname \"ba\" iifname { \"bb\" } drop") < pos("ct state"));
        assert!(pos("ct state") < pos("oifname \"ba\" ct status dnat accept"));
        assert!(pos("iifname \"ba\" oifname \"ba\" drop") < pos("oifname \"ba\" drop"));
        assert!(pos("iifname \"bb\" oifname \"bb\" accept") < pos("oifname \"bb\" drop"));
        assert_eq!(forward_rules(&[], true), vec![format!("jump {USER_CHAIN}")]);
    }
}
