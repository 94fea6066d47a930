//! Networking at create and IPv6 (issue 16) against berthd and a private real dockerd: a
//! network's `IPAM.Config` round-trips every field and allocation honours it; bad IPAM is
//! refused; `NetworkingConfig.EndpointsConfig` (several networks, aliases, `IPAMConfig`,
//! `MacAddress` per endpoint and the top-level one, fresh `EndpointID`s); IPv6 networks whose
//! containers get `GlobalIPv6Address` (and `--ip6`), resolve each other's AAAA records and
//! ping each other; the Python SDK's IPv6 network.
//!
//! The real engine is Debian's dockerd 20.10 (API 1.41): API ≥ 1.44 behaviour (every network
//! attached at create) is checked on berthd alone. For bad IPAM dockerd 20.10 answers 500
//! with libnetwork's texts where newer dockerd (and berthd) check first and answer 400
//! (`invalid network config:` ...): only the refusal is compared there, berthd's text is
//! checked as is. Every network uses its own subnets (10.219.0.0/16, fd42:219::/32) and is
//! removed from both engines at the end, failed or not.

mod build_support;
mod net_create_fidelity_support;

use build_support::Pair;
use net_create_fidelity_support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const V: &str = "1.41";

/// Creates network `body` on both engines (both must answer 201).
#[track_caller]
fn create_both(p: &Pair, body: Value) {
    let (ours, theirs) = both(p, "POST", V, "networks/create", &body);
    assert_eq!((ours.0, theirs.0), (201, 201), "{ours:?} / {theirs:?}");
}

/// `IPAM` and `EnableIPv6` of network `name` on both engines.
fn ipam_of(p: &Pair, name: &str) -> [Value; 2] {
    sockets(p).map(|s| {
        let n = inspect(&s, &format!("networks/{name}"));
        json!({"IPAM": n["IPAM"], "EnableIPv6": n["EnableIPv6"]})
    })
}

/// `NetworkSettings.Networks.<net>` of container `c` on both engines.
fn endpoint_of(p: &Pair, c: &str, net: &str) -> [Value; 2] {
    sockets(p).map(|s| {
        inspect(&s, &format!("containers/{c}/json"))["NetworkSettings"]["Networks"][net].clone()
    })
}

/// The same members of two JSON objects.
#[track_caller]
fn same(a: &Value, b: &Value, keys: &[&str]) {
    for k in keys {
        assert_eq!(a[k], b[k], "{k}: berthd {a} / dockerd {b}");
    }
}

#[test]
fn ipam_config_round_trips_and_allocation_honours_it() {
    let Some(p) = Pair::start() else { return };
    let names = ["ncf-r1", "ncf-r2", "ncf-r3"];
    let _g = Cleanup::new(&p, &names, &["ncf-full", "ncf-plain", "ncf-auto"]);
    create_both(
        &p,
        json!({"Name": "ncf-full", "IPAM": {"Config": [{"Subnet": "10.219.1.0/24",
            "IPRange": "10.219.1.128/25", "Gateway": "10.219.1.1",
            "AuxiliaryAddresses": {"a": "10.219.1.129", "b": "10.219.1.130"}}]}}),
    );
    create_both(
        &p,
        json!({"Name": "ncf-plain", "IPAM": {"Config": [{"Subnet": "10.219.2.0/24"}]}}),
    );
    create_both(&p, json!({"Name": "ncf-auto"}));
    for name in ["ncf-full", "ncf-plain"] {
        let [ours, theirs] = ipam_of(&p, name);
        assert_eq!(ours, theirs, "{name}");
    }
    // A pool the engine picked: its subnet and gateway, nothing else.
    let [ours, theirs] = ipam_of(&p, "ncf-auto");
    let keys = |v: &Value| -> Vec<BTreeSet<String>> {
        v["IPAM"]["Config"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        c.as_object()
                            .map(|o| o.keys().cloned().collect())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(keys(&ours), keys(&theirs));

    // Addresses come from the range, skipping the auxiliary ones (the gateway is outside it).
    for n in names {
        p.docker(
            &[
                "run",
                "-d",
                "--name",
                n,
                "--network",
                "ncf-full",
                "busybox",
                "sleep",
                "300",
            ],
            None,
        )
        .ok();
    }
    let ips = |i: usize| -> Vec<String> {
        names
            .iter()
            .map(|n| {
                endpoint_of(&p, n, "ncf-full")[i]["IPAddress"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(ips(0), ["10.219.1.128", "10.219.1.131", "10.219.1.132"]);
    assert_eq!(ips(0), ips(1));
    // An auxiliary address cannot be asked for either.
    let aux = p.docker(
        &[
            "run",
            "--rm",
            "--network",
            "ncf-full",
            "--ip",
            "10.219.1.129",
            "busybox",
            "true",
        ],
        None,
    );
    assert!(
        !aux.ours.success() && !aux.theirs.success(),
        "{:?}",
        aux.ours
    );
    assert!(
        aux.ours.stderr.contains("Address already in use"),
        "{}",
        aux.ours.stderr
    );
    assert!(
        aux.theirs.stderr.contains("Address already in use"),
        "{}",
        aux.theirs.stderr
    );
}

#[test]
fn bad_ipam_is_refused() {
    let Some(p) = Pair::start() else { return };
    let bad = [
        (
            json!({"Subnet": "10.219.10.0/24", "Gateway": "10.219.11.1"}),
            "invalid network config:\ninvalid gateway 10.219.11.1: parent subnet 10.219.10.0/24 doesn't contain this address",
        ),
        (
            json!({"Subnet": "10.219.12.0/24", "AuxiliaryAddresses": {"x": "10.219.13.3"}}),
            "invalid network config:\ninvalid auxiliary address x: parent subnet 10.219.12.0/24 doesn't contain this address",
        ),
        (
            json!({"Subnet": "10.219.14.0/24", "Gateway": "zzz"}),
            "invalid network config:\ninvalid gateway zzz: invalid address",
        ),
        (
            json!({"Subnet": "bogus"}),
            "invalid network config:\ninvalid subnet bogus: invalid CIDR block notation",
        ),
        (
            json!({"Subnet": "10.219.15.0/24", "IPRange": "bogus"}),
            "invalid network config:\ninvalid ip-range bogus: invalid CIDR block notation",
        ),
        (
            json!({"Gateway": "10.219.16.1"}),
            "invalid network config:\ninvalid subnet : invalid CIDR block notation",
        ),
    ];
    for (i, (cfg, text)) in bad.iter().enumerate() {
        let name = format!("ncf-bad{i}");
        let _g = Cleanup::new(&p, &[], &[&name]);
        let body = json!({"Name": name, "IPAM": {"Config": [cfg]}});
        let (ours, theirs) = both(&p, "POST", V, "networks/create", &body);
        assert_eq!(
            (ours.0, ours.1["message"].as_str()),
            (400, Some(*text)),
            "{cfg}"
        );
        assert!(theirs.0 >= 400, "dockerd took {cfg}: {theirs:?}");
    }
    // What only allocation finds: dockerd's texts (dockerd 20.10 answers 500, berthd 400).
    let taken = [
        (
            json!({"Subnet": "10.219.17.0/24", "Gateway": "10.219.17.0"}),
            "failed to allocate gateway (10.219.17.0): Address already in use",
        ),
        (
            json!({"Subnet": "10.219.18.0/24", "AuxiliaryAddresses": {"x": "10.219.18.1"}}),
            "failed to allocate secondary ip address (x:10.219.18.1): Address already in use",
        ),
    ];
    for (i, (cfg, text)) in taken.iter().enumerate() {
        let name = format!("ncf-taken{i}");
        let _g = Cleanup::new(&p, &[], &[&name]);
        let body = json!({"Name": name, "IPAM": {"Config": [cfg]}});
        let (ours, theirs) = both(&p, "POST", V, "networks/create", &body);
        assert_eq!(ours.1["message"].as_str(), Some(*text), "{cfg}");
        assert_eq!(theirs.1["message"].as_str(), Some(*text), "{cfg}");
        assert_eq!(ours.0, 400);
    }
    // Overlapping pools: the same 403 on both.
    let _g = Cleanup::new(&p, &[], &["ncf-over1", "ncf-over2"]);
    create_both(
        &p,
        json!({"Name": "ncf-over1", "IPAM": {"Config": [{"Subnet": "10.219.19.0/24"}]}}),
    );
    let body = json!({"Name": "ncf-over2", "IPAM": {"Config": [{"Subnet": "10.219.19.128/25"}]}});
    let (ours, theirs) = both(&p, "POST", V, "networks/create", &body);
    assert_eq!(ours, theirs);
    assert_eq!(ours.0, 403);
}

#[test]
fn endpoints_config_at_create() {
    let Some(p) = Pair::start() else { return };
    let _g = Cleanup::new(
        &p,
        &["ncf-multi", "ncf-one", "ncf-new"],
        &["ncf-m1", "ncf-m2"],
    );
    for (n, s) in [("ncf-m1", "10.219.40.0/24"), ("ncf-m2", "10.219.41.0/24")] {
        create_both(&p, json!({"Name": n, "IPAM": {"Config": [{"Subnet": s}]}}));
    }
    // Before API 1.44, one network at create: the same refusal (dockerd lists the names in
    // map order).
    let two = json!({"Image": "busybox", "Cmd": ["sleep", "300"],
        "HostConfig": {"NetworkMode": "ncf-m1"},
        "NetworkingConfig": {"EndpointsConfig": {"ncf-m1": {}, "ncf-m2": {}}}});
    let (ours, theirs) = both(&p, "POST", V, "containers/create?name=ncf-multi", &two);
    let listed = |v: &Value| -> BTreeSet<String> {
        let m = v["message"].as_str().unwrap_or("");
        let rest = m
            .strip_prefix("Container cannot be connected to network endpoints: ")
            .unwrap_or_else(|| panic!("unexpected text {m:?}"));
        rest.split(", ").map(str::to_string).collect()
    };
    assert_eq!((ours.0, theirs.0), (400, 400));
    assert_eq!(listed(&ours.1), listed(&theirs.1));

    // One endpoint with aliases, an address and the top-level MAC address (API 1.41).
    let one = json!({"Image": "busybox", "Cmd": ["sleep", "300"], "MacAddress": "02:11:22:33:44:55",
        "HostConfig": {"NetworkMode": "ncf-m1"},
        "NetworkingConfig": {"EndpointsConfig": {"ncf-m1": {"Aliases": ["al1"],
            "IPAMConfig": {"IPv4Address": "10.219.40.200"}}}}});
    let (ours, theirs) = both(&p, "POST", V, "containers/create?name=ncf-one", &one);
    assert_eq!((ours.0, theirs.0), (201, 201), "{ours:?} / {theirs:?}");
    let [a, b] = endpoint_of(&p, "ncf-one", "ncf-m1");
    same(
        &a,
        &b,
        &[
            "IPAMConfig",
            "Aliases",
            "EndpointID",
            "IPAddress",
            "MacAddress",
            "Gateway",
        ],
    );
    p.docker(&["start", "ncf-one"], None).ok();
    let [a, b] = endpoint_of(&p, "ncf-one", "ncf-m1");
    same(
        &a,
        &b,
        &[
            "IPAMConfig",
            "IPAddress",
            "IPPrefixLen",
            "Gateway",
            "MacAddress",
            "IPv6Gateway",
            "GlobalIPv6Address",
        ],
    );
    for (s, ep) in sockets(&p).iter().zip([&a, &b]) {
        let c = inspect(s, "containers/ncf-one/json");
        let net = inspect(s, "networks/ncf-m1");
        assert_eq!(ep["NetworkID"], net["Id"]);
        let eid = ep["EndpointID"].as_str().unwrap_or("");
        assert!(hex64(eid) && eid != c["Id"].as_str().unwrap_or(""), "{ep}");
        // API 1.41: the aliases asked for, then the short id.
        let short = &c["Id"].as_str().unwrap_or("")[..12];
        assert_eq!(ep["Aliases"], json!(["al1", short]), "{ep}");
        assert_eq!(
            net["Containers"][c["Id"].as_str().unwrap_or("")]["EndpointID"],
            ep["EndpointID"]
        );
    }

    // The top-level (default network) fields: present, and empty off the default bridge.
    let top = [
        "EndpointID",
        "Gateway",
        "GlobalIPv6Address",
        "GlobalIPv6PrefixLen",
        "IPAddress",
        "IPPrefixLen",
        "IPv6Gateway",
        "MacAddress",
    ];
    let [a, b] =
        sockets(&p).map(|s| inspect(&s, "containers/ncf-one/json")["NetworkSettings"].clone());
    same(&a, &b, &top);
    // On berthd's default bridge they are its endpoint's.
    let d =
        p.d.docker(&["run", "-d", "--name", "ncf-def", "busybox", "sleep", "300"]);
    d.ok();
    let ns = inspect(p.d.socket(), "containers/ncf-def/json")["NetworkSettings"].clone();
    let _ = p.d.docker(&["rm", "-f", "ncf-def"]);
    same(&ns, &ns["Networks"]["bridge"], &top);
    assert!(hex64(ns["EndpointID"].as_str().unwrap_or("")), "{ns}");

    // API 1.44 (berthd alone: dockerd 20.10 stops at 1.41): every network attached at create,
    // each endpoint with its own aliases, address and MAC address.
    let multi = json!({"Image": "busybox", "Cmd": ["sleep", "300"],
        "HostConfig": {"NetworkMode": "ncf-m1"},
        "NetworkingConfig": {"EndpointsConfig": {
            "ncf-m1": {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.219.40.10"},
                       "MacAddress": "02:aa:bb:cc:dd:01"},
            "ncf-m2": {"IPAMConfig": {"IPv4Address": "10.219.41.10"},
                       "MacAddress": "02:aa:bb:cc:dd:02"}}}});
    let sock = p.d.socket();
    let (st, v) = call(
        sock,
        "POST",
        "1.44",
        "containers/create?name=ncf-multi",
        &multi,
    );
    assert_eq!(st, 201, "{v}");
    let nets = inspect(sock, "containers/ncf-multi/json")["NetworkSettings"]["Networks"].clone();
    assert_eq!(nets.as_object().map(|m| m.len()), Some(2), "{nets}");
    p.d.docker(&["start", "ncf-multi"]).ok();
    let c = inspect(sock, "containers/ncf-multi/json");
    let nets = &c["NetworkSettings"]["Networks"];
    let mut ids = BTreeSet::new();
    for (n, ip, mac) in [
        ("ncf-m1", "10.219.40.10", "02:aa:bb:cc:dd:01"),
        ("ncf-m2", "10.219.41.10", "02:aa:bb:cc:dd:02"),
    ] {
        assert_eq!(nets[n]["IPAddress"], ip, "{nets}");
        assert_eq!(nets[n]["MacAddress"], mac, "{nets}");
        let eid = nets[n]["EndpointID"].as_str().unwrap_or("").to_string();
        assert!(
            hex64(&eid) && Some(eid.as_str()) != c["Id"].as_str(),
            "{nets}"
        );
        ids.insert(eid);
    }
    assert_eq!(ids.len(), 2, "each endpoint has its own id");
    let links =
        p.d.docker(&["exec", "ncf-multi", "ip", "-o", "link"])
            .ok()
            .to_string();
    assert!(
        links.contains("02:aa:bb:cc:dd:01") && links.contains("02:aa:bb:cc:dd:02"),
        "{links}"
    );
    // Its names on each network, from a peer there.
    let ask = |net: &str, name: &str| {
        p.d.docker(&["run", "--rm", "--network", net, "busybox", "nslookup", name])
            .ok()
            .to_string()
    };
    assert!(ask("ncf-m1", "web").contains("10.219.40.10"));
    assert!(ask("ncf-m2", "ncf-multi").contains("10.219.41.10"));
    assert!(ask("ncf-m2", "ncf-multi.ncf-m2").contains("10.219.41.10"));

    // From API 1.44 the container-wide MAC address is the main endpoint's (with dockerd's
    // deprecation warning); a different one there is refused.
    let top = json!({"Image": "busybox", "Cmd": ["true"], "MacAddress": "02:aa:bb:cc:dd:09",
        "HostConfig": {"NetworkMode": "ncf-m1"}});
    let (st, v) = call(sock, "POST", "1.44", "containers/create?name=ncf-new", &top);
    assert_eq!(st, 201, "{v}");
    assert!(
        v["Warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("deprecated")),
        "{v}"
    );
    let ep = &inspect(sock, "containers/ncf-new/json")["NetworkSettings"]["Networks"]["ncf-m1"];
    assert_eq!(ep["MacAddress"], "02:aa:bb:cc:dd:09", "{ep}");
    let mut clash = top.clone();
    clash["NetworkingConfig"] =
        json!({"EndpointsConfig": {"ncf-m1": {"MacAddress": "02:aa:bb:cc:dd:0a"}}});
    let (st, v) = call(sock, "POST", "1.44", "containers/create", &clash);
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty"))
    );

    // The configuration outlives the endpoints: stopped, the MAC addresses asked for stay
    // (berth's bookkeeping never shows); started again, they come back with fresh ids.
    p.d.docker(&["stop", "-t", "0", "ncf-multi"]).ok();
    let nets = inspect(sock, "containers/ncf-multi/json")["NetworkSettings"]["Networks"].clone();
    assert_eq!(nets["ncf-m1"]["MacAddress"], "02:aa:bb:cc:dd:01", "{nets}");
    assert_eq!(nets["ncf-m1"]["EndpointID"], "", "{nets}");
    let listed = call(sock, "GET", "1.44", "containers/json?all=1", &Value::Null).1;
    assert!(!format!("{nets}{listed}").contains("Berth"), "{nets}");
    p.d.docker(&["start", "ncf-multi"]).ok();
    let nets = inspect(sock, "containers/ncf-multi/json")["NetworkSettings"]["Networks"].clone();
    for (n, mac) in [
        ("ncf-m1", "02:aa:bb:cc:dd:01"),
        ("ncf-m2", "02:aa:bb:cc:dd:02"),
    ] {
        assert_eq!(nets[n]["MacAddress"], mac, "{nets}");
        let eid = nets[n]["EndpointID"].as_str().unwrap_or("");
        assert!(hex64(eid) && !ids.contains(eid), "{nets}");
    }
}

#[test]
fn ipv6_networks_give_containers_working_addresses() {
    let Some(mut p) = Pair::start() else { return };
    let _g = Cleanup::new(
        &p,
        &["ncf-s1", "ncf-s2"],
        &["ncf-v6", "ncf-v6only", "ncf-v6none"],
    );
    create_both(
        &p,
        json!({"Name": "ncf-v6", "EnableIPv6": true, "IPAM": {"Config": [
            {"Subnet": "10.219.60.0/24"}, {"Subnet": "fd42:219:60::/64"}]}}),
    );
    // Only an IPv6 pool: the engine picks the IPv4 one (shown first).
    create_both(
        &p,
        json!({"Name": "ncf-v6only", "EnableIPv6": true, "IPAM": {"Config": [
            {"Subnet": "fd42:219:61::/64"}]}}),
    );
    let [ours, theirs] = ipam_of(&p, "ncf-v6");
    assert_eq!(ours, theirs);
    assert_eq!(ours["EnableIPv6"], true);
    let [ours, theirs] = ipam_of(&p, "ncf-v6only");
    assert_eq!(ours["IPAM"]["Config"][1], theirs["IPAM"]["Config"][1]);
    assert_eq!(ours["IPAM"]["Config"].as_array().map(Vec::len), Some(2));
    // IPv6 without a pool: no default IPv6 pool on either.
    let body = json!({"Name": "ncf-v6none", "EnableIPv6": true});
    let (ours, theirs) = both(&p, "POST", V, "networks/create", &body);
    assert_eq!(ours, theirs);

    // `--ip6` and an address IPAM picks; the same addresses, prefix and gateway on both.
    p.docker(
        &[
            "run",
            "-d",
            "--name",
            "ncf-s1",
            "--network",
            "ncf-v6",
            "--ip6",
            "fd42:219:60::99",
            "busybox",
            "sleep",
            "300",
        ],
        None,
    )
    .ok();
    p.docker(
        &[
            "run",
            "-d",
            "--name",
            "ncf-s2",
            "--network",
            "ncf-v6",
            "busybox",
            "sleep",
            "300",
        ],
        None,
    )
    .ok();
    let keys = [
        "IPAMConfig",
        "IPAddress",
        "GlobalIPv6Address",
        "GlobalIPv6PrefixLen",
        "IPv6Gateway",
        "Gateway",
    ];
    for c in ["ncf-s1", "ncf-s2"] {
        let [a, b] = endpoint_of(&p, c, "ncf-v6");
        same(&a, &b, &keys);
    }
    let [a, _] = endpoint_of(&p, "ncf-s2", "ncf-v6");
    assert_eq!(a["GlobalIPv6Address"], "fd42:219:60::2");
    assert_eq!(a["IPv6Gateway"], "fd42:219:60::1");
    // The network lists both addresses of each container.
    for s in sockets(&p) {
        let n = inspect(&s, "networks/ncf-v6");
        let v6: BTreeSet<String> = n["Containers"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|c| c["IPv6Address"].as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let want: BTreeSet<String> = ["fd42:219:60::99/64", "fd42:219:60::2/64"]
            .map(String::from)
            .into();
        assert_eq!(v6, want, "{n}");
    }
    // Inside: the address and the default route; the peers reach and resolve each other.
    let addr = p.docker(
        &["exec", "ncf-s2", "ip", "-6", "addr", "show", "eth0"],
        None,
    );
    addr.ok();
    for out in [&addr.ours.stdout, &addr.theirs.stdout] {
        assert!(out.contains("inet6 fd42:219:60::2/64"), "{out}");
    }
    let route = p.docker(&["exec", "ncf-s2", "ip", "-6", "route"], None);
    route.ok();
    assert!(
        route.ours.stdout.contains("default via fd42:219:60::1"),
        "{}",
        route.ours.stdout
    );
    let ping = p.docker(
        &[
            "exec",
            "ncf-s2",
            "ping6",
            "-c",
            "1",
            "-W",
            "5",
            "fd42:219:60::99",
        ],
        None,
    );
    ping.ok();
    for name in ["ncf-s1", "ncf-s1.ncf-v6"] {
        let q = p.docker(&["exec", "ncf-s2", "nslookup", "-type=AAAA", name], None);
        q.ok();
        for out in [&q.ours.stdout, &q.theirs.stdout] {
            assert!(out.contains("fd42:219:60::99"), "{name}: {out}");
        }
    }
    let ping = p.docker(
        &["exec", "ncf-s2", "ping6", "-c", "1", "-W", "5", "ncf-s1"],
        None,
    );
    ping.ok();
    // `--ip6` on a network whose IPv4 pool the engine picked; refused where no IPv6 pool is.
    let ip6 = |net: &str, addr: &str| {
        let args = [
            "run",
            "--rm",
            "--network",
            net,
            "--ip6",
            addr,
            "busybox",
            "ip",
            "-6",
            "addr",
        ];
        p.docker(&args, None)
    };
    let got = ip6("ncf-v6only", "fd42:219:61::77");
    got.ok();
    assert!(
        got.ours.stdout.contains("fd42:219:61::77/64"),
        "{}",
        got.ours.stdout
    );
    let _g2 = Cleanup::new(&p, &[], &["ncf-v4"]);
    create_both(
        &p,
        json!({"Name": "ncf-v4", "IPAM": {"Config": [{"Subnet": "10.219.62.0/24"}]}}),
    );
    let refused = ip6("ncf-v4", "fd42:219:62::7");
    assert!(!refused.ours.success() && !refused.theirs.success());
    let text = "user specified IP address is supported only when connecting to networks with user configured subnets";
    assert!(
        refused.ours.stderr.contains(text),
        "{}",
        refused.ours.stderr
    );
    assert!(
        refused.theirs.stderr.contains(text),
        "{}",
        refused.theirs.stderr
    );

    // berthd isolates its IPv6 networks from each other as its IPv4 ones (the host routes
    // IPv6 between bridges when forwarding is on; dockerd here runs without ip6tables).
    let _g3 = Cleanup::new(&p, &["ncf-iso"], &["ncf-v6b"]);
    let other = [
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd42:219:63::/64",
        "ncf-v6b",
    ];
    p.d.docker(&other).ok();
    let iso = [
        "run",
        "-d",
        "--name",
        "ncf-iso",
        "--network",
        "ncf-v6b",
        "busybox",
        "sleep",
        "300",
    ];
    p.d.docker(&iso).ok();
    let cross = [
        "exec",
        "ncf-s2",
        "ping6",
        "-c",
        "1",
        "-W",
        "5",
        "fd42:219:63::2",
    ];
    assert!(
        !p.d.docker(&cross).success(),
        "IPv6 crossed from one network to another"
    );

    // A restarted berthd re-creates the network: its containers still reach each other.
    p.d.restart();
    p.d.docker(&[
        "exec",
        "ncf-s2",
        "ping6",
        "-c",
        "1",
        "-W",
        "5",
        "fd42:219:60::99",
    ])
    .ok();
}

#[test]
fn python_sdk_ipv6_network() {
    let Some(p) = Pair::start() else { return };
    let _g = Cleanup::new(&p, &["ncf-py"], &["ncf-pyv6"]);
    let script = r#"
from docker.types import IPAMConfig, IPAMPool
n = c.networks.create("ncf-pyv6", driver="bridge", enable_ipv6=True,
    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="fd42:219:70::/64")]))
ct = c.containers.run("busybox", ["sleep", "300"], name="ncf-py", network="ncf-pyv6", detach=True)
ct.reload()
ep = ct.attrs["NetworkSettings"]["Networks"]["ncf-pyv6"]
print(ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"])
print(n.attrs["EnableIPv6"])
"#;
    let out = p.d.python(script);
    assert_eq!(
        out.ok(),
        "fd42:219:70::2 64 fd42:219:70::1\nTrue\n",
        "{}",
        out.stderr
    );
}
