//! The `cri` section of `daemon.json` and the `--cri-socket` flag: whether berthd serves the
//! Kubernetes CRI, on which socket, where the CNI configuration and plugins are, and where the
//! streaming server (exec/attach/port-forward) listens.

use anyhow::{bail, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `"cri": {...}` as written (unknown keys are refused).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CriFile {
    pub enabled: Option<bool>,
    pub socket: Option<String>,
    pub cni_conf_dir: Option<PathBuf>,
    pub cni_bin_dir: Option<PathBuf>,
    pub streaming_address: Option<String>,
}

/// The effective CRI settings.
#[derive(Debug, Clone)]
pub struct CriConfig {
    /// Serve the CRI at all (default on).
    pub enabled: bool,
    /// The socket (default `<exec-root>/cri.sock`, `/run/berth/cri.sock`).
    pub socket: PathBuf,
    /// CNI network configurations (default `/etc/cni/net.d`).
    pub cni_conf_dir: PathBuf,
    /// CNI plugin binaries (default `/usr/lib/cni`, where Debian's
    /// containernetworking-plugins puts them).
    pub cni_bin_dir: PathBuf,
    /// The streaming server's address (default `127.0.0.1:0`, a free port on loopback).
    pub streaming_address: String,
}

/// A socket given as `unix:///path` or `/path`.
fn socket_path(s: &str) -> Result<PathBuf> {
    let p = s.strip_prefix("unix://").unwrap_or(s);
    if !p.starts_with('/') {
        bail!("invalid CRI socket {s:?}: use unix:///absolute/path");
    }
    Ok(PathBuf::from(p))
}

/// A CNI folder as given: absolute (berthd's working folder means nothing to an admin).
fn cni_dir(key: &str, given: Option<PathBuf>, default: &str) -> Result<PathBuf> {
    let p = given.unwrap_or_else(|| PathBuf::from(default));
    if !p.is_absolute() {
        bail!("invalid cri.{key} {}: use an absolute path", p.display());
    }
    Ok(p)
}

/// Notes the flag and the file both naming the socket: a conflict, as dockerd's flags and file.
pub fn conflicts(flag_socket: Option<&str>, file: Option<&CriFile>, out: &mut Vec<String>) {
    if let (Some(a), Some(b)) = (flag_socket, file.and_then(|f| f.socket.as_deref())) {
        out.push(format!("cri-socket: (from flag: {a}, from file: {b})"));
    }
}

/// Merges the flag and the file's section (checked by [`conflicts`] first).
pub fn settle(
    flag_socket: Option<String>,
    file: Option<CriFile>,
    exec_root: &Path,
) -> Result<CriConfig> {
    let f = file.unwrap_or_default();
    let socket = match flag_socket.or(f.socket) {
        Some(s) => socket_path(&s)?,
        None => exec_root.join("cri.sock"),
    };
    Ok(CriConfig {
        enabled: f.enabled.unwrap_or(true),
        socket,
        cni_conf_dir: cni_dir("cni-conf-dir", f.cni_conf_dir, "/etc/cni/net.d")?,
        cni_bin_dir: cni_dir("cni-bin-dir", f.cni_bin_dir, "/usr/lib/cni")?,
        streaming_address: f
            .streaming_address
            .unwrap_or_else(|| "127.0.0.1:0".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_defaults_to_the_exec_root_and_conflicts_are_caught() {
        let mut c = Vec::new();
        let cfg = settle(None, None, Path::new("/run/x")).expect("settle");
        assert_eq!(cfg.socket, PathBuf::from("/run/x/cri.sock"));
        assert!(cfg.enabled);
        let file = CriFile {
            socket: Some("unix:///a.sock".into()),
            enabled: Some(false),
            ..Default::default()
        };
        let cfg = settle(None, Some(file.clone()), Path::new("/r")).expect("settle");
        assert_eq!(cfg.socket, PathBuf::from("/a.sock"));
        assert!(!cfg.enabled);
        conflicts(None, Some(&file), &mut c);
        assert!(c.is_empty());
        conflicts(Some("/b.sock"), Some(&file), &mut c);
        assert_eq!(c.len(), 1);
        assert!(settle(Some("rel.sock".into()), None, Path::new("/r")).is_err());
        assert_eq!(cfg.cni_conf_dir, PathBuf::from("/etc/cni/net.d"));
        assert_eq!(cfg.cni_bin_dir, PathBuf::from("/usr/lib/cni"));
        let rel = CriFile {
            cni_bin_dir: Some("plugins".into()),
            ..Default::default()
        };
        assert!(settle(None, Some(rel), Path::new("/r")).is_err());
    }
}
