//! System endpoints: `/_ping`, `/version`, `/info`, `/events`, `/system/df`, and the swarm
//! endpoints that answer "not part of a swarm".

use crate::server::http::{self, ok_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::server::{API_VERSION, MIN_API_VERSION};
use crate::state::Ctx;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::GET, "/_ping", ping);
    r.add(Method::HEAD, "/_ping", ping);
    r.add(Method::GET, "/version", version);
    r.add(Method::GET, "/info", info);
    r.add(Method::GET, "/events", events);
    for p in [
        "/swarm",
        "/swarm/{x*}",
        "/nodes",
        "/nodes/{x*}",
        "/services",
        "/services/{x*}",
        "/tasks",
        "/tasks/{x*}",
        "/secrets",
        "/secrets/{x*}",
        "/configs",
        "/configs/{x*}",
    ] {
        for m in [Method::GET, Method::POST, Method::DELETE] {
            r.add(m, p, swarm);
        }
    }
}

async fn swarm(_: Ctx, _: Req) -> ApiResult {
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
    ))
}

async fn ping(_: Ctx, req: Req) -> ApiResult {
    let head = req.inner.method() == Method::HEAD;
    let mut r = if head {
        http::bytes(StatusCode::OK, "text/plain; charset=utf-8", "")
    } else {
        http::bytes(StatusCode::OK, "text/plain; charset=utf-8", "OK")
    };
    let h = r.headers_mut();
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// The running kernel's release.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn version(_: Ctx, _: Req) -> ApiResult {
    let v = env!("CARGO_PKG_VERSION");
    let details = json!({
        "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "berth",
        "GoVersion": "rust", "Os": "linux", "Arch": arch(), "KernelVersion": kernel(),
        "Experimental": "false", "BuildTime": "2026-11-28T00:00:00.000000000+00:00",
    });
    ok_json(&json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": v, "Details": details}],
        "Version": v, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "berth", "GoVersion": "rust", "Os": "linux", "Arch": arch(),
        "KernelVersion": kernel(), "BuildTime": "2026-11-28T00:00:00.000000000+00:00",
    }))
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
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

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

async fn info(ctx: Ctx, _: Req) -> ApiResult {
    let c = &ctx.config;
    let counts = ctx.containers.counts();
    let images = ctx.images.count();
    let cgroup_version = berth_runtime::cgroups::version();
    let mut runtimes = serde_json::Map::new();
    runtimes.insert("native".into(), json!({"path": "berth-monitor"}));
    for (name, rt) in &c.runtimes {
        runtimes.insert(
            name.clone(),
            json!({"path": rt.path, "runtimeArgs": rt.runtime_args}),
        );
    }
    if !runtimes.contains_key("runc") && std::path::Path::new("/usr/sbin/runc").exists() {
        runtimes.insert("runc".into(), json!({"path": "/usr/sbin/runc"}));
    }
    let mut network_plugins = vec!["bridge".to_string(), "host".into(), "null".into()];
    let berth_plugins: Vec<Value> = ctx
        .plugins
        .iter()
        .map(|p| {
            json!({"Name": p.plugin, "Version": p.version, "Kind": p.kind.as_str(), "Driver": p.driver, "Library": p.library})
        })
        .collect();
    for p in &ctx.plugins {
        if p.kind == berth_core::DriverKind::Network && !network_plugins.contains(&p.driver) {
            network_plugins.push(p.driver.clone());
        }
    }
    let plugin_lines: Vec<String> = ctx
        .plugins
        .iter()
        .map(|p| format!("{} {} ({} {})", p.plugin, p.version, p.kind, p.driver))
        .collect();
    let mut warnings = Vec::new();
    if ctx.network.is_none() {
        warnings.push(
            "WARNING: no bridge network driver loaded; containers run with --network none"
                .to_string(),
        );
    }
    ok_json(&json!({
        "ID": ctx.id,
        "Containers": counts.0 + counts.1 + counts.2,
        "ContainersRunning": counts.0,
        "ContainersPaused": counts.1,
        "ContainersStopped": counts.2,
        "Images": images,
        "Driver": ctx.storage.name(),
        "DriverStatus": ctx.storage.status().into_iter().map(|(k, v)| vec![k, v]).collect::<Vec<_>>(),
        "Plugins": {"Volume": ["local"], "Network": network_plugins, "Authorization": null, "Log": ["json-file"], "Berth": plugin_lines},
        "BerthPlugins": berth_plugins,
        "MemoryLimit": true, "SwapLimit": std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() || cgroup_version == "2",
        "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": true, "PidsLimit": true,
        "IPv4Forwarding": std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map(|s| s.trim() == "1").unwrap_or(false),
        "BridgeNfIptables": false, "BridgeNfIp6tables": false,
        "Debug": c.debug, "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "OomKillDisable": false, "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": kernel(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": null, "AllowNondistributableArtifactsHostnames": null,
            "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": c.registry_mirrors,
        },
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
        "GenericResources": null,
        "DockerRootDir": c.data_root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": hostname(),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": runtimes,
        "DefaultRuntime": c.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": c.live_restore,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=cgroupns"],
        "Warnings": warnings,
    }))
}

fn parse_time(s: Option<&str>) -> Result<Option<i64>, ApiError> {
    match s {
        None | Some("") => Ok(None),
        Some(v) => {
            let secs: f64 = v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid time {v:?}")))?;
            Ok(Some((secs * 1e9) as i64))
        }
    }
}

fn event_matches(e: &crate::events::Event, f: &http::Filters) -> bool {
    let ok = |key: &str, vals: &[&str]| {
        let want = f.get(key);
        want.is_empty() || want.iter().any(|w| vals.contains(&w.as_str()))
    };
    let name = e
        .actor
        .attributes
        .get("name")
        .map(String::as_str)
        .unwrap_or("");
    let image = e
        .actor
        .attributes
        .get("image")
        .map(String::as_str)
        .unwrap_or("");
    let short = &e.actor.id[..e.actor.id.len().min(12)];
    let labels_ok = f.get("label").iter().all(|l| match l.split_once('=') {
        Some((k, v)) => e.actor.attributes.get(k).map(String::as_str) == Some(v),
        None => e.actor.attributes.contains_key(l.as_str()),
    });
    ok("type", &[&e.typ])
        && ok("event", &[&e.action])
        && (e.typ != "container" || ok("container", &[&e.actor.id, short, name]))
        && ok(
            "image",
            &[image, if e.typ == "image" { &e.actor.id } else { "" }],
        )
        && labels_ok
}

async fn events(ctx: Ctx, req: Req) -> ApiResult {
    let since = parse_time(req.query.get("since"))?;
    let until = parse_time(req.query.get("until"))?;
    let filters = req.query.filters()?;
    let (past, mut rx) = ctx.events.subscribe();
    let (tx, resp) = http::json_stream();
    tokio::spawn(async move {
        if since.is_some() {
            for e in past.iter().filter(|e| {
                since.is_none_or(|s| e.time_nano >= s) && until.is_none_or(|u| e.time_nano <= u)
            }) {
                if event_matches(e, &filters)
                    && !tx.send(serde_json::to_value(e).unwrap_or_default()).await
                {
                    return;
                }
            }
        }
        loop {
            let deadline = until.map(|u| {
                let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
                std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
            });
            let next = match deadline {
                Some(d) => match tokio::time::timeout(d, rx.recv()).await {
                    Ok(x) => x,
                    Err(_) => return,
                },
                None => rx.recv().await,
            };
            match next {
                Ok(e) => {
                    if event_matches(&e, &filters)
                        && !tx.send(serde_json::to_value(&e).unwrap_or_default()).await
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
    Ok(resp)
}
