//! Hostile network clients stay out (issue #15 item 6), played for real against berthd's
//! nftables rules: an "outside" host — a network namespace the test makes, wired to the host
//! by a veth pair on 10.214.N.0/30 (N = the test daemon's own subnet number) and routed to
//! the daemon's bridge subnet through the host — reaches a published port, but neither an
//! unpublished container port (direct to the container's address), nor a port published on
//! 127.0.0.1 (through the host's address, or by sending to 127.0.0.1 itself), which the host
//! still reaches. An operator's drop rule in the `berth-user` chain blocks the published port
//! and survives a berthd restart. Without inter-container communication (`--icc=false`, or
//! the network option `com.docker.network.bridge.enable_icc=false`) containers cannot reach
//! each other but do reach the gateway, and published ports still work. Everything the test
//! made (namespace, veth, rules) is removed even when an assertion fails; berthd must answer
//! after every attack. A hostile container that forges frames for 127.0.0.1 to its gateway
//! (berth sets `route_localnet` on its bridges) does not reach the host's loopback services.

mod network_support;

use berth_tests::{free_port, TestDaemon};
use network_support::{sh, Guard};
use std::process::Command;

/// The page the test's web servers serve.
const PAGE: &str = "hello from inside";

/// The outside host: a namespace and the veth pair to it. Removed on drop.
struct Outside {
    ns: String,
    host_if: String,
    /// The host's address on the pair (what the outside host sees as "the server").
    host_ip: String,
}

impl Outside {
    /// Wires namespace `bho<tag>` to the host on 10.214.`n`.0/30 and routes `routed` (the
    /// daemon's bridge subnet) and 127.0.0.0/8 through the host. The namespace's `lo` stays
    /// down, so 127.0.0.1 is not local there: a packet for it leaves through the veth, as a
    /// packet forged by another host on the LAN would arrive.
    fn new(tag: &str, n: u8, routed: &str) -> Outside {
        let o = Outside {
            ns: format!("bho{tag}"),
            host_if: format!("bhh{tag}"),
            host_ip: format!("10.214.{n}.1"),
        };
        let peer = format!("bhp{tag}");
        let _ = sh("ip", &["netns", "del", &o.ns]);
        let _ = sh("ip", &["link", "del", &o.host_if]);
        let steps: Vec<Vec<String>> = vec![
            vec!["netns", "add", &o.ns],
            vec![
                "link", "add", &o.host_if, "type", "veth", "peer", "name", &peer,
            ],
            vec!["link", "set", &peer, "netns", &o.ns],
            vec![
                "addr",
                "add",
                &format!("{}/30", o.host_ip),
                "dev",
                &o.host_if,
            ],
            vec!["link", "set", &o.host_if, "up"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_string).collect())
        .collect();
        for s in &steps {
            let args: Vec<&str> = s.iter().map(String::as_str).collect();
            run_ok("ip", &args);
        }
        let inside: Vec<String> = vec![
            format!("ip addr add 10.214.{n}.2/30 dev {peer}"),
            format!("ip link set {peer} up"),
            format!("ip route add {routed} via {}", o.host_ip),
            format!("ip route add 127.0.0.0/8 via {} dev {peer}", o.host_ip),
            format!("sysctl -qw net.ipv4.conf.{peer}.route_localnet=1"),
            format!("sysctl -qw net.ipv4.conf.all.rp_filter=0"),
            format!("sysctl -qw net.ipv4.conf.{peer}.rp_filter=0"),
        ];
        for c in &inside {
            let mut args = vec!["netns", "exec", &o.ns];
            args.extend(c.split(' '));
            run_ok("ip", &args);
        }
        o
    }

    /// An HTTP GET from the outside host to `addr` ("ip:port"): the body, or None.
    fn get(&self, addr: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "curl", "-s", "-m", "3"])
            .arg(format!("http://{addr}/index.html"))
            .output()
            .ok()?;
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && body.contains(PAGE)).then_some(body)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = sh("ip", &["netns", "del", &self.ns]);
        let _ = sh("ip", &["link", "del", &self.host_if]);
    }
}

#[track_caller]
fn run_ok(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The third number of the daemon's subnet 10.213.N.0/24 (unique among running daemons).
fn subnet_number(d: &TestDaemon) -> u8 {
    d.subnet()
        .split('.')
        .nth(2)
        .and_then(|x| x.parse().ok())
        .expect("subnet number")
}

/// A host-side HTTP GET of `addr` ("ip:port"), retried while the server starts.
fn host_get(addr: &str) -> Option<String> {
    for _ in 0..30 {
        let out = Command::new("curl")
            .args(["-s", "-m", "2"])
            .arg(format!("http://{addr}/index.html"))
            .output()
            .ok()?;
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && body.contains(PAGE) {
            return Some(body);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// `docker run -d` of a busybox web server serving [`PAGE`] with `extra` options.
fn web(d: &TestDaemon, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend(extra);
    let script =
        format!("mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 80 -h /www");
    args.extend(["busybox", "sh", "-c", &script]);
    d.docker(&args).ok();
}

fn ip_of(d: &TestDaemon, name: &str) -> String {
    d.docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        name,
    ])
    .ok()
    .trim()
    .to_string()
}

/// The rules of the operators' chain of daemon `d` (None when the chain does not exist).
fn user_chain(d: &TestDaemon) -> Option<String> {
    let out = Command::new("nft")
        .args([
            "list",
            "chain",
            "ip",
            &format!("berth_{}", d.bridge()),
            "berth-user",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn user_rules(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("table") && !l.starts_with("chain"))
        .filter(|l| *l != "}")
        .map(str::to_string)
        .collect()
}

#[track_caller]
fn assert_alive(d: &TestDaemon) {
    let v = d.docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(v.success(), "berthd answers after the attack: {}", d.log());
}

#[test]
fn outside_hosts_reach_published_ports_only_and_operators_rules_stay() {
    let mut d = TestDaemon::start();
    let _g = Guard::new(&d);
    d.import_busybox();
    let n = subnet_number(&d);
    let tag = format!("{:05x}", std::process::id() & 0xfffff);
    let out = Outside::new(&tag, n, &d.subnet());

    // The operators' chain exists from the start, empty.
    let chain = user_chain(&d).expect("berth-user chain exists");
    assert!(user_rules(&chain).is_empty(), "{chain}");

    let (public, local) = (free_port(), free_port());
    web(
        &d,
        "web",
        &[
            "-p",
            &format!("{public}:80"),
            "-p",
            &format!("127.0.0.1:{local}:80"),
        ],
    );
    let cip = ip_of(&d, "web");
    assert!(host_get(&format!("127.0.0.1:{public}")).is_some());

    // A published port is reachable from outside, through the host's address.
    let published = format!("{}:{public}", out.host_ip);
    assert!(out.get(&published).is_some(), "published port from outside");
    // The container's own address is not, even for the port it serves.
    assert!(
        out.get(&format!("{cip}:80")).is_none(),
        "unpublished direct"
    );
    // A port published on 127.0.0.1: not through the host's address, not by sending to
    // 127.0.0.1 from another host; the host itself still reaches it.
    assert!(out.get(&format!("{}:{local}", out.host_ip)).is_none());
    assert!(
        out.get(&format!("127.0.0.1:{local}")).is_none(),
        "forged 127.0.0.1"
    );
    assert!(
        host_get(&format!("127.0.0.1:{local}")).is_some(),
        "host reaches it"
    );
    assert_alive(&d);

    // An operator's drop rule in berth-user blocks the published port from outside ...
    let table = format!("berth_{}", d.bridge());
    run_ok(
        "nft",
        &[
            "add",
            "rule",
            "ip",
            &table,
            "berth-user",
            "iifname",
            &out.host_if,
            "drop",
        ],
    );
    assert!(out.get(&published).is_none(), "berth-user drop applies");
    // ... and survives a restart of berthd, which re-renders its own rules.
    d.restart();
    let chain = user_chain(&d).expect("berth-user chain after restart");
    let rules = user_rules(&chain);
    assert_eq!(rules.len(), 1, "{chain}");
    assert!(rules[0].contains(&out.host_if), "{chain}");
    assert!(out.get(&published).is_none(), "still dropped after restart");
    assert!(host_get(&format!("127.0.0.1:{public}")).is_some());
    // Without the operator's rule, the published port is back.
    run_ok("nft", &["flush", "chain", "ip", &table, "berth-user"]);
    assert!(
        out.get(&published).is_some(),
        "published port after restart"
    );
    assert!(
        out.get(&format!("{cip}:80")).is_none(),
        "unpublished after restart"
    );
    assert_alive(&d);
}

/// Two web servers `a` and `b` on `net_args` (`b` publishes `port`): neither reaches the
/// other, both reach their gateway, the published port works from the host and from `a`
/// through the host.
#[track_caller]
fn assert_no_icc(d: &TestDaemon, net_args: &[&str], gateway: &str) {
    let port = free_port();
    web(d, "ca", net_args);
    let mut b_args = net_args.to_vec();
    let publish = format!("{port}:80");
    b_args.extend(["-p", &publish]);
    web(d, "cb", &b_args);
    let (ipa, ipb) = (ip_of(d, "ca"), ip_of(d, "cb"));
    assert!(host_get(&format!("{ipb}:80")).is_some(), "host reaches b");
    let exec = |who: &str, cmd: &str| d.docker(&["exec", who, "sh", "-c", cmd]);
    for (from, to) in [("ca", &ipb), ("cb", &ipa)] {
        let ping = exec(from, &format!("ping -c 1 -W 1 {to}"));
        assert!(!ping.success(), "{from} pings {to}: {}", ping.stdout);
        let get = exec(
            from,
            &format!("timeout 3 wget -q -O - http://{to}/index.html"),
        );
        assert!(!get.stdout.contains(PAGE), "{from} reaches {to}");
        let gw = exec(from, &format!("ping -c 1 -W 2 {gateway}"));
        assert!(gw.success(), "{from} pings its gateway: {}", gw.stderr);
    }
    assert!(
        host_get(&format!("127.0.0.1:{port}")).is_some(),
        "published"
    );
    let hairpin = exec(
        "ca",
        &format!("timeout 5 wget -q -O - http://{gateway}:{port}/index.html"),
    );
    assert!(
        hairpin.stdout.contains(PAGE),
        "a reaches b's published port"
    );
    assert_alive(d);
}

#[test]
fn a_network_without_icc_keeps_its_containers_apart() {
    let d = TestDaemon::start();
    let mut g = Guard::new(&d);
    d.import_busybox();
    let n = subnet_number(&d);
    let id = d
        .docker(&[
            "network",
            "create",
            "--subnet",
            &format!("10.215.{n}.0/24"),
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "noicc",
        ])
        .ok()
        .trim()
        .to_string();
    g.user_bridges.push(format!("br-{}", &id[..12]));
    let opt = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.bridge.enable_icc\"}}",
        "noicc",
    ]);
    assert_eq!(opt.ok().trim(), "false");
    assert_no_icc(&d, &["--network", "noicc"], &format!("10.215.{n}.1"));
    // A value Docker could not read either is refused.
    let bad = d.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=perhaps",
        "bad",
    ]);
    assert!(!bad.success());
    assert_alive(&d);
}

#[test]
fn the_icc_flag_applies_to_the_default_network() {
    let d = TestDaemon::builder().arg("--icc=false").start();
    let _g = Guard::new(&d);
    d.import_busybox();
    let opt = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.bridge.enable_icc\"}}",
        "bridge",
    ]);
    assert_eq!(opt.ok().trim(), "false");
    let gateway = d.subnet().replace(".0/24", ".1");
    assert_no_icc(&d, &[], &gateway);
}

/// Sends, from inside the network namespace of process `pid` (the container's), one raw
/// Ethernet frame out of `eth0` to the gateway's MAC carrying a UDP datagram from the
/// container's address to `dst`:`port` — what a container with CAP_NET_RAW can forge.
fn forge_udp(pid: &str, gw_mac: &str, src: &str, dst: &str, port: u16) {
    let script = format!(
        r#"
import socket, struct
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
payload = b'hostile'
udp = struct.pack('!HHHH', 40000, {port}, 8 + len(payload), 0) + payload
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton('{src}'), socket.inet_aton('{dst}'))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
src_mac = open('/sys/class/net/eth0/address').read().strip()
mac = lambda m: bytes(int(x, 16) for x in m.split(':'))
for _ in range(3):
    s.send(mac('{gw_mac}') + mac(src_mac) + b'\x08\x00' + ip + udp)
"#
    );
    let out = Command::new("nsenter")
        .args(["-t", pid, "-n", "python3", "-c", &script])
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "forging: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `sock` receives the forged datagram within a second.
fn received(sock: &std::net::UdpSocket) -> bool {
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(1)));
    let mut buf = [0u8; 64];
    matches!(sock.recv_from(&mut buf), Ok((n, _)) if &buf[..n] == b"hostile")
}

#[test]
fn a_container_cannot_reach_the_hosts_loopback_through_its_gateway() {
    let d = TestDaemon::start();
    let _g = Guard::new(&d);
    d.import_busybox();
    d.docker(&["run", "-d", "--name", "probe", "busybox", "sleep", "300"])
        .ok();
    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "probe"])
        .ok()
        .trim()
        .to_string();
    let cip = ip_of(&d, "probe");
    let gateway = d.subnet().replace(".0/24", ".1");
    let gw_mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", d.bridge()))
        .expect("bridge MAC")
        .trim()
        .to_string();
    // The forged frame does reach the host when addressed to the gateway itself ...
    let on_gw = std::net::UdpSocket::bind((gateway.as_str(), 0)).expect("bind gateway");
    let gw_port = on_gw.local_addr().expect("addr").port();
    forge_udp(&pid, &gw_mac, &cip, &gateway, gw_port);
    assert!(received(&on_gw), "a forged frame to the gateway arrives");
    // ... but not when addressed to a service listening on the host's 127.0.0.1 only.
    let on_lo = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
    let lo_port = on_lo.local_addr().expect("addr").port();
    forge_udp(&pid, &gw_mac, &cip, "127.0.0.1", lo_port);
    assert!(
        !received(&on_lo),
        "a container reached the host's 127.0.0.1"
    );
    assert_alive(&d);
}
