//! Hostile DNS clients (issue #15): a container on a user network floods berth's embedded DNS
//! (127.0.0.11) with a hundred parallel `nslookup` loops whose names go upstream and are never
//! answered — berthd keeps answering the API and its descriptors and threads stay bounded; and a
//! container on an `--internal` network resolves its peers but gets no upstream forwarding: the
//! upstream (a UDP listener the test runs on a loopback address of its own, given as `--dns`)
//! receives the queries of a container on a normal network and none of the internal one's.

mod network_support;

use berth_tests::TestDaemon;
use network_support::Guard;
use serde_json::json;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The names asked for at the fake upstream, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// The question name of a DNS query.
fn qname(q: &[u8]) -> String {
    let mut i = 12;
    let mut labels = Vec::new();
    while let Some(&len) = q.get(i) {
        if len == 0 || len > 63 {
            break;
        }
        let label = q.get(i + 1..i + 1 + len as usize).unwrap_or_default();
        labels.push(String::from_utf8_lossy(label).to_string());
        i += 1 + len as usize;
    }
    labels.join(".")
}

/// A fake upstream resolver on `addr`:53: records every name; answers NXDOMAIN except to names
/// containing `flood` (left unanswered, so each forwarded query waits its full time).
fn upstream(addr: &str) -> Seen {
    let sock = UdpSocket::bind((addr, 53)).expect("bind the fake upstream");
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            let name = qname(q);
            if let Ok(mut v) = s2.lock() {
                v.push(name.clone());
            }
            if n < 12 || name.contains("flood") {
                continue;
            }
            let mut r = q.to_vec();
            r[2] |= 0x80; // QR
            r[3] = (r[3] & 0xf0) | 3; // NXDOMAIN
            let _ = sock.send_to(&r, from);
        }
    });
    seen
}

fn count(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

fn threads(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn network(d: &TestDaemon, g: &mut Guard, name: &str, subnet: &str, internal: bool) {
    let mut args = vec!["network", "create", "--subnet", subnet];
    if internal {
        args.push("--internal");
    }
    args.push(name);
    let id = d.docker(&args).ok().trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    g.user_bridges.push(format!("br-{}", &id[..12]));
}

#[test]
fn embedded_dns_is_bounded_and_internal_networks_do_not_forward() {
    let n: String;
    {
        let probe = TestDaemon::builder().prepare();
        n = probe.subnet().split('.').nth(2).unwrap_or("2").to_string();
    }
    let pools =
        json!({"default-address-pools": [{"base": format!("10.229.{n}.0/24"), "size": 24}]});
    let d = TestDaemon::builder().config_json(pools).start();
    let mut g = Guard::new(&d);
    d.import_busybox();
    let pid = d.pid().expect("berthd pid");
    // A loopback address of this test's own for the fake upstream.
    let me = std::process::id();
    let up = format!("127.53.{}.{}", (me >> 8) % 250 + 1, me % 250 + 1);
    let seen = upstream(&up);
    network(&d, &mut g, "open", &format!("10.226.{n}.0/24"), false);
    network(&d, &mut g, "closed", &format!("10.227.{n}.0/24"), true);
    let run = |name: &str, net: &str| {
        d.docker(&[
            "run",
            "-d",
            "--network",
            net,
            "--dns",
            &up,
            "--name",
            name,
            "busybox",
            "sleep",
            "300",
        ])
        .ok();
    };
    run("outside", "open");
    run("inside", "closed");
    run("peer", "closed");

    // A normal network's unknown names reach the upstream.
    let out = d.docker(&["exec", "outside", "nslookup", "normal-name.example"]);
    assert_ne!(out.status, 0, "NXDOMAIN: {out:?}");
    let reached = |needle: &str| {
        seen.lock()
            .map(|v| v.iter().any(|s| s.contains(needle)))
            .unwrap_or(false)
    };
    assert!(
        reached("normal-name.example"),
        "the upstream got the open network's query"
    );

    // The internal network's peers resolve; other names are refused at once, never forwarded.
    let peer_ip = d
        .docker(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.closed.IPAddress}}",
            "peer",
        ])
        .ok()
        .trim()
        .to_string();
    let out = d.docker(&["exec", "inside", "nslookup", "peer"]);
    assert!(out.stdout.contains(&peer_ip), "peer resolves: {out:?}");
    let t = Instant::now();
    let out = d.docker(&["exec", "inside", "nslookup", "secret-leak.example"]);
    assert_ne!(out.status, 0, "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "refused quickly");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !reached("secret-leak"),
        "an internal network's query went upstream"
    );

    // The flood: 100 loops of queries that go upstream and are never answered.
    let fds_before = count(&format!("/proc/{pid}/fd"));
    let threads_before = threads(pid);
    d.docker(&[
        "exec",
        "-d",
        "outside",
        "sh",
        "-c",
        "for i in $(seq 100); do (while true; do nslookup flood$i.example >/dev/null 2>&1; done) & done; sleep 300",
    ])
    .ok();
    let (mut max_fds, mut max_threads) = (0, 0);
    for _ in 0..16 {
        std::thread::sleep(Duration::from_millis(500));
        max_fds = max_fds.max(count(&format!("/proc/{pid}/fd")));
        max_threads = max_threads.max(threads(pid));
        let (status, _, _) = d.request("GET", "/_ping", None);
        assert_eq!(status, 200, "berthd answers during the flood");
    }
    let flooded = seen.lock().map(|v| v.len()).unwrap_or(0);
    eprintln!("flood: {flooded} queries upstream; fds {fds_before} -> {max_fds}, threads {threads_before} -> {max_threads}");
    assert!(reached("flood"), "the flood reached the upstream");
    assert!(
        max_fds < fds_before + 100,
        "descriptors bounded: {fds_before} before, {max_fds} during the flood"
    );
    assert!(
        max_threads < threads_before + 32,
        "threads bounded: {threads_before} before, {max_threads} during the flood"
    );
    d.docker(&["version"]).ok();
    d.docker(&["rm", "-f", "outside"]).ok();
    // Once it is over, resolution works as before.
    let out = d.docker(&["exec", "inside", "nslookup", "peer"]);
    assert!(
        out.stdout.contains(&peer_ip),
        "peer resolves after: {out:?}"
    );
    d.docker(&["rm", "-f", "inside", "peer"]).ok();
}
