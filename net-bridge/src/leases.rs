//! A network's leases by endpoint, with the addresses they hold indexed: a join asks whether
//! an address is taken in O(1) instead of parsing every lease (a network may hold thousands).

use crate::ipam;
use crate::ipam6;
use crate::state::Lease;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Leases by endpoint id, and how many leases hold each address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "BTreeMap<String, Lease>")]
pub struct Leases {
    by_ep: BTreeMap<String, Lease>,
    v4: HashMap<u32, u32>,
    v6: HashMap<u128, u32>,
    /// Every IPv6 address below this one is taken (or not allocatable): the search for the
    /// lowest free one starts here (see [`Leases::low6`]).
    low6: u128,
}

impl From<BTreeMap<String, Lease>> for Leases {
    fn from(by_ep: BTreeMap<String, Lease>) -> Leases {
        let mut l = Leases::default();
        for (ep, lease) in by_ep {
            l.insert(ep, lease);
        }
        l
    }
}

fn count<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K, add: bool) {
    if add {
        *m.entry(k).or_default() += 1;
    } else if let Some(n) = m.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            m.remove(&k);
        }
    }
}

impl Leases {
    /// Records `lease` for endpoint `ep` (replacing one it had).
    pub fn insert(&mut self, ep: String, lease: Lease) {
        self.remove(&ep);
        self.index(&lease, true);
        self.by_ep.insert(ep, lease);
    }

    /// Drops the lease of endpoint `ep`.
    pub fn remove(&mut self, ep: &str) -> Option<Lease> {
        let lease = self.by_ep.remove(ep)?;
        self.index(&lease, false);
        Some(lease)
    }

    fn index(&mut self, lease: &Lease, add: bool) {
        if let Ok(ip) = ipam::parse_ip(&lease.ip) {
            count(&mut self.v4, ip, add);
        }
        if let Ok(ip) = ipam6::parse_ip6(&lease.ip6) {
            count(&mut self.v6, ip, add);
            if !add {
                self.low6 = self.low6.min(ip);
            }
        }
    }

    /// Whether a lease holds the IPv4 address `ip`.
    pub fn holds4(&self, ip: u32) -> bool {
        self.v4.contains_key(&ip)
    }

    /// Whether a lease holds the IPv6 address `ip`.
    pub fn holds6(&self, ip: u128) -> bool {
        self.v6.contains_key(&ip)
    }

    /// Where the search for the lowest free IPv6 address may start.
    pub fn low6(&self) -> u128 {
        self.low6
    }

    /// After the IPv6 address `ip` was found to be the lowest free one and handed out.
    pub fn allocated6(&mut self, ip: u128) {
        self.low6 = ip.saturating_add(1);
    }

    pub fn get(&self, ep: &str) -> Option<&Lease> {
        self.by_ep.get(ep)
    }

    pub fn contains_key(&self, ep: &str) -> bool {
        self.by_ep.contains_key(ep)
    }

    pub fn is_empty(&self) -> bool {
        self.by_ep.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &Lease> {
        self.by_ep.values()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Lease)> {
        self.by_ep.iter()
    }
}

impl<'a> IntoIterator for &'a Leases {
    type Item = (&'a String, &'a Lease);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Lease>;
    fn into_iter(self) -> Self::IntoIter {
        self.by_ep.iter()
    }
}

impl IntoIterator for Leases {
    type Item = (String, Lease);
    type IntoIter = std::collections::btree_map::IntoIter<String, Lease>;
    fn into_iter(self) -> Self::IntoIter {
        self.by_ep.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ip: &str, ip6: &str) -> Lease {
        Lease {
            container_id: "c".into(),
            ip: ip.into(),
            ip6: ip6.into(),
            mac: String::new(),
            veth: String::new(),
            ports: Vec::new(),
            netns: String::new(),
            netns_ino: 0,
        }
    }

    #[test]
    fn the_index_follows_inserts_and_removals() {
        let mut l = Leases::default();
        l.insert("a".into(), lease("10.0.0.2", "fd00::2"));
        l.insert("b".into(), lease("10.0.0.3", ""));
        let ip = |s: &str| ipam::parse_ip(s).expect("ip");
        let ip6 = |s: &str| ipam6::parse_ip6(s).expect("ip6");
        assert!(l.holds4(ip("10.0.0.2")) && l.holds4(ip("10.0.0.3")));
        assert!(l.holds6(ip6("fd00::2")));
        l.allocated6(ip6("fd00::2"));
        assert_eq!(l.low6(), ip6("fd00::3"));
        // Re-leasing an endpoint drops its old addresses.
        l.insert("a".into(), lease("10.0.0.4", ""));
        assert!(!l.holds4(ip("10.0.0.2")) && !l.holds6(ip6("fd00::2")));
        assert_eq!(l.low6(), ip6("fd00::2"), "a freed address lowers the start");
        assert!(l.remove("b").is_some());
        assert!(!l.holds4(ip("10.0.0.3")) && l.holds4(ip("10.0.0.4")));
        let back: Leases = serde_json::from_str(
            r#"{"x":{"container_id":"c","ip":"10.0.0.9","mac":"","veth":""}}"#,
        )
        .expect("parse");
        assert!(back.holds4(ip("10.0.0.9")) && back.contains_key("x"));
    }
}
