//! IPv4 address management: subnet parsing, picking a free subnet from the address pools, and
//! handing out addresses round-robin inside a network (never one that is in use).

use berth_core::{DriverError, DriverResult};
use std::net::Ipv4Addr;

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address.
    pub net: u32,
    /// The prefix length.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n`; host bits are cleared.
    pub fn parse(s: &str) -> DriverResult<Self> {
        let bad = || DriverError::InvalidInput(format!("invalid subnet {s:?}"));
        let (ip, len) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(DriverError::InvalidInput(format!(
                "subnet {s} must have a prefix between /8 and /30"
            )));
        }
        Ok(Subnet {
            net: u32::from(ip) & mask(prefix),
            prefix,
        })
    }

    /// The netmask.
    pub fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> u32 {
        self.net | !self.mask()
    }

    /// Whether `ip` lies inside.
    pub fn contains(&self, ip: u32) -> bool {
        ip & self.mask() == self.net
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        self.net & m == other.net & m
    }

    /// The first host address (the default gateway).
    pub fn first_host(&self) -> u32 {
        self.net + 1
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.net), self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// Parses a dotted-quad address.
pub fn parse_ip(s: &str) -> DriverResult<u32> {
    s.parse::<Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| DriverError::InvalidInput(format!("invalid IPv4 address {s:?}")))
}

/// The IPv4 addresses among a network's auxiliary addresses (`AuxiliaryAddresses`: never
/// handed out), with their names; other families and malformed ones are left out.
pub fn aux_v4(aux: &std::collections::BTreeMap<String, String>) -> Vec<(&str, u32)> {
    aux.iter()
        .filter_map(|(k, v)| Some((k.as_str(), u32::from(v.parse::<Ipv4Addr>().ok()?))))
        .collect()
}

/// An address pool (`default-address-pools`: base and size of the subnets cut from it).
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    /// The pool's range.
    pub base: Subnet,
    /// Prefix length of each subnet handed out.
    pub size: u8,
}

/// berth's default pool when `default-address-pools` is not configured: 10.250.0.0/16 cut
/// into /24s — clear of Docker's 172.17.0.0/16.. and of common home and office ranges.
pub fn default_pools() -> Vec<Pool> {
    vec![Pool {
        base: Subnet {
            net: u32::from(Ipv4Addr::new(10, 250, 0, 0)),
            prefix: 16,
        },
        size: 24,
    }]
}

/// Picks the first subnet from `pools` that overlaps nothing in `taken`.
pub fn pick_subnet(pools: &[Pool], taken: &[Subnet]) -> DriverResult<Subnet> {
    for pool in pools {
        if pool.size < pool.base.prefix || pool.size > 30 {
            continue;
        }
        let step = 1u64 << (32 - u32::from(pool.size));
        let count = 1u64 << (u32::from(pool.size) - u32::from(pool.base.prefix));
        for i in 0..count {
            let net = (u64::from(pool.base.net) + i * step) as u32;
            let cand = Subnet {
                net,
                prefix: pool.size,
            };
            if !taken.iter().any(|t| t.overlaps(&cand)) {
                return Ok(cand);
            }
        }
    }
    Err(DriverError::Conflict(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
    ))
}

/// Chooses the next free address in `range` (inside `subnet`) after `last`, skipping the
/// network and broadcast addresses, the gateway and every address `used` says is taken.
pub fn next_free(
    subnet: &Subnet,
    range: &Subnet,
    gateway: u32,
    used: impl Fn(u32) -> bool,
    last: u32,
) -> Option<u32> {
    let lo = range.net.max(subnet.net + 1);
    let hi = range.broadcast().min(subnet.broadcast() - 1);
    if lo > hi {
        return None;
    }
    let span = u64::from(hi - lo) + 1;
    let start = if last >= lo && last < hi {
        last + 1
    } else {
        lo
    };
    for i in 0..span {
        let cand = (u64::from(lo) + (u64::from(start - lo) + i) % span) as u32;
        if cand != gateway && !used(cand) {
            return Some(cand);
        }
    }
    None
}

/// The IPv4 subnets routed on the host right now (from /proc/net/route), so that a new
/// network never shadows an existing one.
pub fn host_routes() -> Vec<Subnet> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        // /proc/net/route prints the addresses in host (little-endian) order of network bytes.
        let dst = u32::from_be_bytes(dst.to_le_bytes());
        let m = u32::from_be_bytes(m.to_le_bytes());
        if m == 0 {
            continue; // the default route
        }
        out.push(Subnet {
            net: dst & m,
            prefix: m.count_ones() as u8,
        });
    }
    out
}

/// The MAC address Docker derives from an IPv4 address: `02:42:` + the four octets.
pub fn mac_for(ip: u32) -> [u8; 6] {
    let o = ip.to_be_bytes();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Formats a MAC address.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn subnet_math() {
        let s = Subnet::parse("10.1.2.3/24").expect("test");
        assert_eq!(s.to_string(), "10.1.2.0/24");
        assert!(s.contains(parse_ip("10.1.2.200").expect("test")));
        assert!(s.overlaps(&Subnet::parse("10.1.0.0/16").expect("test")));
        assert!(!s.overlaps(&Subnet::parse("10.1.3.0/24").expect("test")));
    }

    #[test]
    fn allocation_skips_used_and_wraps() {
        let s = Subnet::parse("10.0.0.0/29").expect("test");
        let gw = s.first_host();
        let mut used = BTreeSet::new();
        let a = next_free(&s, &s, gw, |i| used.contains(&i), 0).expect("test");
        assert_eq!(Ipv4Addr::from(a).to_string(), "10.0.0.2");
        used.insert(a);
        let b = next_free(&s, &s, gw, |i| used.contains(&i), a).expect("test");
        assert_eq!(Ipv4Addr::from(b).to_string(), "10.0.0.3");
        for ip in 2..=6 {
            used.insert(s.net + ip);
        }
        assert_eq!(next_free(&s, &s, gw, |i| used.contains(&i), b), None);
        used.remove(&(s.net + 2));
        assert_eq!(
            next_free(&s, &s, gw, |i| used.contains(&i), s.net + 6),
            Some(s.net + 2)
        );
    }

    #[test]
    fn pools_skip_taken() {
        let pools = default_pools();
        let taken = vec![Subnet::parse("10.250.0.0/24").expect("test")];
        assert_eq!(
            pick_subnet(&pools, &taken).expect("test").to_string(),
            "10.250.1.0/24"
        );
        assert_eq!(
            mac_string(&mac_for(parse_ip("172.17.0.2").expect("test"))),
            "02:42:ac:11:00:02"
        );
    }
}
