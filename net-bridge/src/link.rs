//! Link, address and route operations built on the netlink client: bridges, veth pairs with
//! the peer created directly inside the container's namespace, addresses and default routes.

use crate::nl::{self, Msg, Socket};
use std::ffi::CString;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The interface index of `name` in the calling thread's namespace, if it exists.
pub fn index_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// Creates bridge `name` (up, with `mtu`); an existing one is brought up instead.
pub fn ensure_bridge(sock: &mut Socket, name: &str, mtu: u32) -> io::Result<u32> {
    if index_of(name).is_none() {
        let mut m = Msg::new(nl::RTM_NEWLINK, nl::NLM_F_CREATE | nl::NLM_F_EXCL);
        m.ifinfo(0, nl::IFF_UP, nl::IFF_UP)
            .attr_str(nl::IFLA_IFNAME, name)
            .attr_u32(nl::IFLA_MTU, mtu);
        let li = m.begin(nl::IFLA_LINKINFO);
        m.attr_str(nl::IFLA_INFO_KIND, "bridge");
        m.end(li);
        match sock.request(&mut m) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    let idx = index_of(name).ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("bridge {name} vanished"))
    })?;
    set_up(sock, idx)?;
    Ok(idx)
}

/// Sets link `index` administratively up.
pub fn set_up(sock: &mut Socket, index: u32) -> io::Result<()> {
    let mut m = Msg::new(nl::RTM_NEWLINK, 0);
    m.ifinfo(index as i32, nl::IFF_UP, nl::IFF_UP);
    sock.request(&mut m)
}

/// Adds `ip/prefix` to link `index`; an address already there is fine.
pub fn add_addr(sock: &mut Socket, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
    add_addr_raw(sock, index, libc::AF_INET, &ip.octets(), prefix, 0)
}

/// Adds IPv6 `ip/prefix` to link `index`, usable at once (no duplicate address detection:
/// IPAM hands each address out once, as dockerd's `nodad`); one already there is fine.
pub fn add_addr6(sock: &mut Socket, index: u32, ip: Ipv6Addr, prefix: u8) -> io::Result<()> {
    add_addr_raw(
        sock,
        index,
        libc::AF_INET6,
        &ip.octets(),
        prefix,
        IFA_F_NODAD,
    )
}

/// `IFA_F_NODAD` of `ifaddrmsg.ifa_flags`.
const IFA_F_NODAD: u8 = 0x02;

fn add_addr_raw(
    sock: &mut Socket,
    index: u32,
    family: i32,
    addr: &[u8],
    prefix: u8,
    flags: u8,
) -> io::Result<()> {
    let mut m = Msg::new(nl::RTM_NEWADDR, nl::NLM_F_CREATE | nl::NLM_F_EXCL);
    // ifaddrmsg: family, prefix length, flags, scope (universe), index.
    let mut h = [0u8; 8];
    h[0] = family as u8;
    h[1] = prefix;
    h[2] = flags;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    m.raw(&h)
        .attr(nl::IFA_LOCAL, addr)
        .attr(nl::IFA_ADDRESS, addr);
    match sock.request(&mut m) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// Adds the default route via `gw` out of link `index`.
pub fn add_default_route(sock: &mut Socket, index: u32, gw: Ipv4Addr) -> io::Result<()> {
    add_default_route_raw(sock, index, libc::AF_INET, &gw.octets())
}

/// Adds the IPv6 default route via `gw` out of link `index`.
pub fn add_default_route6(sock: &mut Socket, index: u32, gw: Ipv6Addr) -> io::Result<()> {
    add_default_route_raw(sock, index, libc::AF_INET6, &gw.octets())
}

fn add_default_route_raw(sock: &mut Socket, index: u32, family: i32, gw: &[u8]) -> io::Result<()> {
    let mut m = Msg::new(nl::RTM_NEWROUTE, nl::NLM_F_CREATE | nl::NLM_F_EXCL);
    // rtmsg: family, dst_len, src_len, tos, table(main), protocol(boot), scope(universe),
    // type(unicast), flags.
    let h = [family as u8, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0];
    m.raw(&h)
        .attr(nl::RTA_GATEWAY, gw)
        .attr_u32(nl::RTA_OIF, index);
    sock.request(&mut m)
}

/// What a veth pair looks like when created.
#[derive(Debug)]
pub struct VethSpec<'a> {
    /// The host side's name.
    pub host: &'a str,
    /// The bridge to enslave the host side to.
    pub master: u32,
    /// The peer's name inside the namespace.
    pub peer: &'a str,
    /// The peer's MAC address.
    pub peer_mac: [u8; 6],
    /// MTU of both sides.
    pub mtu: u32,
}

/// Creates a veth pair in one request: the host side up and enslaved to the bridge, the peer
/// (down, with its MAC) directly in the namespace `netns`.
pub fn create_veth(
    sock: &mut Socket,
    spec: &VethSpec<'_>,
    netns: BorrowedFd<'_>,
) -> io::Result<()> {
    let mut m = Msg::new(nl::RTM_NEWLINK, nl::NLM_F_CREATE | nl::NLM_F_EXCL);
    m.ifinfo(0, nl::IFF_UP, nl::IFF_UP)
        .attr_str(nl::IFLA_IFNAME, spec.host)
        .attr_u32(nl::IFLA_MTU, spec.mtu)
        .attr_u32(nl::IFLA_MASTER, spec.master);
    let li = m.begin(nl::IFLA_LINKINFO);
    m.attr_str(nl::IFLA_INFO_KIND, "veth");
    let data = m.begin(nl::IFLA_INFO_DATA);
    let peer = m.begin(nl::VETH_INFO_PEER);
    // The peer cannot be brought up inside this request (veth_open refuses with ENOTCONN until
    // both ends exist); it is set up from inside the namespace afterwards.
    m.ifinfo(0, 0, 0)
        .attr_str(nl::IFLA_IFNAME, spec.peer)
        .attr_u32(nl::IFLA_MTU, spec.mtu)
        .attr(nl::IFLA_ADDRESS, &spec.peer_mac)
        .attr_u32(nl::IFLA_NET_NS_FD, netns.as_raw_fd() as u32);
    m.end(peer);
    m.end(data);
    m.end(li);
    sock.request(&mut m)
}

/// Deletes link `name`; a missing link is not an error.
pub fn delete(sock: &mut Socket, name: &str) -> io::Result<()> {
    let mut m = Msg::new(nl::RTM_DELLINK, 0);
    m.ifinfo(0, 0, 0).attr_str(nl::IFLA_IFNAME, name);
    delete_request(sock, m)
}

/// Deletes the link with interface index `index`; a missing link is not an error.
pub fn delete_index(sock: &mut Socket, index: u32) -> io::Result<()> {
    let mut m = Msg::new(nl::RTM_DELLINK, 0);
    m.ifinfo(index as i32, 0, 0);
    delete_request(sock, m)
}

fn delete_request(sock: &mut Socket, mut m: Msg) -> io::Result<()> {
    match sock.request(&mut m) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENOENT)) => Ok(()),
        r => r,
    }
}

/// Writes a sysctl-style file under /proc/sys or /sys.
pub fn write_knob(path: &str, value: &str) -> io::Result<()> {
    std::fs::write(path, value)
}

/// The names of the ports enslaved to bridge `name`.
pub fn bridge_ports(name: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{name}/brif"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}
