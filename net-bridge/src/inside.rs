//! Programming the container's side of an endpoint, from a thread inside its network
//! namespace: `lo` up, the interface up with its IPv4 address (and IPv6 address, with IPv6
//! switched on for that interface only), and the default routes via the gateways.

use crate::link;
use crate::nl::Socket;
use berth_core::netns;
use berth_core::{DriverError, DriverResult};
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};

/// What goes onto the interface inside.
pub(crate) struct Inside<'a> {
    /// The interface's name in the namespace.
    pub ifname: &'a str,
    /// The IPv4 address and prefix length.
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// The IPv4 default route's next hop (`None`: no default route, `--internal`).
    pub gateway: Option<Ipv4Addr>,
    /// The IPv6 address and prefix length, if the network has an IPv6 subnet.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// The IPv6 default route's next hop.
    pub gateway6: Option<Ipv6Addr>,
}

fn ignore_exists(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// Programs the container side of an endpoint in namespace `ns` (at `path`, for messages).
pub(crate) fn configure(ns: &File, path: &str, cfg: &Inside<'_>) -> DriverResult<()> {
    let ifname = cfg.ifname;
    netns::run_in(ns, || {
        let mut sock = Socket::open()?;
        link::set_up(&mut sock, 1)?;
        let idx = link::index_of(ifname).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("{ifname} missing"))
        })?;
        if cfg.ip6.is_some() {
            // This thread is in the container's namespace: the knob is the container's.
            link::write_knob(
                &format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
                "0",
            )?;
        }
        link::set_up(&mut sock, idx)?;
        link::add_addr(&mut sock, idx, cfg.ip, cfg.prefix)?;
        if let Some(gw) = cfg.gateway {
            ignore_exists(link::add_default_route(&mut sock, idx, gw))?;
        }
        if let Some((ip6, prefix6)) = cfg.ip6 {
            link::add_addr6(&mut sock, idx, ip6, prefix6)?;
            if let Some(gw6) = cfg.gateway6 {
                ignore_exists(link::add_default_route6(&mut sock, idx, gw6))?;
            }
        }
        Ok(())
    })
    .map_err(|e| DriverError::io(format!("configuring {ifname} in {path}"), e))
}
