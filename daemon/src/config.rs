//! berthd's configuration: `daemon.json` (Docker's keys where they exist, plus `plugins`)
//! merged with command-line flags, validated before anything touches the disk.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default config file.
pub const DEFAULT_CONFIG: &str = "/etc/berth/daemon.json";

/// `daemon.json` as written (unknown keys are refused).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Option<Vec<String>>,
    pub storage_driver: Option<String>,
    pub storage_opts: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    /// Mirrors of any registry, by registry host (berth's own key; see `images::mirrors`).
    pub registry_mirror_map: Option<BTreeMap<String, Vec<String>>>,
    /// The registry plugin's driver name (berth's own key; default `distribution`).
    pub registry_driver: Option<String>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub icc: Option<bool>,
    pub default_address_pools: Option<Vec<serde_json::Value>>,
    pub log_level: Option<String>,
    pub debug: Option<bool>,
    pub default_runtime: Option<String>,
    pub runtimes: Option<BTreeMap<String, RuntimeConfig>>,
    pub live_restore: Option<bool>,
    pub pidfile: Option<PathBuf>,
    pub log_driver: Option<String>,
    pub log_opts: Option<BTreeMap<String, String>>,
    pub max_layer_size: Option<u64>,
    pub init: Option<bool>,
    pub init_path: Option<PathBuf>,
    /// How many created containers berthd may prepare ahead of their `start` (berth's own
    /// key; default 4, 0 turns it off; see `containers::prestart`).
    pub prestart: Option<usize>,
    pub plugins: Option<PluginsConfig>,
    /// TLS of the TCP hosts (Docker's keys; see `tlsconf`).
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    /// Seconds a client has to send a request's headers (and to finish the TLS handshake)
    /// before its connection is closed (berth's own key; default 30).
    pub header_read_timeout: Option<u64>,
    /// The Kubernetes CRI (berth's own section; see `cri_glue::config`).
    pub cri: Option<crate::cri_glue::config::CriFile>,
}

/// An OCI runtime binary (`runtimes` in daemon.json).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuntimeConfig {
    pub path: String,
    #[serde(default)]
    pub runtime_args: Vec<String>,
}

/// The `plugins` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginsConfig {
    #[serde(default)]
    pub search_paths: Vec<PathBuf>,
    #[serde(default)]
    pub drivers: BTreeMap<String, PathBuf>,
}

/// The flags that can also be set in the file.
#[derive(Debug, Clone, Default)]
pub struct FlagConfig {
    pub hosts: Vec<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub storage_driver: Option<String>,
    pub pidfile: Option<PathBuf>,
    pub debug: bool,
    pub log_level: Option<String>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    /// `--icc`: inter-container communication on the default network.
    pub icc: Option<bool>,
    pub tls: crate::tlsconf::TlsFlags,
    /// `--cri-socket`.
    pub cri_socket: Option<String>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub hosts: Vec<String>,
    pub storage_driver: Option<String>,
    pub storage_opts: BTreeMap<String, String>,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    /// `registry-mirror-map`: mirrors by registry host.
    pub registry_mirror_map: BTreeMap<String, Vec<String>>,
    pub registry_driver: String,
    pub bridge: String,
    pub bip: Option<String>,
    /// `icc`: containers on the default network may talk to each other (default true).
    pub icc: bool,
    pub default_address_pools: Vec<serde_json::Value>,
    pub log_level: String,
    pub debug: bool,
    pub default_runtime: String,
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    pub live_restore: bool,
    pub pidfile: PathBuf,
    /// Default log driver for containers (`json-file` or `none`).
    pub log_driver: String,
    /// Default log options.
    pub log_opts: BTreeMap<String, String>,
    pub max_layer_size: u64,
    /// `init`: containers get `--init` unless they say otherwise.
    pub init: bool,
    /// `init-path`: the init binary for `--init` (default: `docker-init` or `tini-static`
    /// found on `PATH`).
    pub init_path: Option<PathBuf>,
    /// `prestart`: created containers prepared ahead of their start, at most.
    pub prestart: usize,
    pub plugin_drivers: BTreeMap<String, PathBuf>,
    pub plugin_search: Vec<PathBuf>,
    pub config_file: Option<PathBuf>,
    /// TLS of the TCP listeners.
    pub tls: crate::tlsconf::TlsConfig,
    /// `header-read-timeout`.
    pub header_read_timeout: std::time::Duration,
    /// The Kubernetes CRI server.
    pub cri: crate::cri_glue::config::CriConfig,
}

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "fatal", "panic"];

/// Reads the config file: `explicit` must exist; the default may be absent.
pub fn read_file(path: &Path, explicit: bool) -> Result<Option<FileConfig>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => bail!(
            "unable to configure the berth daemon with file {}: {e}",
            path.display()
        ),
    };
    let cfg: FileConfig = serde_json::from_str(&text).map_err(|e| {
        let msg = e.to_string();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let key = rest.split('`').next().unwrap_or(rest);
            anyhow::anyhow!(
                "unable to configure the berth daemon with file {}: the following directives don't match any configuration option: {key}",
                path.display()
            )
        } else {
            anyhow::anyhow!("unable to configure the berth daemon with file {}: {msg}", path.display())
        }
    })?;
    Ok(Some(cfg))
}

/// Checks a `-H` address and puts it in canonical form, as dockerd does: `unix://` alone is
/// the default socket, `tcp://:P` listens on every address, `tcp://H` uses port 2375.
fn normalize_host(h: &str, default_socket: &str) -> Result<String> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() {
            return Ok(format!("unix://{default_socket}"));
        }
        if !p.starts_with('/') {
            bail!("invalid host {h:?}: a unix socket path must be absolute");
        }
        return Ok(h.to_string());
    }
    if let Some(a) = h.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        let (host, port) = match a.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') || host.starts_with('[') => (host, port),
            _ => (a, "2375"),
        };
        let port: u16 = port
            .parse()
            .with_context(|| format!("invalid host {h:?}: bad port {port:?}"))?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        return Ok(format!("tcp://{host}:{port}"));
    }
    bail!("invalid host {h:?}: use unix:///path or tcp://host:port")
}

fn validate_cidr(s: &str) -> Result<()> {
    let (ip, bits) = s
        .split_once('/')
        .with_context(|| format!("invalid bip {s:?}: expected an address in CIDR form"))?;
    ip.parse::<std::net::Ipv4Addr>()
        .with_context(|| format!("invalid bip {s:?}: bad address"))?;
    let bits: u8 = bits
        .parse()
        .with_context(|| format!("invalid bip {s:?}: bad prefix length"))?;
    if !(8..=30).contains(&bits) {
        bail!("invalid bip {s:?}: prefix length must be 8..30");
    }
    Ok(())
}

/// Merges flags and file, refusing conflicts as dockerd does, and validates.
pub fn merge(
    flags: FlagConfig,
    file: Option<FileConfig>,
    config_file: Option<PathBuf>,
    exe_dir: Option<PathBuf>,
) -> Result<Config> {
    let f = file.unwrap_or_default();
    let mut conflicts = Vec::new();
    let mut pick = |name: &str, flag: Option<String>, file: Option<String>| -> Option<String> {
        if let (Some(a), Some(b)) = (&flag, &file) {
            conflicts.push(format!("{name}: (from flag: {a}, from file: {b})"));
        }
        flag.or(file)
    };
    let data_root = pick(
        "data-root",
        flags.data_root.map(|p| p.display().to_string()),
        f.data_root.map(|p| p.display().to_string()),
    );
    let exec_root = pick(
        "exec-root",
        flags.exec_root.map(|p| p.display().to_string()),
        f.exec_root.map(|p| p.display().to_string()),
    );
    let storage_driver = pick("storage-driver", flags.storage_driver, f.storage_driver);
    let pidfile = pick(
        "pidfile",
        flags.pidfile.map(|p| p.display().to_string()),
        f.pidfile.map(|p| p.display().to_string()),
    );
    let log_level = pick("log-level", flags.log_level, f.log_level);
    let bridge = pick("bridge", flags.bridge, f.bridge);
    let bip = pick("bip", flags.bip, f.bip);
    let icc = pick(
        "icc",
        flags.icc.map(|b| b.to_string()),
        f.icc.map(|b| b.to_string()),
    )
    .as_deref()
        != Some("false");
    let file_tls = crate::tlsconf::TlsFlags {
        tls: f.tls,
        tlsverify: f.tlsverify,
        tlscacert: f.tlscacert,
        tlscert: f.tlscert,
        tlskey: f.tlskey,
    };
    let tls = crate::tlsconf::merge(flags.tls, file_tls, &mut conflicts);
    let hosts = match (flags.hosts.is_empty(), f.hosts) {
        (false, Some(h)) => {
            conflicts.push(format!(
                "hosts: (from flag: [{}], from file: [{}])",
                flags.hosts.join(" "),
                h.join(" ")
            ));
            flags.hosts
        }
        (false, None) => flags.hosts,
        (true, Some(h)) => h,
        (true, None) => Vec::new(),
    };
    crate::cri_glue::config::conflicts(flags.cri_socket.as_deref(), f.cri.as_ref(), &mut conflicts);
    if !conflicts.is_empty() {
        bail!(
            "unable to configure the berth daemon with file {}: the following directives are specified both as a flag and in the configuration file: {}",
            config_file.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG)).display(),
            conflicts.join(", ")
        );
    }
    let data_root = PathBuf::from(data_root.unwrap_or_else(|| "/var/lib/berth".into()));
    let exec_root = PathBuf::from(exec_root.unwrap_or_else(|| "/run/berth".into()));
    for (name, p) in [("data-root", &data_root), ("exec-root", &exec_root)] {
        if !p.is_absolute() {
            bail!(
                "invalid {name} {:?}: the path must be absolute",
                p.display().to_string()
            );
        }
    }
    let cri = crate::cri_glue::config::settle(flags.cri_socket, f.cri, &exec_root)?;
    let default_socket = format!("{}/berth.sock", exec_root.display());
    let hosts = if hosts.is_empty() {
        vec![format!("unix://{default_socket}")]
    } else {
        hosts
            .iter()
            .map(|h| normalize_host(h, &default_socket))
            .collect::<Result<Vec<_>>>()?
    };
    let tls = crate::tlsconf::settle(tls, &hosts)?;
    if f.header_read_timeout == Some(0) {
        bail!("invalid header-read-timeout 0: it must be at least 1 second");
    }
    let debug = flags.debug || f.debug.unwrap_or(false);
    let log_level = log_level.unwrap_or_else(|| if debug { "debug".into() } else { "info".into() });
    if !LEVELS.contains(&log_level.as_str()) {
        bail!(
            "invalid log level {log_level:?}: use one of {}",
            LEVELS.join(", ")
        );
    }
    if let Some(b) = &bip {
        validate_cidr(b)?;
    }
    let mut storage_opts = BTreeMap::new();
    for o in f.storage_opts.unwrap_or_default() {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("invalid storage option {o:?}: expected key=value"))?;
        storage_opts.insert(k.trim().to_string(), v.trim().to_string());
    }
    let runtimes = f.runtimes.unwrap_or_default();
    let default_runtime = f.default_runtime.unwrap_or_else(|| "native".into());
    let plugins = f.plugins.unwrap_or_default();
    if default_runtime != "native"
        && !runtimes.contains_key(&default_runtime)
        && default_runtime != "runc"
        && !plugins.drivers.contains_key(&default_runtime)
    {
        bail!("invalid default-runtime {default_runtime:?}: no runtime of that name is configured");
    }
    let mut plugin_search = plugins.search_paths;
    if let Some(d) = exe_dir {
        plugin_search.push(d);
    }
    plugin_search.push(PathBuf::from("/usr/local/lib/berth"));
    plugin_search.push(PathBuf::from("/usr/lib/berth"));
    let log_driver = f.log_driver.unwrap_or_else(|| "json-file".into());
    if !["json-file", "none"].contains(&log_driver.as_str()) {
        bail!("invalid log-driver {log_driver:?}: berth supports json-file and none");
    }
    let log_opts = f.log_opts.unwrap_or_default();
    crate::containers::logconfig::check(&log_driver, &log_opts)
        .map_err(|e| anyhow::anyhow!("invalid log-opts: {e}"))?;
    let pidfile =
        PathBuf::from(pidfile.unwrap_or_else(|| format!("{}/berthd.pid", exec_root.display())));
    Ok(Config {
        data_root,
        exec_root,
        hosts,
        storage_driver,
        storage_opts,
        insecure_registries: f.insecure_registries.unwrap_or_default(),
        registry_mirrors: f.registry_mirrors.unwrap_or_default(),
        registry_mirror_map: f.registry_mirror_map.unwrap_or_default(),
        registry_driver: f.registry_driver.unwrap_or_else(|| "distribution".into()),
        bridge: bridge.unwrap_or_else(|| "berth0".into()),
        bip,
        icc,
        default_address_pools: f.default_address_pools.unwrap_or_default(),
        log_level,
        debug,
        default_runtime,
        runtimes,
        live_restore: f.live_restore.unwrap_or(true),
        pidfile,
        log_driver,
        log_opts,
        max_layer_size: f.max_layer_size.unwrap_or(64 << 30),
        init: f.init.unwrap_or(false),
        init_path: f.init_path,
        prestart: f.prestart.unwrap_or(4),
        plugin_drivers: plugins.drivers,
        plugin_search,
        config_file,
        tls,
        header_read_timeout: std::time::Duration::from_secs(f.header_read_timeout.unwrap_or(30)),
        cri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_conflicts_are_refused() {
        let dir = std::env::temp_dir().join(format!("berth-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("daemon.json");
        std::fs::write(&p, r#"{"foo": 1}"#).expect("write");
        let e = read_file(&p, true).expect_err("unknown key");
        assert!(
            e.to_string()
                .contains("don't match any configuration option: foo"),
            "{e}"
        );
        std::fs::write(&p, r#"{"data-root": "/var/lib/x"}"#).expect("write");
        let file = read_file(&p, true).expect("read");
        let flags = FlagConfig {
            data_root: Some("/y".into()),
            ..Default::default()
        };
        let e = merge(flags, file, Some(p.clone()), None).expect_err("conflict");
        assert!(
            e.to_string()
                .contains("both as a flag and in the configuration file: data-root"),
            "{e}"
        );
        let e = merge(
            FlagConfig {
                log_level: Some("loud".into()),
                ..Default::default()
            },
            None,
            None,
            None,
        )
        .expect_err("level");
        assert!(e.to_string().contains("invalid log level"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn icc_comes_from_the_flag_or_the_file_not_both() {
        let dir = std::env::temp_dir().join(format!("berth-config-icc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("daemon.json");
        let base =
            |extra: &str| format!(r#"{{"data-root": "/var/lib/x", "exec-root": "/run/x"{extra}}}"#);
        std::fs::write(&p, base("")).expect("write");
        let cfg = merge(
            FlagConfig::default(),
            read_file(&p, true).expect("read"),
            None,
            None,
        )
        .expect("merge");
        assert!(cfg.icc, "on by default");
        std::fs::write(&p, base(r#", "icc": false"#)).expect("write");
        let file = read_file(&p, true).expect("read");
        let cfg = merge(FlagConfig::default(), file.clone(), None, None).expect("merge");
        assert!(!cfg.icc, "daemon.json icc");
        let flags = FlagConfig {
            icc: Some(false),
            ..Default::default()
        };
        let e = merge(flags, file, Some(p.clone()), None).expect_err("conflict");
        assert!(
            e.to_string()
                .contains("icc: (from flag: false, from file: false)"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn hosts_are_normalised_like_dockerd() {
        let n = |h: &str| normalize_host(h, "/run/berth/berth.sock").ok();
        assert_eq!(
            n("unix://").as_deref(),
            Some("unix:///run/berth/berth.sock")
        );
        assert_eq!(n("unix:///x.sock").as_deref(), Some("unix:///x.sock"));
        assert_eq!(n("tcp://:2376").as_deref(), Some("tcp://0.0.0.0:2376"));
        assert_eq!(
            n("tcp://127.0.0.1").as_deref(),
            Some("tcp://127.0.0.1:2375")
        );
        assert_eq!(n("tcp://[::1]:80").as_deref(), Some("tcp://[::1]:80"));
        assert!(n("tcp://h:port").is_none());
        assert!(n("unix://relative").is_none());
        assert!(n("nope").is_none());
    }
}
