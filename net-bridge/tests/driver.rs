//! Drives the bridge driver directly against the kernel: namespaces made with `ip netns add`,
//! real bridges, veths, nftables and traffic between them (root only, own names and subnet).

#![allow(clippy::unwrap_used)]

use berth_core::network::{EndpointSpec, NetworkSpec, PortBinding};
use std::io::{Read, Write};
use std::process::{Child, Command};

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Everything the test made, removed on drop even when an assertion fails.
struct Fixture {
    tag: String,
    nss: Vec<String>,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Fixture {
    fn new(tag: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Fixture {
            tag: tag.into(),
            nss: Vec::new(),
            children: Vec::new(),
            _dir: dir,
            root,
        }
    }
    fn netns(&mut self, n: usize) -> String {
        let name = format!("{}-ns{n}", self.tag);
        let _ = sh(&format!("ip netns del {name}"));
        assert!(sh(&format!("ip netns add {name}")).0);
        self.nss.push(name.clone());
        format!("/run/netns/{name}")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.nss {
            let _ = sh(&format!("ip netns del {ns}"));
        }
        let _ = sh(&format!(
            "ip link del {}br0; ip link del {}br1",
            self.tag, self.tag
        ));
        let _ = sh(&format!("nft delete table ip berth_{}br0", self.tag));
    }
}

fn ep(net: &str, n: usize, ns: &str, ports: Vec<PortBinding>) -> EndpointSpec {
    EndpointSpec {
        network_id: net.into(),
        endpoint_id: format!("ep{n}"),
        container_id: format!("c{n}"),
        netns_path: ns.into(),
        ifname: "eth0".into(),
        ip: None,
        mac: None,
        ports,
        ip6: None,
    }
}

fn http_get(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn bridge_lifecycle_traffic_ports_and_cleanup() {
    let tag = format!("bt{}", std::process::id() % 10000);
    let mut fx = Fixture::new(&tag);
    let br = format!("{tag}br0");
    let cfg = serde_json::json!({"root": fx.root, "bridge": br, "bip": "10.199.7.1/24"});
    let d = berth_net_bridge::new_driver(&cfg).unwrap();
    let table = format!("berth_{br}");
    let net = "a".repeat(64);
    let info = d
        .create_network(&NetworkSpec {
            id: net.clone(),
            name: "bridge".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(info.subnet, "10.199.7.0/24");
    assert_eq!(info.gateway, "10.199.7.1");
    assert!(sh(&format!("ip -4 addr show {br}"))
        .1
        .contains("10.199.7.1/24"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );

    let ns1 = fx.netns(1);
    let ns2 = fx.netns(2);
    let port = free_port();
    let e1 = d
        .join(&ep(
            &net,
            1,
            &ns1,
            vec![PortBinding {
                proto: "tcp".into(),
                container_port: 80,
                host_ip: String::new(),
                host_port: port,
            }],
        ))
        .unwrap();
    let e2 = d.join(&ep(&net, 2, &ns2, vec![])).unwrap();
    assert_eq!(e1.ip, "10.199.7.2");
    assert_eq!(e2.ip, "10.199.7.3");
    assert_eq!(e1.mac, "02:42:0a:c7:07:02");
    assert_eq!(e1.ports[0].host_port, port);
    let (_, addrs) = sh(&format!(
        "ip netns exec {tag}-ns1 ip -4 addr show eth0; ip netns exec {tag}-ns1 ip route"
    ));
    assert!(addrs.contains("10.199.7.2/24"), "{addrs}");
    assert!(addrs.contains("default via 10.199.7.1"), "{addrs}");
    let (ok, out) = sh(&format!(
        "ip netns exec {tag}-ns2 busybox ping -c1 -W2 10.199.7.2"
    ));
    assert!(ok, "{out}");

    // The same port again: Docker's error, and nothing half set up.
    let ns3 = fx.netns(3);
    let err = d
        .join(&ep(
            &net,
            3,
            &ns3,
            vec![PortBinding {
                proto: "tcp".into(),
                container_port: 80,
                host_ip: String::new(),
                host_port: port,
            }],
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Bind for 0.0.0.0:{port} failed: port is already allocated")
    );
    assert!(
        !sh(&format!(
            "ip link show {}",
            berth_net_bridge::veth_name(&net, "ep3")
        ))
        .0
    );
    assert!(!sh(&format!("ip netns exec {tag}-ns3 ip link show eth0")).0);

    // Published port from the host, via 127.0.0.1 and via the bridge address.
    let www = fx.root.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hi\n").unwrap();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{tag}-ns1"),
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
        ])
        .arg(&www)
        .spawn()
        .unwrap();
    fx.children.push(child);
    let mut ready = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect("10.199.7.2:80").is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ready);
    assert!(http_get("10.199.7.2:80").ends_with("hi\n"));
    assert!(http_get(&format!("127.0.0.1:{port}")).ends_with("hi\n"));
    // From the other container through the gateway (hairpin DNAT on the same bridge).
    let (ok, out) = sh(&format!(
        "ip netns exec {tag}-ns2 busybox wget -qO- http://10.199.7.1:{port}/"
    ));
    assert!(ok && out.contains("hi"), "{out}");

    // A second network is isolated from the first.
    let net2 = "b".repeat(64);
    let br1 = format!("{tag}br1");
    let mut opts = std::collections::BTreeMap::new();
    opts.insert("com.docker.network.bridge.name".to_string(), br1.clone());
    d.create_network(&NetworkSpec {
        id: net2.clone(),
        name: "other".into(),
        subnet: Some("10.199.8.0/24".into()),
        options: opts,
        ..Default::default()
    })
    .unwrap();
    let ns4 = fx.netns(4);
    let e4 = d.join(&ep(&net2, 4, &ns4, vec![])).unwrap();
    assert_eq!(e4.ip, "10.199.8.2");
    assert!(
        !sh(&format!(
            "ip netns exec {tag}-ns4 busybox ping -c1 -W1 10.199.7.2"
        ))
        .0
    );
    assert!(
        sh(&format!(
            "ip netns exec {tag}-ns4 busybox ping -c1 -W1 10.199.8.1"
        ))
        .0
    );

    // Overlapping subnets are refused.
    let err = d
        .create_network(&NetworkSpec {
            id: "c".repeat(64),
            name: "x".into(),
            subnet: Some("10.199.7.128/25".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("overlaps"), "{err}");

    // A restarted driver keeps the leases: the next address is new.
    drop(d);
    let d = berth_net_bridge::new_driver(&cfg).unwrap();
    d.create_network(&NetworkSpec {
        id: net.clone(),
        name: "bridge".into(),
        ..Default::default()
    })
    .unwrap();
    let err = d
        .join(&ep(
            &net,
            3,
            &ns3,
            vec![PortBinding {
                proto: "tcp".into(),
                container_port: 80,
                host_ip: String::new(),
                host_port: port,
            }],
        ))
        .unwrap_err();
    assert!(err.to_string().contains("already allocated"), "{err}");
    let e3 = d.join(&ep(&net, 3, &ns3, vec![])).unwrap();
    assert!(
        e3.ip != e1.ip && e3.ip != e2.ip && e3.ip.starts_with("10.199.7."),
        "a free address: {}",
        e3.ip
    );
    assert!(d.delete_network(&net).is_err(), "in use");

    // Leave removes veths and port entries; reconcile removes the stale network.
    for n in 1..=3 {
        d.leave(&net, &format!("ep{n}")).unwrap();
        assert!(
            !sh(&format!(
                "ip link show {}",
                berth_net_bridge::veth_name(&net, &format!("ep{n}"))
            ))
            .0
        );
    }
    d.leave(&net, "ep1").unwrap();
    let (_, rules) = sh(&format!("nft list table ip {table}"));
    assert!(!rules.contains(&port.to_string()), "{rules}");
    assert!(
        std::net::TcpListener::bind(("0.0.0.0", port)).is_ok(),
        "port released"
    );
    d.reconcile(std::slice::from_ref(&net)).unwrap();
    assert!(
        !sh(&format!("ip link show {br1}")).0,
        "stale bridge removed"
    );
    assert!(!fx.root.join(format!("bridge/{net2}.json")).exists());
    d.delete_network(&net).unwrap();
    assert!(!sh(&format!("ip link show {br}")).0);
    assert!(
        !sh(&format!("nft list table ip {table}")).0,
        "table removed"
    );
    assert_eq!(
        std::fs::read_dir(fx.root.join("bridge")).unwrap().count(),
        0
    );
}

/// Polls for up to 5 s until link `name` is gone.
fn link_gone(name: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sh(&format!("ip link show {name}")).0 {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

#[test]
fn leaving_a_dead_namespace_defers_the_veth_and_a_stale_one_is_replaced() {
    let tag = format!("bd{}", std::process::id() % 10000);
    let mut fx = Fixture::new(&tag);
    let br = format!("{tag}br0");
    let cfg = serde_json::json!({"root": fx.root, "bridge": br, "bip": "10.199.8.1/24"});
    let d = berth_net_bridge::new_driver(&cfg).unwrap();
    let net = "b".repeat(64);
    d.create_network(&NetworkSpec {
        id: net.clone(),
        name: "bridge".into(),
        ..Default::default()
    })
    .unwrap();
    let veth1 = berth_net_bridge::veth_name(&net, "ep1");

    // The namespace's file goes away while a process still holds it (as a container whose
    // namespace another container shares): leave does not wait, the reaper still deletes it.
    let ns1 = fx.netns(1);
    d.join(&ep(&net, 1, &ns1, vec![])).unwrap();
    let holder = Command::new("ip")
        .args(["netns", "exec", &format!("{tag}-ns1"), "sleep", "30"])
        .spawn()
        .unwrap();
    fx.children.push(holder);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(sh(&format!("ip netns del {tag}-ns1")).0);
    d.leave(&net, "ep1").unwrap();
    assert!(link_gone(&veth1), "the reaper deleted {veth1}");
    let leases = fx.root.join(format!("bridge/{net}.leases"));
    let held = std::fs::read_dir(&leases).map(|d| d.count()).unwrap_or(0);
    assert_eq!(held, 0, "lease released");

    // A veth of the same endpoint still there (not reaped yet): join replaces it.
    assert!(sh(&format!("ip link add {veth1} type veth peer name {tag}p")).0);
    let ns2 = fx.netns(2);
    let e = d.join(&ep(&net, 1, &ns2, vec![])).unwrap();
    let (_, addrs) = sh(&format!("ip netns exec {tag}-ns2 ip -4 addr show eth0"));
    assert!(addrs.contains(&format!("{}/24", e.ip)), "{addrs}");
    assert!(!sh(&format!("ip link show {tag}p")).0, "stale pair gone");
    let (_, master) = sh(&format!("ip -o link show {veth1}"));
    assert!(master.contains(&format!("master {br}")), "{master}");

    // A live namespace: leave deletes at once.
    d.leave(&net, "ep1").unwrap();
    assert!(!sh(&format!("ip link show {veth1}")).0);
    d.delete_network(&net).unwrap();
}
