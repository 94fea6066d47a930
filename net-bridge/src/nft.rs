//! The driver's nftables table: rendered whole from the driver's state when networks change
//! (one atomic `nft -f -` transaction), with published ports kept in verdict maps so that a
//! container's ports are added and removed as map elements — a cheap, handle-free update.
//! The table itself is never deleted: rendering replaces berth's own chains and maps inside
//! it, so the operators' chain (`berth-user`, see `filter`) and its rules stay.

use crate::filter;
use crate::state::NetState;
use berth_core::{DriverError, DriverResult};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

/// One DNAT entry: host address (None = any), protocol, host port → container address, port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    /// The host address, `None` for every local address.
    pub host_ip: Option<String>,
    /// `tcp` or `udp`.
    pub proto: String,
    /// The published port.
    pub host_port: u16,
    /// The container's address.
    pub ip: String,
    /// The port inside the container.
    pub port: u16,
}

impl Dnat {
    fn map(&self) -> String {
        let scope = if self.host_ip.is_some() { "ip" } else { "any" };
        format!("{}_{scope}", self.proto)
    }

    fn key(&self) -> String {
        match &self.host_ip {
            Some(ip) => format!("{ip} . {}", self.host_port),
            None => self.host_port.to_string(),
        }
    }

    fn element(&self) -> String {
        format!("{} : {} . {}", self.key(), self.ip, self.port)
    }
}

/// The DNAT entries of every endpoint of `nets`.
pub fn dnats(nets: &[&NetState]) -> Vec<Dnat> {
    let mut out = Vec::new();
    for n in nets {
        for lease in n.endpoints.values() {
            out.extend(lease_dnats(&lease.ip, &lease.ports));
        }
    }
    out
}

/// The DNAT entries of one endpoint.
pub fn lease_dnats(ip: &str, ports: &[berth_core::network::PortBinding]) -> Vec<Dnat> {
    ports
        .iter()
        .map(|p| Dnat {
            host_ip: (!p.host_ip.is_empty() && p.host_ip != "0.0.0.0").then(|| p.host_ip.clone()),
            proto: p.proto.clone(),
            host_port: p.host_port,
            ip: ip.to_string(),
            port: p.container_port,
        })
        .collect()
}

/// The table's base chains and their hook declarations (kept identical across versions:
/// `add chain` on an existing base chain must not change its hook).
const BASE_CHAINS: &[(&str, &str)] = &[
    (
        "prerouting",
        "type nat hook prerouting priority dstnat; policy accept;",
    ),
    (
        "output",
        "type nat hook output priority -100; policy accept;",
    ),
    (
        "postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
    ),
    (
        "forward",
        "type filter hook forward priority filter; policy accept;",
    ),
    (
        "prerouting_raw",
        "type filter hook prerouting priority raw; policy accept;",
    ),
];

/// Renders the whole table `table` for `nets` as one transaction that replaces berth's own
/// chains and maps in place — never the table itself, so the operators' chain
/// ([`filter::USER_CHAIN`]) keeps its rules. `default_icc` is the daemon's `icc`.
pub fn render(table: &str, nets: &[&NetState], default_icc: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "table ip {table} {{}}");
    let _ = writeln!(s, "add chain ip {table} {}", filter::USER_CHAIN);
    let entries = dnats(nets);
    let mut elements = String::new();
    for proto in ["tcp", "udp"] {
        for (scope, ty) in [("any", "inet_service"), ("ip", "ipv4_addr . inet_service")] {
            let name = format!("{proto}_{scope}");
            let _ = writeln!(
                s,
                "add map ip {table} {name} {{ type {ty} : ipv4_addr . inet_service; }}\nflush map ip {table} {name}"
            );
            let elems: Vec<String> = entries
                .iter()
                .filter(|d| d.map() == name)
                .map(Dnat::element)
                .collect();
            if !elems.is_empty() {
                let _ = writeln!(
                    elements,
                    "add element ip {table} {name} {{ {} }}",
                    elems.join(", ")
                );
            }
        }
    }
    for (chain, hook) in BASE_CHAINS {
        let _ = writeln!(s, "add chain ip {table} {chain} {{ {hook} }}");
    }
    let _ = writeln!(s, "add chain ip {table} ports");
    let mut chains: Vec<(&str, Vec<String>)> = vec![
        ("prerouting", vec!["fib daddr type local jump ports".into()]),
        ("output", vec!["fib daddr type local jump ports".into()]),
        ("ports", Vec::new()),
        ("postrouting", Vec::new()),
        ("forward", filter::forward_rules(nets, default_icc)),
        ("prerouting_raw", filter::raw_rules()),
    ];
    for proto in ["tcp", "udp"] {
        chains[2]
            .1
            .push(format!("dnat ip to {proto} dport map @{proto}_any"));
        chains[2].1.push(format!(
            "dnat ip to ip daddr . {proto} dport map @{proto}_ip"
        ));
    }
    for n in nets {
        let (br, sub, id) = (&n.bridge, &n.subnet, &n.spec.id);
        let post = &mut chains[3].1;
        if !n.spec.internal {
            post.push(format!(
                "ip saddr {sub} oifname != \"{br}\" masquerade comment \"net {id}\""
            ));
        }
        post.push(format!(
            "oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade comment \"net {id} localhost\""
        ));
        post.push(format!(
            "oifname \"{br}\" ct status dnat ip saddr {sub} masquerade comment \"net {id} hairpin\""
        ));
    }
    for (chain, _) in &chains {
        let _ = writeln!(s, "flush chain ip {table} {chain}");
    }
    s.push_str(&elements);
    for (chain, rules) in &chains {
        for r in rules {
            let _ = writeln!(s, "add rule ip {table} {chain} {r}");
        }
    }
    s
}

/// The commands that add (or delete) one endpoint's port entries.
pub fn elements(table: &str, entries: &[Dnat], add: bool) -> String {
    let mut s = String::new();
    for d in entries {
        if add {
            let _ = writeln!(
                s,
                "add element ip {table} {} {{ {} }}",
                d.map(),
                d.element()
            );
        } else {
            let _ = writeln!(s, "delete element ip {table} {} {{ {} }}", d.map(), d.key());
        }
    }
    s
}

/// Runs `nft -f -` with `script`.
pub fn apply(script: &str) -> DriverResult<()> {
    if script.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DriverError::io("running nft", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| DriverError::io("writing to nft", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| DriverError::io("running nft", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DriverError::Io(format!(
            "nft failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Removes berth's rules when it has no network left: the whole table when the operators'
/// chain is empty (nothing of berth's stays in the kernel), else only berth's own rules.
pub fn retire(table: &str) -> DriverResult<()> {
    let listing = Command::new("nft")
        .args(["list", "chain", "ip", table, filter::USER_CHAIN])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| DriverError::io("running nft", e))?;
    let text = String::from_utf8_lossy(&listing.stdout);
    if has_rules(&text) {
        apply(&render(table, &[], true))
    } else {
        apply(&format!("table ip {table} {{}}\ndelete table ip {table}\n"))
    }
}

/// Whether an `nft list chain` listing shows any rule.
pub fn has_rules(listing: &str) -> bool {
    listing
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with("table ") && !l.starts_with("chain ") && l != "}")
}
