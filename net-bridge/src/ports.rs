//! Host port reservation: every published port is held by a bound (not listening) socket, so
//! the kernel itself refuses a port another process — or another container — already uses,
//! and a port chosen at random is known to be free. Traffic never reaches these sockets: the
//! DNAT rules rewrite it first.

use berth_core::network::PortBinding;
use berth_core::{DriverError, DriverResult};
use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd};

/// A held reservation; dropping it releases the port.
#[derive(Debug)]
pub struct Reservation {
    _fd: OwnedFd,
}

/// The host address of a binding (`""` means every address).
pub fn host_addr(b: &PortBinding) -> DriverResult<Ipv4Addr> {
    if b.host_ip.is_empty() {
        return Ok(Ipv4Addr::UNSPECIFIED);
    }
    b.host_ip.parse().map_err(|_| {
        DriverError::InvalidInput(format!(
            "invalid host IP {:?} for published port (only IPv4 is supported)",
            b.host_ip
        ))
    })
}

fn bind(ip: Ipv4Addr, proto: &str, port: u16) -> std::io::Result<OwnedFd> {
    let ty = if proto == "udp" {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    };
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: addr is a valid sockaddr_in and the length matches it.
    let rc = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &addr as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|x| x.parse::<u16>());
            match (it.next(), it.next()) {
                (Some(Ok(a)), Some(Ok(b))) if a <= b => Some((a, b)),
                _ => None,
            }
        })
        .unwrap_or((32768, 60999))
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: b is a valid writable 4-byte buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 4, 0) };
    if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        std::process::id() ^ 0x9e37_79b9
    }
}

/// Reserves the host port of `b` (choosing one from the ephemeral range when it is 0) and
/// returns the binding with the port filled in, plus the reservation to keep.
pub fn reserve(b: &PortBinding) -> DriverResult<(PortBinding, Reservation)> {
    if !matches!(b.proto.as_str(), "tcp" | "udp") {
        return Err(DriverError::Unsupported(format!(
            "publishing {} ports is not supported",
            b.proto
        )));
    }
    let ip = host_addr(b)?;
    let done = |port: u16, fd: OwnedFd| {
        let mut out = b.clone();
        out.host_port = port;
        if out.host_ip.is_empty() {
            out.host_ip = "0.0.0.0".into();
        }
        (out, Reservation { _fd: fd })
    };
    if b.host_port != 0 {
        return match bind(ip, &b.proto, b.host_port) {
            Ok(fd) => Ok(done(b.host_port, fd)),
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Err(in_use(ip, b.host_port)),
            Err(e) => Err(DriverError::io(format!("Bind for {ip}:{}", b.host_port), e)),
        };
    }
    let (lo, hi) = ephemeral_range();
    let span = u32::from(hi - lo) + 1;
    let start = random_u32() % span;
    for i in 0..span.min(4096) {
        let port = (u32::from(lo) + (start + i) % span) as u16;
        if let Ok(fd) = bind(ip, &b.proto, port) {
            return Ok(done(port, fd));
        }
    }
    Err(DriverError::Conflict(
        "no free port in the ephemeral port range".into(),
    ))
}

/// Docker's error for a host port that is taken.
pub fn in_use(ip: Ipv4Addr, port: u16) -> DriverError {
    DriverError::Conflict(format!(
        "Bind for {ip}:{port} failed: port is already allocated"
    ))
}
