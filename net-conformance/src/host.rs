//! The suite's view of the kernel: network namespaces it makes (`ip netns add`, deleted on
//! drop), what `ip -j` shows inside them (addresses, routes, links), TCP between two of
//! them, and what the host shows (`ip`, `nft`, `iptables-save`) for the leftover check.

use berth_core::network::{Cidr, Route};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Runs a command, returning (success, stdout, stderr).
pub fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    match Command::new(program).args(args).output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (false, String::new(), format!("{program}: {e}")),
    }
}

/// A network namespace the suite made; deleted on drop.
pub struct Netns {
    /// Its name under `/run/netns`.
    pub name: String,
}

impl Netns {
    /// Makes a fresh namespace with a name unique to this process.
    pub fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("berthconf-{}-{n}", std::process::id());
        let _ = run("ip", &["netns", "del", &name]);
        let (ok, _, err) = run("ip", &["netns", "add", &name]);
        assert!(ok, "ip netns add {name}: {err}");
        let (ok, _, err) = run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        assert!(ok, "lo up in {name}: {err}");
        Netns { name }
    }

    /// The path a driver is given (`EndpointSpec::netns_path`).
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `ip -j ARGS` inside the namespace, parsed.
    fn ip_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["-n", self.name.as_str(), "-j"];
        all.extend_from_slice(args);
        let (ok, out, err) = run("ip", &all);
        assert!(ok, "ip {all:?}: {err}");
        serde_json::from_str(&out).unwrap_or_default()
    }

    /// The names of the links inside.
    pub fn links(&self) -> BTreeSet<String> {
        self.ip_json(&["link", "show"])
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect()
    }

    /// The MAC address of `ifname`.
    pub fn mac(&self, ifname: &str) -> String {
        self.ip_json(&["link", "show", "dev", ifname])
            .first()
            .and_then(|l| l["address"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The global addresses on `ifname` (IPv6 link-local ones left out).
    pub fn addrs(&self, ifname: &str) -> BTreeSet<Cidr> {
        let mut out = BTreeSet::new();
        for l in self.ip_json(&["addr", "show", "dev", ifname]) {
            for a in l["addr_info"].as_array().into_iter().flatten() {
                if a["scope"] != "global" {
                    continue;
                }
                let addr = a["local"].as_str().and_then(|s| s.parse::<IpAddr>().ok());
                let prefix = a["prefixlen"].as_u64().and_then(|p| u8::try_from(p).ok());
                if let (Some(addr), Some(prefix)) = (addr, prefix) {
                    if let Ok(c) = Cidr::new(addr, prefix) {
                        out.insert(c);
                    }
                }
            }
        }
        out
    }

    /// The routes through `ifname` a driver installed: the main table of both families,
    /// without the ones the kernel adds itself (connected subnets, link-local, multicast).
    pub fn routes(&self, ifname: &str) -> BTreeSet<Route> {
        let mut out = BTreeSet::new();
        for family in ["-4", "-6"] {
            for r in self.ip_json(&[family, "route", "show", "dev", ifname]) {
                if r["protocol"] == "kernel" || r["type"] == "multicast" {
                    continue;
                }
                let v6 = family == "-6";
                let dst = match r["dst"].as_str() {
                    Some("default") | None => Some(Cidr::default_route(v6)),
                    Some(d) if d.contains('/') => d.parse().ok(),
                    Some(d) => d
                        .parse::<IpAddr>()
                        .ok()
                        .and_then(|a| Cidr::new(a, if v6 { 128 } else { 32 }).ok()),
                };
                let Some(destination) = dst else { continue };
                let next_hop = r["gateway"].as_str().and_then(|g| g.parse().ok());
                out.insert(Route {
                    destination,
                    next_hop,
                });
            }
        }
        out
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn within<T: Send>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> std::io::Result<T> {
        let ns = std::fs::File::open(self.path())?;
        berth_core::netns::run_in(&ns, f)
    }
}

impl Default for Netns {
    fn default() -> Self {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Whether a TCP connection from `from` reaches a listener `to` opens on `addr` (and a
/// few bytes cross it).
///
/// The bind is retried for a few seconds: a fresh IPv6 address is unusable until duplicate
/// address detection is over.
pub fn tcp_reaches(from: &Netns, to: &Netns, addr: IpAddr) -> Result<(), String> {
    let mut tries = 0;
    let listener = loop {
        match to.within(|| TcpListener::bind(SocketAddr::new(addr, 0))) {
            Ok(l) => break l,
            Err(e) if tries < 50 => {
                let _ = e;
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("listening on {addr}: {e}")),
        }
    };
    let target = listener.local_addr().map_err(|e| e.to_string())?;
    let mut client = from
        .within(|| TcpStream::connect_timeout(&target, Duration::from_secs(5)))
        .map_err(|e| format!("connect {target}: {e}"))?;
    client
        .write_all(b"berth")
        .map_err(|e| format!("write: {e}"))?;
    let (mut server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 5];
    server
        .read_exact(&mut buf)
        .map_err(|e| format!("read: {e}"))?;
    if &buf != b"berth" {
        return Err(format!("garbled bytes {buf:?}"));
    }
    Ok(())
}

/// The host's lines (links, addresses, routes, nftables rules, iptables rules) that name
/// any of `marks`.
pub fn traces(marks: &[String]) -> Vec<String> {
    if marks.is_empty() {
        return Vec::new();
    }
    let sources: [(&str, &[&str]); 5] = [
        ("ip", &["-o", "link", "show"]),
        ("ip", &["-o", "addr", "show"]),
        ("ip", &["route", "show"]),
        ("nft", &["list", "ruleset"]),
        ("iptables-save", &[]),
    ];
    let mut out = Vec::new();
    for (program, args) in sources {
        let (_, text, _) = run(program, args);
        for line in text.lines() {
            if marks.iter().any(|m| line.contains(m.as_str())) {
                out.push(format!("{program} {}: {}", args.join(" "), line.trim()));
            }
        }
    }
    out
}
