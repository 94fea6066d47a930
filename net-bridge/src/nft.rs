//! The driver's nftables table: rendered whole from the driver's state when networks change
//! (one atomic `nft -f -` transaction), with published ports kept in verdict maps so that a
//! container's ports are added and removed as map elements — a cheap, handle-free update.

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

/// Renders the whole table `table` for `nets`.
pub fn render(table: &str, nets: &[&NetState]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
    );
    let entries = dnats(nets);
    for proto in ["tcp", "udp"] {
        for (scope, ty) in [("any", "inet_service"), ("ip", "ipv4_addr . inet_service")] {
            let name = format!("{proto}_{scope}");
            let _ = writeln!(
                s,
                "  map {name} {{\n    type {ty} : ipv4_addr . inet_service"
            );
            let elems: Vec<String> = entries
                .iter()
                .filter(|d| d.map() == name)
                .map(Dnat::element)
                .collect();
            if !elems.is_empty() {
                let _ = writeln!(s, "    elements = {{ {} }}", elems.join(", "));
            }
            s.push_str("  }\n");
        }
    }
    s.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n",
    );
    s.push_str(
        "  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n",
    );
    s.push_str("  chain ports {\n");
    for proto in ["tcp", "udp"] {
        let _ = writeln!(s, "    dnat ip to {proto} dport map @{proto}_any");
        let _ = writeln!(s, "    dnat ip to ip daddr . {proto} dport map @{proto}_ip");
    }
    s.push_str("  }\n");
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in nets {
        let (br, sub, id) = (&n.bridge, &n.subnet, &n.spec.id);
        if !n.spec.internal {
            let _ = writeln!(
                s,
                "    ip saddr {sub} oifname != \"{br}\" masquerade comment \"net {id}\""
            );
        }
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade comment \"net {id} localhost\""
        );
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ct status dnat ip saddr {sub} masquerade comment \"net {id} hairpin\""
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    for n in nets {
        let (br, id) = (&n.bridge, &n.spec.id);
        if n.spec.internal {
            let _ = writeln!(
                s,
                "    iifname \"{br}\" oifname != \"{br}\" drop comment \"net {id} internal\""
            );
            let _ = writeln!(
                s,
                "    oifname \"{br}\" iifname != \"{br}\" drop comment \"net {id} internal\""
            );
        }
        let others: Vec<String> = nets
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| format!("\"{}\"", o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "    oifname \"{br}\" iifname {{ {} }} drop comment \"net {id} isolation\"",
                others.join(", ")
            );
        }
    }
    s.push_str("  }\n}\n");
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

/// Deletes table `table` if it exists.
pub fn delete_table(table: &str) -> DriverResult<()> {
    apply(&format!("table ip {table} {{}}\ndelete table ip {table}\n"))
}
