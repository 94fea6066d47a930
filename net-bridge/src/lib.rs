//! The bridge network driver plugin: bridge, veth, IPAM, NAT and published ports.
//!
//! # Design note
//!
//! * **Netlink, hand-rolled.** Links, addresses and routes are programmed over a
//!   `NETLINK_ROUTE` socket with a ~250-line synchronous client (`nl.rs`) instead of shelling out
//!   to `ip` or pulling in an async netlink stack: every request is one `send` and one ack.
//!   A container joins with one `RTM_NEWLINK` that creates the veth pair, enslaves the host side
//!   to the bridge, brings it up and creates the peer — already named `eth0`, with its MAC —
//!   directly inside the container's namespace (`IFLA_NET_NS_FD`); a short-lived thread that
//!   `setns`es into the namespace then sets `lo` up, adds the address and the default route.
//!   No process is spawned on this path unless ports are published.
//! * **nftables, own table.** `iptables -V` here says `nf_tables`, and Docker's engine on this
//!   host would program the same kernel tables through iptables-nft. berth keeps everything in
//!   its own table, `ip berth` (or `ip berth_<bridge>` when the default bridge is not `berth0`,
//!   so several daemons can coexist), which it renders whole from its state and swaps in with
//!   one atomic `nft -f -` transaction when networks change. Published ports live in four
//!   maps (`tcp_any`, `tcp_ip`, `udp_any`, `udp_ip`) used by `dnat ... map`, so publishing or
//!   withdrawing a container's ports is one `nft` call adding or deleting map elements, never
//!   a full rewrite, and nothing needs rule handles. Every rule carries a `net <id>` comment.
//!   Deleting the table removes everything berth ever put in the kernel's firewall.
//! * **Chains.** `prerouting`/`output` (nat) jump to `ports` for local destinations;
//!   `postrouting` masquerades each non-internal subnet leaving its bridge, traffic from
//!   127.0.0.0/8 entering a bridge (published ports reached through `127.0.0.1`: DNAT in
//!   `output` + `route_localnet=1` on the bridge — no proxy process, so it survives daemon
//!   restarts), and DNAT'ed traffic from a bridge back onto itself (hairpin; host-side veths of
//!   endpoints with ports get `hairpin_mode`); `forward` (filter) is Docker's `FORWARD`
//!   (see `filter.rs`): the operators' `berth-user` chain first, then isolation between berth
//!   bridges and of `--internal` networks, established traffic, DNAT'ed traffic (published
//!   ports), container-to-container on one bridge unless icc is off, traffic leaving a bridge,
//!   and a drop of anything else routed onto a bridge; `prerouting_raw` drops packets for
//!   127.0.0.0/8 arriving on any interface but `lo`. Rendering replaces berth's chains and
//!   maps inside the table, never the table or `berth-user`, so operators' rules outlive
//!   re-renders and restarts. Another firewall that drops forwarded traffic still wins.
//! * **Published ports** are reserved by binding (not listening) a socket per port: the kernel
//!   refuses ports used by anyone else, `0` picks a free one in the ephemeral range, and a taken
//!   port fails the whole join with Docker's `Bind for 0.0.0.0:P failed: port is already
//!   allocated` before anything is set up. Reservations are re-taken when a network is
//!   re-created at start-up. IPv4 only.
//! * **IPAM** is persistent: `<root>/bridge/<network-id>.json` holds the network's subnet,
//!   gateway, bridge and leases, written atomically (temp, fsync, rename) before the kernel is
//!   touched, so an address is never handed out twice; addresses are handed out round-robin.
//!   The default network uses `bip` if set; networks without a subnet take the first /24 of
//!   `default-address-pools` (default `10.250.0.0/16` in /24s — clear of Docker's
//!   `172.17.0.0/16` and of common LAN ranges) that overlaps neither another berth network nor
//!   a route on the host. Auxiliary addresses (`AuxiliaryAddresses`) are never handed out.
//! * **IPv6** (`ipam6.rs`, `inside.rs`): a network with an IPv6 subnet gets its gateway
//!   (`::1` unless given) on the bridge, and each endpoint the lowest free address (or its
//!   `--ip6`) with `nodad` and a default route via the gateway; IPv6 is switched on for the
//!   bridge and the container's interface only (`disable_ipv6=0`), no other host setting is
//!   touched. There is no IPv6 NAT (traffic leaving a bridge keeps its address) and no port
//!   published over IPv6; while an IPv6 network exists an `ip6` table of the same name holds
//!   the `forward` rules over the IPv6 bridges (`nft6.rs`), since the host may route IPv6
//!   between bridges.
//! * **Leave** deletes the host veth synchronously only while the container's namespace lives;
//!   when it is gone (exit), the pair is left to the kernel's namespace clean-up and a reaper
//!   thread deletes it by interface index (`reaper.rs`), off the path `docker run --rm` waits on.
//! * **Reconcile** deletes bridges (with their ports), state and rules of networks the daemon
//!   no longer has, and veths on kept bridges that no lease accounts for.
//!
//! Configuration (JSON from the daemon): `root` (state dir), `bridge` (default device,
//! `berth0`), `bip`, `default_address_pools` (`[{"base": CIDR, "size": N}]`), `table`
//! (optional override of the nftables table name), `icc` (the default network's
//! inter-container communication, default true; other networks use the option
//! `com.docker.network.bridge.enable_icc`).

mod driver;
mod endpoint;
mod filter;
mod inside;
pub mod ipam;
mod ipam6;
mod leases;
mod link;
mod nft;
mod nft6;
mod nl;
mod plugin;
mod ports;
mod reaper;
mod state;

pub use driver::{veth_name, BridgeDriver, Settings, OPT_BRIDGE_NAME};
pub use filter::{OPT_ENABLE_ICC, USER_CHAIN};

use berth_core::{DriverError, NetworkDriver};
use std::path::Path;

/// The default bridge device.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// The nftables table a daemon with default bridge `bridge` uses.
pub fn table_for(bridge: &str) -> String {
    if bridge == DEFAULT_BRIDGE {
        "berth".to_string()
    } else {
        let clean: String = bridge
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("berth_{clean}")
    }
}

/// Builds the driver from the daemon's configuration (see the module documentation).
pub fn new_driver(config: &serde_json::Value) -> Result<Box<dyn NetworkDriver>, DriverError> {
    Ok(Box::new(from_config(config)?))
}

/// Like [`new_driver`], returning the concrete type.
pub fn from_config(config: &serde_json::Value) -> Result<BridgeDriver, DriverError> {
    let root = config
        .get("root")
        .and_then(|v| v.as_str())
        .ok_or_else(|| DriverError::InvalidInput("bridge: configuration needs \"root\"".into()))?;
    let bridge = config
        .get("bridge")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_BRIDGE)
        .to_string();
    let bip = config
        .get("bip")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if let Some(b) = &bip {
        ipam::Subnet::parse(b)?;
    }
    let mut pools = Vec::new();
    if let Some(list) = config
        .get("default_address_pools")
        .and_then(|v| v.as_array())
    {
        for p in list {
            let base = p.get("base").and_then(|v| v.as_str()).ok_or_else(|| {
                DriverError::InvalidInput(format!("default-address-pools: missing base in {p}"))
            })?;
            let size = p.get("size").and_then(|v| v.as_u64()).ok_or_else(|| {
                DriverError::InvalidInput(format!("default-address-pools: missing size in {p}"))
            })?;
            let base = ipam::Subnet::parse(base)?;
            let size = u8::try_from(size)
                .ok()
                .filter(|s| *s >= base.prefix && *s <= 30)
                .ok_or_else(|| {
                    DriverError::InvalidInput(format!("default-address-pools: invalid size {size}"))
                })?;
            pools.push(ipam::Pool { base, size });
        }
    }
    if pools.is_empty() {
        pools = ipam::default_pools();
    }
    let table = config
        .get("table")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| table_for(&bridge));
    if table.is_empty()
        || !table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(DriverError::InvalidInput(format!(
            "invalid nftables table name {table:?}"
        )));
    }
    let settings = Settings {
        default_bridge: bridge,
        bip,
        pools,
        table,
        icc: config.get("icc").and_then(|v| v.as_bool()).unwrap_or(true),
    };
    BridgeDriver::new(Path::new(root), settings)
}
