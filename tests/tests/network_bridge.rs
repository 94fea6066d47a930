//! Networking through the default bridge (issue 6), driven by the stock docker CLI: addresses
//! on the test's own bridge and subnet, published ports reached via 127.0.0.1 and the
//! container's address, `docker port`, no address given twice, and nothing left in the kernel
//! after removal. Traffic goes only to loopback and to the test's own containers.

mod network_support;

use berth_tests::{free_port, TestDaemon};
use std::io::{Read, Write};
use std::process::Command;

fn http_get(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &addr.parse().ok()?,
        std::time::Duration::from_secs(3),
    )
    .ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn get_with_retries(addr: &str) -> String {
    for _ in 0..50 {
        if let Some(r) = http_get(addr) {
            if r.contains("hello from the bridge") {
                return r;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no answer from {addr}");
}

fn veths_on(bridge: &str) -> usize {
    network_support::ports_of(bridge).len()
}

#[test]
fn published_ports_answer_on_loopback_and_the_bridge() {
    let d = TestDaemon::start();
    d.import_busybox();
    let port = free_port();
    let id = d
        .docker(&["run", "-d", "-p", &format!("{port}:80"), "--name", "web", "busybox", "sh", "-c", "mkdir -p /www && echo hello from the bridge > /www/index.html && exec httpd -f -p 80 -h /www"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    get_with_retries(&format!("127.0.0.1:{port}"));
    let ip = d
        .docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"])
        .ok()
        .trim()
        .to_string();
    let prefix = d.subnet().split('.').take(3).collect::<Vec<_>>().join(".");
    assert!(ip.starts_with(&prefix), "{ip} in {}", d.subnet());
    get_with_retries(&format!("{ip}:80"));
    let port_out = d.docker(&["port", "web"]).ok().to_string();
    assert!(
        port_out.contains(&format!("80/tcp -> 0.0.0.0:{port}")),
        "{port_out}"
    );
    // The same host port again: Docker's error, and the container does not run.
    let again = d.docker(&[
        "run",
        "-d",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    assert_ne!(again.status, 0);
    assert!(
        again.stderr.contains("port is already allocated"),
        "{}",
        again.stderr
    );
    d.docker(&["rm", "-f", "web"]).ok();
    let _ = d.docker(&["container", "prune", "-f"]);
    let left = network_support::ports_left(d.bridge());
    assert!(left.is_empty(), "no veth left on the bridge: {left:?}");
}

#[test]
fn twenty_containers_get_distinct_addresses_and_leave_nothing() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            d.docker(&["run", "-d", "busybox", "sleep", "300"])
                .ok()
                .trim()
                .to_string(),
        );
    }
    let mut ips: Vec<String> = ids
        .iter()
        .map(|i| {
            d.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", i])
                .ok()
                .trim()
                .to_string()
        })
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "no address given twice: {ips:?}");
    assert_eq!(veths_on(d.bridge()), 20);
    // A crash and a restart keep them running and their addresses.
    d.kill9();
    d.restart();
    assert_eq!(d.docker(&["ps", "-q"]).ok().lines().count(), 20);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    d.docker(&args).ok();
    let left = network_support::ports_left(d.bridge());
    assert!(left.is_empty(), "no veth left: {left:?}");
    let held = network_support::leases(&d, "bridge");
    assert!(held.trim().is_empty(), "no lease left: {held}");
    let nft = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for ip in &ips {
        assert!(!nft.contains(&format!("{ip} ")), "no rule mentions {ip}");
    }
}

#[test]
fn restarts_rejoin_and_a_shared_namespace_loses_its_owners_veth() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker(&["run", "-d", "--name", "owner", "busybox", "sleep", "300"])
        .ok();
    // Each restart leaves the old namespace to the kernel and joins a fresh one at once.
    for _ in 0..3 {
        d.docker(&["restart", "-t", "0", "owner"]).ok();
        let ip = d
            .docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "owner"])
            .ok()
            .trim()
            .to_string();
        let addr = d.docker(&["exec", "owner", "ip", "-4", "-o", "addr", "show", "eth0"]);
        assert!(addr.ok().contains(&format!("{ip}/")), "{}", addr.stdout);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while veths_on(d.bridge()) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(veths_on(d.bridge()), 1, "only the live namespace's veth");
    // A guest shares the owner's namespace: when the owner dies the namespace lives on, and
    // the owner's veth is still deleted (as Docker removes the sandbox's interface).
    d.docker(&[
        "run",
        "-d",
        "--name",
        "guest",
        "--network",
        "container:owner",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    d.docker(&["kill", "owner"]).ok();
    let left = network_support::ports_left(d.bridge());
    assert!(left.is_empty(), "owner's veth deleted: {left:?}");
    let links = d.docker(&["exec", "guest", "ip", "-o", "link"]);
    assert!(!links.ok().contains("eth0"), "{}", links.stdout);
    d.docker(&["rm", "-f", "owner", "guest"]).ok();
    let held = network_support::leases(&d, "bridge");
    assert!(held.trim().is_empty(), "no lease left: {held}");
}
