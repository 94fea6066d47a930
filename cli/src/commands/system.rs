//! `version`, `info`, `events`, `system df|info|events`.

use crate::output;
use anyhow::Result;
use berth_api::client::enc;
use berth_api::Client;
use clap::{Args, Subcommand};
use serde_json::Value;

/// `version` flags.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format the output using a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `info` flags.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format the output using a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `events` flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format the output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

/// `system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Show berth disk usage.
    Df,
    /// Display system-wide information.
    Info(InfoArgs),
    /// Get real time events from the server.
    Events(EventsArgs),
    /// Remove unused data.
    Prune(super::prune::SystemPruneArgs),
}

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `berth version`.
pub fn version(c: &mut Client, a: VersionArgs) -> Result<i32> {
    let os_arch = format!(
        "{}/{}",
        std::env::consts::OS,
        if std::env::consts::ARCH == "x86_64" {
            "amd64"
        } else {
            std::env::consts::ARCH
        }
    );
    if let Some(f) = &a.format {
        let client = serde_json::json!({"Version": env!("CARGO_PKG_VERSION"), "ApiVersion": "1.47", "APIVersion": "1.47",
            "Os": std::env::consts::OS, "Arch": os_arch.split('/').nth(1).unwrap_or_default()});
        let mut server = c.get("/version").unwrap_or_else(|e| {
            eprintln!("{e}");
            Value::Null
        });
        // Go templates name the field as docker's struct does.
        if let Some(v) = server.get("ApiVersion").cloned() {
            server["APIVersion"] = v;
        }
        output::format(
            f,
            &[serde_json::json!({"Client": client, "Server": server})],
        );
        return Ok(if server.is_null() { 1 } else { 0 });
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       1.47");
    println!(" Go version:        rust");
    println!(" Git commit:        berth");
    println!(" Built:             -");
    println!(" OS/Arch:           {os_arch}");
    println!(" Context:           default");
    let v = match c.get("/version") {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    println!();
    println!(
        "Server: {}",
        v.pointer("/Platform/Name")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    println!(" Engine:");
    println!("  Version:          {}", s(&v, "Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s(&v, "ApiVersion"),
        s(&v, "MinAPIVersion")
    );
    println!("  Go version:       {}", s(&v, "GoVersion"));
    println!("  Git commit:       {}", s(&v, "GitCommit"));
    println!("  Built:            {}", s(&v, "BuildTime"));
    println!("  OS/Arch:          {}/{}", s(&v, "Os"), s(&v, "Arch"));
    println!("  Experimental:     false");
    Ok(0)
}

/// `berth info`.
pub fn info(c: &mut Client, a: InfoArgs) -> Result<i32> {
    let v = c.get("/info")?;
    if let Some(f) = a.format {
        output::format(&f, &[v]);
        return Ok(0);
    }
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    default");
    println!(" Debug Mode: false");
    println!();
    println!("Server:");
    println!(" Containers: {}", s(&v, "Containers"));
    println!("  Running: {}", s(&v, "ContainersRunning"));
    println!("  Paused: {}", s(&v, "ContainersPaused"));
    println!("  Stopped: {}", s(&v, "ContainersStopped"));
    println!(" Images: {}", s(&v, "Images"));
    println!(" Server Version: {}", s(&v, "ServerVersion"));
    println!(" Storage Driver: {}", s(&v, "Driver"));
    for pair in v["DriverStatus"].as_array().cloned().unwrap_or_default() {
        println!(
            "  {}: {}",
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or("")
        );
    }
    println!(" Logging Driver: {}", s(&v, "LoggingDriver"));
    println!(" Cgroup Driver: {}", s(&v, "CgroupDriver"));
    println!(" Cgroup Version: {}", s(&v, "CgroupVersion"));
    println!(" Plugins:");
    for k in ["Volume", "Network", "Log"] {
        let list: Vec<String> = v["Plugins"][k]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        println!("  {k}: {}", list.join(" "));
    }
    for p in v["BerthPlugins"].as_array().cloned().unwrap_or_default() {
        println!(
            "  Berth plugin: {} {} ({} driver {}, {})",
            s(&p, "Name"),
            s(&p, "Version"),
            s(&p, "Kind"),
            s(&p, "Driver"),
            s(&p, "Library")
        );
    }
    println!(" Swarm: inactive");
    let rts: Vec<String> = v["Runtimes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    println!(" Runtimes: {}", rts.join(" "));
    println!(" Default Runtime: {}", s(&v, "DefaultRuntime"));
    println!(" Init Binary: {}", s(&v, "InitBinary"));
    for (name, key) in [
        ("containerd", "/ContainerdCommit/ID"),
        ("runc", "/RuncCommit/ID"),
        ("init", "/InitCommit/ID"),
    ] {
        let id = v.pointer(key).and_then(Value::as_str).unwrap_or_default();
        println!(" {name} version: {id}");
    }
    println!(" Security Options:");
    // `name=seccomp,profile=builtin` is shown as docker does: the name, then `Profile: builtin`.
    for o in v["SecurityOptions"].as_array().cloned().unwrap_or_default() {
        for kv in o.as_str().unwrap_or("").split(',') {
            match kv.split_once('=') {
                Some(("name", n)) => println!("  {n}"),
                Some((k, val)) => {
                    let mut c = k.chars();
                    let key: String = c
                        .next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default();
                    println!("   {key}: {val}");
                }
                None => println!("  {kv}"),
            }
        }
    }
    println!(" Kernel Version: {}", s(&v, "KernelVersion"));
    println!(" Operating System: {}", s(&v, "OperatingSystem"));
    println!(" OSType: {}", s(&v, "OSType"));
    println!(" Architecture: {}", s(&v, "Architecture"));
    println!(" CPUs: {}", s(&v, "NCPU"));
    let mem = v["MemTotal"].as_f64().unwrap_or(0.0);
    println!(" Total Memory: {:.2}GiB", mem / (1u64 << 30) as f64);
    println!(" Name: {}", s(&v, "Name"));
    println!(" ID: {}", s(&v, "ID"));
    println!(" Docker Root Dir: {}", s(&v, "DockerRootDir"));
    println!(" Debug Mode: {}", s(&v, "Debug"));
    let labels = v["Labels"].as_array().cloned().unwrap_or_default();
    if !labels.is_empty() {
        println!(" Labels:");
        for l in labels {
            println!("  {}", l.as_str().unwrap_or_default());
        }
    }
    println!(" Experimental: false");
    println!(" Insecure Registries:");
    for r in v
        .pointer("/RegistryConfig/InsecureRegistryCIDRs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        println!("  {}", r.as_str().unwrap_or(""));
    }
    println!(" Live Restore Enabled: {}", s(&v, "LiveRestoreEnabled"));
    println!();
    for w in v["Warnings"].as_array().cloned().unwrap_or_default() {
        eprintln!("{}", w.as_str().unwrap_or(""));
    }
    Ok(0)
}

/// Converts `10m`, RFC 3339, or unix seconds to unix seconds.
fn to_unix(t: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    if let Some(n) = t.strip_suffix('s').and_then(|n| n.parse::<i64>().ok()) {
        return (now - n).to_string();
    }
    if let Some(n) = t.strip_suffix('m').and_then(|n| n.parse::<i64>().ok()) {
        return (now - n * 60).to_string();
    }
    if let Some(n) = t.strip_suffix('h').and_then(|n| n.parse::<i64>().ok()) {
        return (now - n * 3600).to_string();
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return d.timestamp().to_string();
    }
    t.to_string()
}

/// Builds the `filters` JSON from `key=value` flags.
pub fn filters_json(f: &[String]) -> String {
    let mut m: serde_json::Map<String, Value> = serde_json::Map::new();
    for x in f {
        let (k, v) = x.split_once('=').unwrap_or((x, ""));
        let e = m
            .entry(k.to_string())
            .or_insert_with(|| serde_json::json!({}));
        e[v] = Value::Bool(true);
    }
    Value::Object(m).to_string()
}

/// `berth events`.
pub fn events(c: &mut Client, a: EventsArgs) -> Result<i32> {
    let mut q = vec![];
    if let Some(s) = &a.since {
        q.push(format!("since={}", enc(&to_unix(s))));
    }
    if let Some(u) = &a.until {
        q.push(format!("until={}", enc(&to_unix(u))));
    }
    if !a.filter.is_empty() {
        q.push(format!("filters={}", enc(&filters_json(&a.filter))));
    }
    let r = c.request("GET", &format!("/events?{}", q.join("&")), &[], None)?;
    r.messages(|v| {
        if let Some(f) = &a.format {
            output::format(f, &[v]);
            return Ok(());
        }
        let nanos = v["timeNano"].as_i64().unwrap_or(0);
        let t =
            chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
                .unwrap_or_default();
        let attrs: Vec<String> = v
            .pointer("/Actor/Attributes")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{} {} {} {} ({})",
            t.format("%Y-%m-%dT%H:%M:%S%.9fZ"),
            s(&v, "Type"),
            s(&v, "Action"),
            v.pointer("/Actor/ID").and_then(Value::as_str).unwrap_or(""),
            attrs.join(", ")
        );
        Ok(())
    })?;
    Ok(0)
}

/// `berth system ...`.
pub fn system(c: &mut Client, cmd: SystemCmd) -> Result<i32> {
    match cmd {
        SystemCmd::Info(a) => info(c, a),
        SystemCmd::Events(a) => events(c, a),
        SystemCmd::Prune(a) => super::prune::system(c, &a),
        SystemCmd::Df => {
            let v = c.get("/system/df")?;
            let imgs = v["Images"].as_array().cloned().unwrap_or_default();
            let active = imgs
                .iter()
                .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
                .count();
            let size: f64 = imgs.iter().map(|i| i["Size"].as_f64().unwrap_or(0.0)).sum();
            let cs = v["Containers"].as_array().cloned().unwrap_or_default();
            output::table(
                &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                &[
                    vec![
                        "Images".into(),
                        imgs.len().to_string(),
                        active.to_string(),
                        output::human_size(size),
                        output::human_size(0.0),
                    ],
                    vec![
                        "Containers".into(),
                        cs.len().to_string(),
                        cs.iter()
                            .filter(|c| c["State"] == "running")
                            .count()
                            .to_string(),
                        "0B".into(),
                        "0B".into(),
                    ],
                    vec![
                        "Local Volumes".into(),
                        "0".into(),
                        "0".into(),
                        "0B".into(),
                        "0B".into(),
                    ],
                    vec![
                        "Build Cache".into(),
                        "0".into(),
                        "0".into(),
                        "0B".into(),
                        "0B".into(),
                    ],
                ],
            );
            Ok(0)
        }
    }
}
