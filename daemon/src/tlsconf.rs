//! TLS settings of the TCP hosts (`--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`,
//! `--tlskey` and the same `daemon.json` keys), and the rule that keeps an unauthenticated
//! API off the network, as dockerd's: a TCP host that is not loopback needs `--tlsverify`
//! unless `--tls=false` or `--tlsverify=false` is given explicitly (a loopback host without
//! it only gets a warning). Checked while the configuration is merged, before anything is
//! bound or written.

use anyhow::{bail, Result};
use std::path::PathBuf;

/// Where the certificate files are looked for when no path is given.
pub const DEFAULT_CERT_DIR: &str = "/etc/berth";

/// TLS as given on the command line (each `None` when the flag is absent).
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

/// The effective TLS settings of the TCP listeners.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// TCP listeners speak TLS (`tls`, implied by `tlsverify`).
    pub enabled: bool,
    /// Clients must present a certificate signed by `ca`.
    pub verify: bool,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Warnings to log once logging is up (unencrypted TCP hosts).
    pub notes: Vec<String>,
}

/// Merges flags and file values (a key given both ways is a conflict, reported with
/// `conflicts` like the other keys).
pub fn merge(flags: TlsFlags, file: TlsFlags, conflicts: &mut Vec<String>) -> TlsFlags {
    fn pick<T: std::fmt::Debug>(
        name: &str,
        a: Option<T>,
        b: Option<T>,
        conflicts: &mut Vec<String>,
    ) -> Option<T> {
        if let (Some(x), Some(y)) = (&a, &b) {
            conflicts.push(format!("{name}: (from flag: {x:?}, from file: {y:?})"));
        }
        a.or(b)
    }
    TlsFlags {
        tls: pick("tls", flags.tls, file.tls, conflicts),
        tlsverify: pick("tlsverify", flags.tlsverify, file.tlsverify, conflicts),
        tlscacert: pick("tlscacert", flags.tlscacert, file.tlscacert, conflicts),
        tlscert: pick("tlscert", flags.tlscert, file.tlscert, conflicts),
        tlskey: pick("tlskey", flags.tlskey, file.tlskey, conflicts),
    }
}

/// Settles the TLS configuration for `hosts` (canonical `unix://` / `tcp://h:p` strings) and
/// refuses an unencrypted TCP host that is reachable from the network.
pub fn settle(t: TlsFlags, hosts: &[String]) -> Result<TlsConfig> {
    let verify = t.tlsverify.unwrap_or(false);
    let enabled = verify || t.tls.unwrap_or(false);
    let dir = PathBuf::from(DEFAULT_CERT_DIR);
    let mut cfg = TlsConfig {
        enabled,
        verify,
        ca: t.tlscacert.unwrap_or_else(|| dir.join("ca.pem")),
        cert: t.tlscert.unwrap_or_else(|| dir.join("cert.pem")),
        key: t.tlskey.unwrap_or_else(|| dir.join("key.pem")),
        notes: Vec::new(),
    };
    if verify {
        return Ok(cfg);
    }
    // Without client verification anyone who reaches the port is root on this host (with
    // `--tls` alone the channel is encrypted, but still unauthenticated). Saying so on purpose
    // (`--tls=false` or `--tlsverify=false`, or the same keys in daemon.json) accepts that.
    let explicit_off = t.tls == Some(false) || t.tlsverify == Some(false);
    let scheme = if enabled { "https" } else { "http" };
    for h in hosts {
        let Some(addr) = h.strip_prefix("tcp://") else {
            continue;
        };
        if is_loopback(addr) || explicit_off {
            cfg.notes.push(format!(
                "binding to {h} without --tlsverify is insecure: the API at {scheme}://{addr} gives root access on this machine to everyone who can reach it (even on localhost, scripts run in a browser can)"
            ));
        } else {
            bail!(
                "refusing to listen on {h}: binding to an IP address without --tlsverify gives root access on this machine to everyone who has access to your network; generate TLS certificates with client validation (--tlsverify, --tlscacert, --tlscert, --tlskey), or override this by explicitly specifying '--tls=false' or '--tlsverify=false'"
            );
        }
    }
    Ok(cfg)
}

/// Whether `host:port` names a loopback address (`127.0.0.0/8`, `::1`, `localhost`, or a
/// name that resolves to loopback addresses only; one that does not resolve is not).
fn is_loopback(addr: &str) -> bool {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h,
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    use std::net::ToSocketAddrs;
    match (host, 0).to_socket_addrs() {
        Ok(list) => {
            let list: Vec<_> = list.collect();
            !list.is_empty() && list.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(h: &str) -> Vec<String> {
        vec!["unix:///x.sock".into(), h.into()]
    }

    #[test]
    fn exposure_rules() {
        let off = TlsFlags::default();
        assert!(settle(off.clone(), &hosts("tcp://127.0.0.1:2375")).is_ok());
        assert!(settle(off.clone(), &hosts("tcp://[::1]:2375")).is_ok());
        assert!(settle(off.clone(), &hosts("tcp://localhost:2375")).is_ok());
        let e = settle(off.clone(), &hosts("tcp://0.0.0.0:2375")).expect_err("refused");
        assert!(e.to_string().contains("'--tls=false'"), "{e}");
        assert!(settle(off, &hosts("tcp://10.1.2.3:2375")).is_err());
        let explicit = TlsFlags {
            tls: Some(false),
            ..Default::default()
        };
        let c = settle(explicit, &hosts("tcp://0.0.0.0:2375")).expect("explicit");
        assert_eq!(c.notes.len(), 1);
        let no_verify = TlsFlags {
            tlsverify: Some(false),
            ..Default::default()
        };
        assert!(settle(no_verify, &hosts("tcp://0.0.0.0:2375")).is_ok());
        // Encrypted but unauthenticated is refused too.
        let tls_only = TlsFlags {
            tls: Some(true),
            ..Default::default()
        };
        assert!(settle(tls_only, &hosts("tcp://0.0.0.0:2376")).is_err());
        let verify = TlsFlags {
            tlsverify: Some(true),
            ..Default::default()
        };
        let c = settle(verify, &hosts("tcp://0.0.0.0:2376")).expect("tls");
        assert!(c.enabled && c.verify);
        assert_eq!(c.ca, PathBuf::from("/etc/berth/ca.pem"));
    }

    #[test]
    fn flag_and_file_conflict() {
        let mut conflicts = Vec::new();
        let f = TlsFlags {
            tls: Some(true),
            ..Default::default()
        };
        let merged = merge(f.clone(), f, &mut conflicts);
        assert_eq!(merged.tls, Some(true));
        assert_eq!(conflicts.len(), 1);
    }
}
