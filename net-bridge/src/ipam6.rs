//! IPv6 address management of a network with an IPv6 subnet (`--ipv6 --subnet fd…/64`):
//! the subnet, its gateway (the first address unless given) and allocation range checked at
//! create, and addresses handed out lowest first (`::2`, `::3`, … as dockerd), never the
//! subnet's anycast address, the gateway, an auxiliary address or one in use.

use berth_core::{DriverError, DriverResult};
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

/// An IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet6 {
    /// The network address.
    pub net: u128,
    /// The prefix length.
    pub prefix: u8,
}

impl Subnet6 {
    /// Parses `addr/n` (n ≤ 126: a gateway and one host at least); host bits are cleared.
    pub fn parse(s: &str) -> DriverResult<Self> {
        let bad = || DriverError::InvalidInput(format!("invalid IPv6 subnet {s:?}"));
        let (ip, len) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if prefix > 126 {
            return Err(bad());
        }
        Ok(Subnet6 {
            net: u128::from(ip) & mask(prefix),
            prefix,
        })
    }

    /// The last address.
    pub fn last(&self) -> u128 {
        self.net | !mask(self.prefix)
    }

    /// Whether `ip` lies inside.
    pub fn contains(&self, ip: u128) -> bool {
        ip & mask(self.prefix) == self.net
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        self.net & m == other.net & m
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv6Addr::from(self.net), self.prefix)
    }
}

fn mask(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// Parses an IPv6 address.
pub fn parse_ip6(s: &str) -> DriverResult<u128> {
    s.parse::<Ipv6Addr>()
        .map(u128::from)
        .map_err(|_| DriverError::InvalidInput(format!("invalid IPv6 address {s:?}")))
}

/// The IPv6 addresses among a network's auxiliary addresses, with their names.
pub fn aux_v6(aux: &BTreeMap<String, String>) -> Vec<(&str, u128)> {
    aux.iter()
        .filter_map(|(k, v)| Some((k.as_str(), u128::from(v.parse::<Ipv6Addr>().ok()?))))
        .collect()
}

/// A network's IPv6 side as planned at create: subnet, gateway, range (all as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan6 {
    /// The subnet.
    pub subnet: String,
    /// The gateway (the bridge's IPv6 address).
    pub gateway: String,
    /// The allocation range.
    pub range: String,
}

/// Plans the IPv6 side of a network: `subnet` with an optional `gateway` and `range`;
/// `ours` are the IPv6 subnets of the driver's other networks.
pub fn plan(
    subnet: &str,
    gateway: Option<&str>,
    range: Option<&str>,
    aux: &BTreeMap<String, String>,
    ours: &[Subnet6],
) -> DriverResult<Plan6> {
    let sub = Subnet6::parse(subnet)?;
    if ours.iter().any(|o| o.overlaps(&sub)) {
        return Err(DriverError::Conflict(
            "Pool overlaps with other one on this address space".into(),
        ));
    }
    let gw = match gateway {
        Some(g) => parse_ip6(g)?,
        None => sub.net + 1,
    };
    if !sub.contains(gw) {
        return Err(DriverError::InvalidInput(format!(
            "invalid gateway {} for subnet {sub}",
            Ipv6Addr::from(gw)
        )));
    }
    if gw == sub.net {
        return Err(DriverError::InvalidInput(format!(
            "failed to allocate gateway ({}): Address already in use",
            Ipv6Addr::from(gw)
        )));
    }
    for (name, a) in aux_v6(aux) {
        if a == gw || a == sub.net {
            let name = name.trim_end_matches("/v6");
            return Err(DriverError::InvalidInput(format!(
                "failed to allocate secondary ip address ({name}:{}): Address already in use",
                Ipv6Addr::from(a)
            )));
        }
    }
    let r = match range {
        Some(r) => {
            let r = Subnet6::parse(r)?;
            if !sub.contains(r.net) || r.prefix < sub.prefix {
                return Err(DriverError::InvalidInput(format!(
                    "ip-range {r} is not inside subnet {sub}"
                )));
            }
            r
        }
        None => sub,
    };
    Ok(Plan6 {
        subnet: sub.to_string(),
        gateway: Ipv6Addr::from(gw).to_string(),
        range: r.to_string(),
    })
}

/// How many candidates an allocation looks at before it gives up (a /64 is never full).
const SCAN: u128 = 1 << 20;

/// The lowest free address of `range` inside `subnet` from `from` on (every address below
/// `from` is known to be taken): not the subnet's anycast address, the gateway, or an
/// address `used` says is taken.
pub fn next_free(
    subnet: &Subnet6,
    range: &Subnet6,
    gateway: u128,
    used: impl Fn(u128) -> bool,
    from: u128,
) -> Option<u128> {
    let lo = range.net.max(subnet.net + 1).max(from);
    let hi = range.last().min(subnet.last());
    (0..SCAN)
        .map_while(|i| lo.checked_add(i).filter(|c| *c <= hi))
        .find(|c| *c != gateway && !used(*c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn plans_and_hands_out_lowest_first() {
        let aux = BTreeMap::from([("x".to_string(), "fd42:1::3".to_string())]);
        let p = plan("fd42:1::/64", None, None, &aux, &[]).expect("plan");
        assert_eq!(p.gateway, "fd42:1::1");
        let sub = Subnet6::parse(&p.subnet).expect("subnet");
        let gw = parse_ip6(&p.gateway).expect("gw");
        let mut used: BTreeSet<u128> = aux_v6(&aux).into_iter().map(|a| a.1).collect();
        let a = next_free(&sub, &sub, gw, |i| used.contains(&i), 0).expect("free");
        assert_eq!(Ipv6Addr::from(a).to_string(), "fd42:1::2");
        used.insert(a);
        let b = next_free(&sub, &sub, gw, |i| used.contains(&i), 0).expect("free");
        assert_eq!(Ipv6Addr::from(b).to_string(), "fd42:1::4");
        let taken = [sub];
        assert!(plan("fd42:1::/80", None, None, &BTreeMap::new(), &taken).is_err());
        let bad = BTreeMap::from([("g".to_string(), "fd42:2::1".to_string())]);
        let e = plan("fd42:2::/64", None, None, &bad, &[]).expect_err("aux is the gateway");
        assert_eq!(
            e.to_string(),
            "failed to allocate secondary ip address (g:fd42:2::1): Address already in use"
        );
        let tiny = Subnet6::parse("fd42:3::/126").expect("subnet");
        let full: BTreeSet<u128> = [tiny.net + 2, tiny.net + 3].into();
        assert_eq!(
            next_free(&tiny, &tiny, tiny.net + 1, |i| full.contains(&i), 0),
            None
        );
    }
}
