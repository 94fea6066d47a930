//! Where a registry's API lives: scheme, host, mirrors — and which registries are insecure.
//!
//! As Docker: `docker.io` means Docker Hub (`registry-1.docker.io`), tried after any
//! `registry-mirrors`; a registry is *insecure* when its host is a loopback address or
//! `localhost`, or is listed (by name or CIDR) in `insecure-registries`. Insecure registries are
//! tried over HTTPS without certificate verification first, then over plain HTTP.

use std::net::IpAddr;

/// Docker Hub's API host.
pub const DOCKER_HUB_API: &str = "https://registry-1.docker.io";

/// An entry of `insecure-registries`: a host[:port] or a CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insecure {
    /// `myreg.example:5000`.
    Host(String),
    /// `10.0.0.0/8`.
    Cidr(IpAddr, u8),
}

impl Insecure {
    /// Parses one configuration entry (scheme prefixes are ignored, as Docker does).
    pub fn parse(s: &str) -> Insecure {
        let s = s
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        if let Some((ip, bits)) = s.split_once('/') {
            if let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
                return Insecure::Cidr(ip, bits);
            }
        }
        Insecure::Host(s.to_string())
    }

    fn matches(&self, host_port: &str, ip: Option<IpAddr>) -> bool {
        match self {
            Insecure::Host(h) => h == host_port || h == strip_port(host_port),
            Insecure::Cidr(net, bits) => ip.is_some_and(|ip| in_cidr(ip, *net, *bits)),
        }
    }
}

fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host_port,
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let bits = u32::from(bits.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits = u32::from(bits.min(128));
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Whether `host_port` (a reference's domain) is an insecure registry under `list`.
pub fn is_insecure(host_port: &str, list: &[Insecure]) -> bool {
    let host = strip_port(host_port);
    let ip = host.parse::<IpAddr>().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    list.iter().any(|i| i.matches(host_port, ip))
}

/// The API base URLs to try for `domain`, best first.
pub fn bases(domain: &str, insecure: &[Insecure], mirrors: &[String]) -> Vec<String> {
    if domain == "docker.io" {
        let mut v: Vec<String> = mirrors
            .iter()
            .map(|m| m.trim_end_matches('/').to_string())
            .collect();
        v.push(DOCKER_HUB_API.to_string());
        return v;
    }
    if is_insecure(domain, insecure) {
        vec![format!("https://{domain}"), format!("http://{domain}")]
    } else {
        vec![format!("https://{domain}")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_are_insecure() {
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("127.3.4.5", &[]));
        assert!(is_insecure("localhost:5000", &[]));
        assert!(!is_insecure("myreg.example:5000", &[]));
        assert!(is_insecure(
            "myreg.example:5000",
            &[Insecure::parse("myreg.example:5000")]
        ));
        assert!(is_insecure(
            "10.1.2.3:5000",
            &[Insecure::parse("10.0.0.0/8")]
        ));
        assert!(!is_insecure(
            "11.1.2.3:5000",
            &[Insecure::parse("10.0.0.0/8")]
        ));
        assert_eq!(
            bases("docker.io", &[], &["https://mirror.example/".into()])[0],
            "https://mirror.example"
        );
        assert_eq!(bases("127.0.0.1:5000", &[], &[]).len(), 2);
    }
}
