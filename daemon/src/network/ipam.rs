//! A network create request's `IPAM.Config`, checked as dockerd (25+) checks it before any
//! address is allocated (`invalid network config:` and one line per fault, 400), split into the
//! IPv4 and IPv6 pools the driver is asked for, and the overlap check against the networks
//! that exist (dockerd's 403 `Pool overlaps with other one on this address space`).
//!
//! The record keeps `IPAM.Config` as the client sent it (dockerd's inspect shows the user's
//! configuration, a gateway only when one was given); only a network without an IPv4 pool of
//! its own shows the subnet and gateway the driver picked, first.

use crate::error::ServiceError;
use berth_api::types::network::IpamConfig;
use berth_core::network::{Cidr, NetworkSpec};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Docker's text for a pool that overlaps another network's.
pub const OVERLAP: &str = "Pool overlaps with other one on this address space";

/// The pools of a checked request: at most one per family.
#[derive(Debug, Default, Clone)]
pub struct Pools {
    /// The IPv4 pool, if the client gave one.
    pub v4: Option<Pool>,
    /// The IPv6 pool, if the client gave one and enabled IPv6.
    pub v6: Option<Pool>,
}

/// One checked pool.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The subnet (host bits clear: checked).
    pub subnet: Cidr,
    /// The gateway asked for.
    pub gateway: Option<String>,
    /// The allocation range asked for.
    pub ip_range: Option<String>,
    /// `AuxiliaryAddresses`.
    pub aux: BTreeMap<String, String>,
}

fn family(v6: bool) -> &'static str {
    if v6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// The `AuxiliaryAddresses` of a config (kept in its `extra` map, as sent).
pub fn aux_of(cfg: &IpamConfig) -> BTreeMap<String, String> {
    match cfg.extra.get("AuxiliaryAddresses") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Checks one address (a gateway, an auxiliary address) against its subnet.
fn address(addr: &str, subnet: &Cidr) -> Option<String> {
    if addr.is_empty() {
        return None;
    }
    let Ok(a) = addr.parse::<IpAddr>() else {
        return Some("invalid address".into());
    };
    if a.is_ipv6() != subnet.is_v6() {
        return Some(format!(
            "parent subnet is an {} block",
            family(subnet.is_v6())
        ));
    }
    let inside = Cidr::new(a, subnet.prefix)
        .map(|c| c.network() == subnet.network())
        .unwrap_or(false);
    (!inside).then(|| format!("parent subnet {subnet} doesn't contain this address"))
}

/// Checks an `IPRange` against its subnet.
fn range(r: &str, subnet: &Cidr, errs: &mut Vec<String>) {
    if r.is_empty() {
        return;
    }
    let Ok(p) = r.parse::<Cidr>() else {
        errs.push(format!("invalid ip-range {r}: invalid CIDR block notation"));
        return;
    };
    if p.is_v6() != subnet.is_v6() {
        errs.push(format!(
            "invalid ip-range {r}: parent subnet is an {} block",
            family(subnet.is_v6())
        ));
        return;
    }
    if p.prefix < subnet.prefix {
        errs.push(format!(
            "invalid ip-range {r}: CIDR block is bigger than its parent subnet {subnet}"
        ));
    }
    if p.network() != p {
        errs.push(format!(
            "invalid ip-range {p}: it should be {}",
            p.network()
        ));
    }
    if !overlaps(&p, subnet) {
        errs.push(format!(
            "invalid ip-range {r}: parent subnet {subnet} doesn't contain ip-range"
        ));
    }
}

/// Whether two prefixes of one family share an address.
pub fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    if a.is_v6() != b.is_v6() {
        return false;
    }
    let shorter = a.prefix.min(b.prefix);
    let cut = |c: &Cidr| Cidr::new(c.addr, shorter).map(|x| x.network()).ok();
    cut(a) == cut(b)
}

/// Checks a request's `IPAM.Config` as dockerd does; `taken` are the subnets of existing
/// networks. IPv6 pools count only with `EnableIPv6`.
pub fn check(
    configs: &[IpamConfig],
    enable_ipv6: bool,
    taken: &[Cidr],
) -> Result<Pools, ServiceError> {
    let mut errs = Vec::new();
    let mut pools = Pools::default();
    let mut seen: Vec<Cidr> = Vec::new();
    for cfg in configs {
        let Ok(subnet) = cfg.subnet.parse::<Cidr>() else {
            errs.push(format!(
                "invalid subnet {}: invalid CIDR block notation",
                cfg.subnet
            ));
            continue;
        };
        if subnet.is_v6() && !enable_ipv6 {
            continue;
        }
        if subnet.network() != subnet {
            errs.push(format!(
                "invalid subnet {subnet}: it should be {}",
                subnet.network()
            ));
        }
        range(&cfg.ip_range, &subnet, &mut errs);
        if let Some(e) = address(&cfg.gateway, &subnet) {
            errs.push(format!("invalid gateway {}: {e}", cfg.gateway));
        }
        let aux = aux_of(cfg);
        for (name, a) in &aux {
            if let Some(e) = address(a, &subnet) {
                errs.push(format!("invalid auxiliary address {name}: {e}"));
            }
        }
        let subnet = subnet.network();
        if seen.iter().chain(taken).any(|t| overlaps(t, &subnet)) {
            return Err(ServiceError::Forbidden(OVERLAP.into()));
        }
        seen.push(subnet);
        let pool = Pool {
            subnet,
            gateway: Some(cfg.gateway.clone()).filter(|g| !g.is_empty()),
            ip_range: Some(cfg.ip_range.clone()).filter(|r| !r.is_empty()),
            aux,
        };
        let slot = if subnet.is_v6() {
            &mut pools.v6
        } else {
            &mut pools.v4
        };
        if slot.is_some() {
            errs.push(format!(
                "only one {} pool per network is supported",
                family(subnet.is_v6())
            ));
        }
        *slot = Some(pool);
    }
    match errs.as_slice() {
        [] => Ok(pools),
        [one] => Err(ServiceError::bad_request(format!(
            "invalid network config:\n{one}"
        ))),
        many => Err(ServiceError::bad_request(format!(
            "invalid network config:\n* {}",
            many.join("\n* ")
        ))),
    }
}

/// Fills the driver spec's address fields from checked pools.
pub fn fill_spec(spec: &mut NetworkSpec, pools: &Pools) {
    if let Some(p) = &pools.v4 {
        spec.subnet = Some(p.subnet.to_string());
        spec.gateway.clone_from(&p.gateway);
        spec.ip_range.clone_from(&p.ip_range);
        spec.aux_addresses.extend(p.aux.clone());
    }
    if let Some(p) = &pools.v6 {
        spec.subnet_v6 = Some(p.subnet.to_string());
        spec.gateway_v6.clone_from(&p.gateway);
        spec.ip_range_v6.clone_from(&p.ip_range);
        spec.aux_addresses
            .extend(p.aux.iter().map(|(k, v)| (format!("{k}/v6"), v.clone())));
    }
}

/// The subnets a network's `IPAM.Config` holds (unparsable ones left out).
pub fn subnets(configs: &[IpamConfig]) -> Vec<Cidr> {
    configs
        .iter()
        .filter_map(|c| c.subnet.parse::<Cidr>().ok())
        .map(|c| c.network())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(subnet: &str, range: &str, gw: &str, aux: &[(&str, &str)]) -> IpamConfig {
        let mut c = IpamConfig {
            subnet: subnet.into(),
            ip_range: range.into(),
            gateway: gw.into(),
            ..IpamConfig::default()
        };
        if !aux.is_empty() {
            let m: serde_json::Map<String, Value> = aux
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect();
            c.extra
                .insert("AuxiliaryAddresses".into(), Value::Object(m));
        }
        c
    }

    fn err(configs: &[IpamConfig]) -> String {
        check(configs, true, &[])
            .map(|_| ())
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn dockerds_texts() {
        assert_eq!(
            err(&[cfg("10.1.0.0/24", "", "10.1.1.1", &[])]),
            "invalid network config:\ninvalid gateway 10.1.1.1: parent subnet 10.1.0.0/24 doesn't contain this address"
        );
        assert_eq!(
            err(&[cfg("bogus", "", "", &[])]),
            "invalid network config:\ninvalid subnet bogus: invalid CIDR block notation"
        );
        assert_eq!(
            err(&[cfg(
                "10.1.0.5/24",
                "10.2.0.0/25",
                "zzz",
                &[("a", "10.1.9.1")]
            )]),
            "invalid network config:\n* invalid subnet 10.1.0.5/24: it should be 10.1.0.0/24\n\
             * invalid ip-range 10.2.0.0/25: parent subnet 10.1.0.5/24 doesn't contain ip-range\n\
             * invalid gateway zzz: invalid address\n\
             * invalid auxiliary address a: parent subnet 10.1.0.5/24 doesn't contain this address"
        );
        assert_eq!(
            err(&[cfg("10.1.0.0/24", "10.1.0.0/23", "", &[])]),
            "invalid network config:\ninvalid ip-range 10.1.0.0/23: CIDR block is bigger than its parent subnet 10.1.0.0/24"
        );
        let taken = ["10.1.0.0/16".parse().expect("cidr")];
        let e = check(&[cfg("10.1.2.0/24", "", "", &[])], false, &taken).expect_err("refused");
        assert!(matches!(e, ServiceError::Forbidden(m) if m == OVERLAP));
    }

    #[test]
    fn pools_split_by_family_and_v6_needs_enable() {
        let both = [
            cfg(
                "10.1.0.0/24",
                "10.1.0.128/25",
                "10.1.0.1",
                &[("x", "10.1.0.200")],
            ),
            cfg("fd42:1::/64", "", "", &[]),
        ];
        let p = check(&both, true, &[]).expect("valid");
        assert_eq!(p.v4.as_ref().map(|p| p.aux.len()), Some(1));
        assert_eq!(
            p.v6.as_ref().map(|p| p.subnet.to_string()).as_deref(),
            Some("fd42:1::/64")
        );
        let p = check(&both, false, &[]).expect("valid");
        assert!(p.v6.is_none());
        let mut spec = NetworkSpec::default();
        fill_spec(&mut spec, &check(&both, true, &[]).expect("valid"));
        assert_eq!(spec.ip_range.as_deref(), Some("10.1.0.128/25"));
        assert_eq!(spec.subnet_v6.as_deref(), Some("fd42:1::/64"));
        assert_eq!(spec.aux_addresses["x"], "10.1.0.200");
    }
}
