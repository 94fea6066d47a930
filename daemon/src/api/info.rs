//! `GET /info`: real figures about this host and daemon, in Docker's shape (typed by
//! `berth_api::types::system::Info`). berth's loaded plugins are listed in the berth-specific
//! `BerthPlugins` field and, so that the stock `docker info` shows them, as daemon `Labels`
//! (`berth.plugin.<kind>.<driver>=<plugin> <version>`) and a `Plugin` line under the storage
//! driver.

use crate::server::http::{ok_json, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use berth_api::types::system::{
    BerthPlugin, IndexInfo, Info, PluginsInfo, RegistryConfig, RuntimeInfo, SwarmInfo,
};
use berth_core::DriverKind;
use std::collections::BTreeMap;
use std::path::Path;

/// The running kernel's release.
pub fn kernel() -> String {
    read_trim("/proc/sys/kernel/osrelease")
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A key of /etc/os-release, unquoted.
fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
    })
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn count_entries(dir: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Docker's `Runtimes`: each runtime berthd loaded, with its OCI binary or plugin library.
fn runtimes(ctx: &Ctx) -> BTreeMap<String, RuntimeInfo> {
    ctx.runtimes
        .iter()
        .map(|(name, c)| {
            let (path, runtime_args) = crate::runtimes::info_path(c);
            (name.clone(), RuntimeInfo { path, runtime_args })
        })
        .collect()
}

fn registry_config(ctx: &Ctx) -> RegistryConfig {
    let mut cidrs = vec!["127.0.0.0/8".to_string()];
    let mut index = BTreeMap::new();
    index.insert(
        "docker.io".to_string(),
        IndexInfo {
            name: "docker.io".into(),
            mirrors: ctx.config.registry_mirrors.clone(),
            secure: true,
            official: true,
        },
    );
    for r in &ctx.config.insecure_registries {
        if r.contains('/') {
            cidrs.push(r.clone());
        } else {
            index.insert(
                r.clone(),
                IndexInfo {
                    name: r.clone(),
                    mirrors: Vec::new(),
                    secure: false,
                    official: false,
                },
            );
        }
    }
    RegistryConfig {
        insecure_registry_cidrs: cidrs,
        index_configs: index,
        mirrors: ctx.config.registry_mirrors.clone(),
    }
}

fn build(ctx: &Ctx) -> Info {
    let c = &ctx.config;
    let (running, paused, stopped) = ctx.containers.counts();
    let cgroup_version = berth_runtime::cgroups::version().to_string();
    let security_options = security_options(&cgroup_version);
    let mut network = vec!["bridge".to_string(), "host".into(), "null".into()];
    let mut labels = Vec::new();
    let mut driver_status: Vec<[String; 2]> = ctx
        .storage
        .status()
        .into_iter()
        .map(|(k, v)| [k, v])
        .collect();
    for p in &ctx.plugins {
        if p.kind == DriverKind::Network && !network.contains(&p.driver) {
            network.push(p.driver.clone());
        }
        if p.kind == DriverKind::Storage && p.driver == ctx.storage.name() {
            driver_status.push([
                "Plugin".into(),
                format!("{} {} ({})", p.plugin, p.version, p.library.display()),
            ]);
        }
        // Runtimes are labelled by the names containers use (below).
        if p.kind != DriverKind::Runtime {
            labels.push(format!(
                "berth.plugin.{}.{}={} {}",
                p.kind, p.driver, p.plugin, p.version
            ));
        }
    }
    for (name, c) in &ctx.runtimes {
        labels.push(format!(
            "berth.plugin.runtime.{name}={} {}",
            c.plugin, c.version
        ));
    }
    let mut warnings = Vec::new();
    if ctx.network.is_none() {
        warnings.push(
            "WARNING: no bridge network driver loaded; containers get no network".to_string(),
        );
    }
    let swap = Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || cgroup_version == "2";
    if !swap {
        warnings.push("WARNING: No swap limit support".to_string());
    }
    let env = |k: &str| {
        std::env::var(k)
            .or_else(|_| std::env::var(k.to_ascii_lowercase()))
            .unwrap_or_default()
    };
    Info {
        id: ctx.id.clone(),
        containers: (running + paused + stopped) as u64,
        containers_running: running as u64,
        containers_paused: paused as u64,
        containers_stopped: stopped as u64,
        images: ctx.images.count() as u64,
        driver: ctx.storage.name(),
        driver_status,
        plugins: PluginsInfo {
            volume: vec!["local".into()],
            network,
            authorization: None,
            log: vec!["json-file".into()],
        },
        berth_plugins: ctx
            .plugins
            .iter()
            .map(|p| BerthPlugin {
                name: p.plugin.clone(),
                version: p.version.clone(),
                kind: p.kind.to_string(),
                driver: p.driver.clone(),
                library: p.library.display().to_string(),
            })
            .collect(),
        memory_limit: true,
        swap_limit: swap,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        oom_kill_disable: cgroup_version == "1",
        ipv4_forwarding: read_trim("/proc/sys/net/ipv4/ip_forward") == "1",
        debug: c.debug,
        nfd: count_entries("/proc/self/fd"),
        ngoroutines: count_entries("/proc/self/task"),
        system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        logging_driver: c.log_driver.clone(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version,
        nevents_listener: ctx.events.listeners() as u64,
        kernel_version: kernel(),
        operating_system: os_release("PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
        os_version: os_release("VERSION_ID").unwrap_or_default(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        index_server_address: "https://index.docker.io/v1/".into(),
        registry_config: registry_config(ctx),
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1),
        mem_total: mem_total(),
        docker_root_dir: c.data_root.display().to_string(),
        http_proxy: env("HTTP_PROXY"),
        https_proxy: env("HTTPS_PROXY"),
        no_proxy: env("NO_PROXY"),
        name: read_trim("/proc/sys/kernel/hostname"),
        labels,
        experimental_build: false,
        server_version: env!("CARGO_PKG_VERSION").into(),
        runtimes: runtimes(ctx),
        default_runtime: c.default_runtime.clone(),
        swarm: SwarmInfo {
            local_node_state: "inactive".into(),
            ..Default::default()
        },
        live_restore_enabled: c.live_restore,
        isolation: String::new(),
        security_options,
        warnings,
    }
}

/// Docker's `SecurityOptions`: the seccomp profile where the kernel has seccomp (berth's
/// default profile is the built-in one), and `name=cgroupns` where containers get a cgroup
/// namespace of their own by default, which dockerd does on cgroup v2 only.
fn security_options(cgroup_version: &str) -> Vec<String> {
    let mut out = Vec::new();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        out.push("name=seccomp,profile=builtin".to_string());
    }
    if cgroup_version == "2" {
        out.push("name=cgroupns".to_string());
    }
    out
}

/// `GET /info`.
pub async fn info(ctx: Ctx, _: Req) -> ApiResult {
    let info = tokio::task::spawn_blocking(move || build(&ctx)).await?;
    ok_json(&info)
}
