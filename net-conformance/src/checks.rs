//! The checks themselves, grouped by the capability that calls for them (see the crate
//! documentation): the lifecycle and typed errors every driver passes, traffic and
//! concurrent joins for drivers that make interfaces, and IPv6.

use crate::host::{tcp_reaches, Netns};
use crate::{endpoint, Harness, Tracked};
use berth_core::network::{Cidr, EndpointInfo, NetworkCapabilities, NetworkInfo};
use berth_core::DriverError;
use std::collections::BTreeSet;
use std::net::IpAddr;

const NO_NETWORK: &str = "conformance-no-such-network";

/// Whether `ip` lies in `net`.
fn within(net: &Cidr, ip: IpAddr) -> bool {
    net.addr.is_ipv6() == ip.is_ipv6()
        && Cidr::new(ip, net.prefix).is_ok_and(|c| c.network() == net.network())
}

fn subnet(info: &NetworkInfo) -> Option<Cidr> {
    info.subnet.parse().ok()
}

/// The answer to `join` is what the namespace shows.
fn matches_namespace(
    got: &EndpointInfo,
    ns: &Netns,
    net: &NetworkInfo,
    caps: &NetworkCapabilities,
) {
    if !caps.interface {
        assert!(
            got.ifname.is_empty() && got.ip.is_empty() && got.routes.is_empty(),
            "a driver claiming no interface answered one: {got:?}"
        );
        assert_eq!(
            ns.links(),
            BTreeSet::from(["lo".to_string()]),
            "a driver claiming no interface put links into the namespace"
        );
        return;
    }
    let ifname = got.ifname.as_str();
    assert!(!ifname.is_empty(), "join named no interface: {got:?}");
    assert!(
        ns.links().contains(ifname),
        "{ifname} is not in the namespace: {:?}",
        ns.links()
    );
    assert!(
        ns.mac(ifname).eq_ignore_ascii_case(&got.mac),
        "reported MAC {} but the namespace shows {}",
        got.mac,
        ns.mac(ifname)
    );
    let v4 = got
        .ipv4()
        .unwrap_or_else(|| panic!("join reported no IPv4 address: {got:?}"));
    if let Some(sn) = subnet(net) {
        assert!(within(&sn, v4.addr), "{v4} is outside the network's {sn}");
        assert_eq!(v4.prefix, sn.prefix, "the prefix is the subnet's");
    }
    if let Ok(gw) = got.gateway.parse::<IpAddr>() {
        assert!(within(&v4, gw), "gateway {gw} is off the endpoint's {v4}");
    }
    let expected: BTreeSet<Cidr> = [Some(v4), got.ipv6].into_iter().flatten().collect();
    assert_eq!(
        ns.addrs(ifname),
        expected,
        "the addresses reported are the ones the namespace has"
    );
    let routes: BTreeSet<_> = got.effective_routes().into_iter().collect();
    assert_eq!(
        ns.routes(ifname),
        routes,
        "the routes reported are the ones the namespace has"
    );
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, DriverError>, what: &str) {
    assert!(
        matches!(r, Err(DriverError::NotFound(_))),
        "{what}: want NotFound, got {r:?}"
    );
}

/// Create, join, leave, delete, and the typed errors; every driver.
pub fn lifecycle_and_errors(t: &Tracked<'_>, h: &Harness<'_>, caps: &NetworkCapabilities) {
    let spec = (h.network)(0);
    let info = t.create(&spec).expect("create network");
    let ns = Netns::new();
    let before = ns.links();

    is_not_found(
        t.d.join(&endpoint(NO_NETWORK, 0, &ns)),
        "join to an unknown network",
    );
    is_not_found(
        t.d.delete_network(NO_NETWORK),
        "delete of an unknown network",
    );
    t.d.leave(&spec.id, "conformance-no-such-endpoint")
        .expect("leaving an unknown endpoint is no error");
    t.d.leave(NO_NETWORK, "conformance-no-such-endpoint")
        .expect("leaving an unknown network is no error");

    let ep = endpoint(&spec.id, 0, &ns);
    let got = t.join(&ep).expect("join");
    matches_namespace(&got, &ns, &info, caps);

    let other = Netns::new();
    let again = endpoint(&spec.id, 0, &other);
    let r = t.d.join(&again);
    assert!(
        matches!(r, Err(DriverError::AlreadyExists(_))),
        "a second join of one endpoint: want AlreadyExists, got {r:?}"
    );
    assert_eq!(
        other.links(),
        before,
        "a refused join leaves nothing behind"
    );
    let r = t.delete(&spec.id);
    assert!(
        matches!(r, Err(DriverError::Conflict(_))),
        "deleting a network with an endpoint: want Conflict, got {r:?}"
    );

    t.leave(&spec.id, &ep.endpoint_id).expect("leave");
    assert_eq!(
        ns.links(),
        before,
        "after leave only what the namespace had is left"
    );
    t.leave(&spec.id, &ep.endpoint_id)
        .expect("a second leave is no error");

    if caps.static_ip {
        let sn = subnet(&info).expect("a driver with static addresses reports its subnet");
        let want = match sn.network().addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 10).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 10).into()),
        };
        let mut fixed = endpoint(&spec.id, 1, &ns);
        fixed.ip = Some(want.to_string());
        let got = t.join(&fixed).expect("join with a requested address");
        assert_eq!(got.ip, want.to_string(), "the requested address is given");
        matches_namespace(&got, &ns, &info, caps);
        t.leave(&spec.id, &fixed.endpoint_id).expect("leave");
        assert_eq!(ns.links(), before);
    }

    t.delete(&spec.id).expect("delete network");
    is_not_found(t.delete(&spec.id), "a second delete");
    is_not_found(
        t.d.join(&endpoint(&spec.id, 2, &ns)),
        "join to a deleted network",
    );
}

/// Two endpoints reach each other; concurrent joins get distinct addresses.
pub fn traffic_and_concurrency(t: &Tracked<'_>, h: &Harness<'_>, caps: &NetworkCapabilities) {
    let spec = (h.network)(1);
    let info = t.create(&spec).expect("create network");
    let (a, b) = (Netns::new(), Netns::new());
    let (ea, eb) = (endpoint(&spec.id, 1, &a), endpoint(&spec.id, 2, &b));
    let ga = t.join(&ea).expect("join a");
    let gb = t.join(&eb).expect("join b");
    matches_namespace(&ga, &a, &info, caps);
    matches_namespace(&gb, &b, &info, caps);
    assert_ne!(ga.ip, gb.ip, "two endpoints got one address");
    let ip = |g: &EndpointInfo| g.ipv4().map(|c| c.addr).expect("address");
    tcp_reaches(&a, &b, ip(&gb)).unwrap_or_else(|e| panic!("a cannot reach b: {e}"));
    tcp_reaches(&b, &a, ip(&ga)).unwrap_or_else(|e| panic!("b cannot reach a: {e}"));
    t.leave(&spec.id, &ea.endpoint_id).expect("leave a");
    t.leave(&spec.id, &eb.endpoint_id).expect("leave b");
    assert_eq!(a.links(), BTreeSet::from(["lo".to_string()]));

    let many: Vec<Netns> = (0..8).map(|_| Netns::new()).collect();
    let eps: Vec<_> = many
        .iter()
        .enumerate()
        .map(|(i, ns)| endpoint(&spec.id, 10 + i, ns))
        .collect();
    let got: Vec<EndpointInfo> = std::thread::scope(|s| {
        let joins: Vec<_> = eps.iter().map(|e| s.spawn(|| t.join(e))).collect();
        joins
            .into_iter()
            .map(|j| j.join().expect("join thread").expect("concurrent join"))
            .collect()
    });
    let distinct: BTreeSet<&str> = got.iter().map(|g| g.ip.as_str()).collect();
    assert_eq!(
        distinct.len(),
        got.len(),
        "concurrent joins shared addresses: {distinct:?}"
    );
    for (g, ns) in got.iter().zip(&many) {
        matches_namespace(g, ns, &info, caps);
    }
    std::thread::scope(|s| {
        for e in &eps {
            s.spawn(|| t.leave(&spec.id, &e.endpoint_id).expect("concurrent leave"));
        }
    });
    for ns in &many {
        assert_eq!(
            ns.links(),
            BTreeSet::from(["lo".to_string()]),
            "after leave"
        );
    }
    t.delete(&spec.id).expect("delete network");
}

/// A network with an IPv6 subnet gives endpoints IPv6 addresses that work.
pub fn ipv6(t: &Tracked<'_>, h: &Harness<'_>) {
    let caps = t.d.capabilities();
    let v6: Cidr = h
        .subnet_v6
        .as_deref()
        .and_then(|s| s.parse().ok())
        .expect("the driver claims IPv6: the runner must give Harness::subnet_v6");
    let mut spec = (h.network)(2);
    spec.subnet_v6 = Some(v6.to_string());
    let info = t.create(&spec).expect("create an IPv6 network");
    assert_eq!(
        info.subnet_v6
            .as_deref()
            .and_then(|s| s.parse::<Cidr>().ok()),
        Some(v6.network()),
        "the network reports its IPv6 subnet"
    );
    let (a, b) = (Netns::new(), Netns::new());
    let (ea, eb) = (endpoint(&spec.id, 20, &a), endpoint(&spec.id, 21, &b));
    let ga = t.join(&ea).expect("join a");
    let gb = t.join(&eb).expect("join b");
    for (g, ns) in [(&ga, &a), (&gb, &b)] {
        let addr = g.ipv6.unwrap_or_else(|| panic!("no IPv6 address: {g:?}"));
        assert!(within(&v6, addr.addr), "{addr} is outside {v6}");
        matches_namespace(g, ns, &info, &caps);
    }
    let ip = |g: &EndpointInfo| g.ipv6.map(|c| c.addr).expect("address");
    tcp_reaches(&a, &b, ip(&gb)).unwrap_or_else(|e| panic!("a cannot reach b over IPv6: {e}"));
    t.leave(&spec.id, &ea.endpoint_id).expect("leave a");
    t.leave(&spec.id, &eb.endpoint_id).expect("leave b");
    t.delete(&spec.id).expect("delete network");
}
