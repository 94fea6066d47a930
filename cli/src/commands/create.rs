//! The `run`/`create` flag set and how it becomes the Engine API create body: flag parsing
//! (sizes, ports, env files), the body the docker CLI sends, and create-with-pull.

use super::images::is_not_found;
use anyhow::{bail, Result};
use berth_api::client::enc;
use berth_api::Client;
use clap::Args;
use serde_json::{json, Map, Value};
/// `run` / `create` flags.
#[derive(Debug, Args, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// Set meta data on a container.
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Restart policy to apply when a container exits.
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Publish a container's port(s) to the host.
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Connect a container to a network.
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Bind mount a volume.
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security Options.
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Size of /dev/shm.
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Ulimit options.
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Runtime to use for this container.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Run an init inside the container.
    #[arg(long)]
    pub init: bool,
    #[command(flatten)]
    pub health: super::create_health::HealthArgs,
    /// Image.
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `--restart` as (policy name, maximum retry count).
pub(crate) fn parse_restart(s: &str) -> Result<(String, i64)> {
    let (policy, max) = match s.split_once(':') {
        Some((p, n)) => (p.to_string(), n.parse::<i64>().unwrap_or(0)),
        None => (s.to_string(), 0),
    };
    if !["no", "always", "on-failure", "unless-stopped"].contains(&policy.as_str()) {
        bail!("invalid restart policy: {policy}");
    }
    Ok((policy, max))
}

/// `--ulimit name=soft[:hard]` as `HostConfig.Ulimits` entries.
pub(crate) fn parse_ulimits(list: &[String]) -> Result<Vec<Value>> {
    list.iter()
        .map(|u| {
            let (name, vals) = u
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("invalid ulimit argument: {u}"))?;
            let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
            Ok(json!({"Name": name, "Soft": soft.parse::<i64>().unwrap_or(0), "Hard": hard.parse::<i64>().unwrap_or(0)}))
        })
        .collect()
}

/// `--add-host name:ip` (or `name=ip`) as `HostConfig.ExtraHosts` entries (`name:ip`).
pub(crate) fn parse_extra_hosts(list: &[String]) -> Vec<String> {
    list.iter().map(|h| h.replacen('=', ":", 1)).collect()
}

pub(crate) fn parse_bytes(s: &str) -> Result<i64> {
    let s = s.trim().to_ascii_lowercase();
    if s == "-1" {
        return Ok(-1);
    }
    let (num, mult) = match s.chars().last() {
        Some('b') => (&s[..s.len() - 1], 1),
        Some('k') => (&s[..s.len() - 1], 1 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s.as_str(), 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: '{s}'"))?;
    Ok((n * mult as f64) as i64)
}

pub(crate) fn parse_ports(specs: &[String]) -> Result<(Map<String, Value>, Map<String, Value>)> {
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for p in specs {
        let (main, proto) = p
            .rsplit_once('/')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or((p.clone(), "tcp".into()));
        let parts: Vec<&str> = main.split(':').collect();
        let (ip, host, ctr) = match parts.as_slice() {
            [c] => ("", "", *c),
            [h, c] => ("", *h, *c),
            [i, h, c] => (*i, *h, *c),
            _ => bail!("invalid port format: {p}"),
        };
        if ctr.parse::<u16>().is_err() {
            bail!("invalid containerPort: {ctr}");
        }
        let key = format!("{ctr}/{proto}");
        exposed.insert(key.clone(), json!({}));
        let list = bindings.entry(key).or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            a.push(json!({"HostIp": ip, "HostPort": host}));
        }
    }
    Ok((exposed, bindings))
}

pub(crate) fn env_files(files: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("open {f}: {e}"))?;
        for l in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if l.contains('=') {
                out.push(l.to_string());
            } else if let Ok(v) = std::env::var(l) {
                out.push(format!("{l}={v}"));
            }
        }
    }
    Ok(out)
}

pub(crate) fn expand_env(list: &[String]) -> Vec<String> {
    list.iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

pub(crate) fn term_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ on our stdout with a valid winsize pointer.
    let rc = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The create body docker builds for these flags.
/// `--security-opt` as the docker CLI sends it: `seccomp=FILE` becomes `seccomp=<the file's
/// JSON, compacted>` (the daemon never reads the client's files); `unconfined` and `builtin`
/// stay as they are.
pub(crate) fn security_opts(opts: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for o in opts {
        let kv = o.split_once('=').or_else(|| o.split_once(':'));
        match kv {
            Some(("seccomp", file)) if file != "unconfined" && file != "builtin" => {
                let text = std::fs::read(file)
                    .map_err(|e| anyhow::anyhow!("opening seccomp profile ({file}) failed: {e}"))?;
                let v: Value = serde_json::from_slice(&text).map_err(|e| {
                    anyhow::anyhow!("compacting json for seccomp profile ({file}) failed: {e}")
                })?;
                out.push(format!("seccomp={v}"));
            }
            _ => out.push(o.clone()),
        }
    }
    Ok(out)
}

pub(crate) fn create_body(a: &RunArgs) -> Result<Value> {
    let mut env = env_files(&a.env_file)?;
    env.extend(expand_env(&a.env));
    let mut labels = Map::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), json!(v));
    }
    let (exposed, bindings) = parse_ports(&a.publish)?;
    let attach_all = a.attach.is_empty() && !a.detach;
    let att = |s: &str| attach_all || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let (policy, max) = parse_restart(&a.restart)?;
    let ulimits = parse_ulimits(&a.ulimit)?;
    let mut tmpfs = Map::new();
    for t in &a.tmpfs {
        let (p, o) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(p.to_string(), json!(o));
    }
    let extra_hosts = parse_extra_hosts(&a.add_host);
    Ok(json!({
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "User": a.user.clone().unwrap_or_default(),
        "AttachStdin": a.interactive && att("stdin"),
        "AttachStdout": att("stdout"),
        "AttachStderr": att("stderr"),
        "ExposedPorts": exposed,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": a.interactive && !a.detach,
        "Env": env,
        "Cmd": if a.command.is_empty() { Value::Null } else { json!(a.command) },
        "Image": a.image,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Entrypoint": a.entrypoint.as_ref().map(|e| if e.is_empty() { json!([""]) } else { json!([e]) }).unwrap_or(Value::Null),
        "Labels": labels,
        "StopSignal": a.stop_signal,
        "StopTimeout": a.stop_timeout,
        "Healthcheck": a.health.config()?,
        "HostConfig": {
            "Binds": a.volume,
            "NetworkMode": a.network.clone().unwrap_or_else(|| "default".into()),
            "PortBindings": bindings,
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": max},
            "AutoRemove": a.rm,
            "CapAdd": a.cap_add,
            "CapDrop": a.cap_drop,
            "Dns": a.dns,
            "ExtraHosts": extra_hosts,
            "Privileged": a.privileged,
            "ReadonlyRootfs": a.read_only,
            "SecurityOpt": security_opts(&a.security_opt)?,
            "Tmpfs": tmpfs,
            "ShmSize": a.shm_size.as_deref().map(parse_bytes).transpose()?.unwrap_or(0),
            "Memory": a.memory.as_deref().map(parse_bytes).transpose()?.unwrap_or(0),
            "MemorySwap": a.memory_swap.as_deref().map(parse_bytes).transpose()?.unwrap_or(0),
            "NanoCpus": a.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            "CpuShares": a.cpu_shares.unwrap_or(0),
            "PidsLimit": a.pids_limit,
            "Ulimits": ulimits,
            "Runtime": a.runtime.clone().unwrap_or_default(),
            "Init": a.init,
            "ConsoleSize": term_size().map(|(h, w)| json!([h, w])).unwrap_or(json!([0, 0])),
        },
        "NetworkingConfig": {"EndpointsConfig": {}},
    }))
}

pub(crate) fn create_container(
    c: &mut Client,
    a: &RunArgs,
    dir: Option<&str>,
) -> Result<String, anyhow::Error> {
    let body = create_body(a)?;
    let path = match &a.name {
        Some(n) => format!("/containers/create?name={}", enc(n)),
        None => "/containers/create".into(),
    };
    if a.pull == "always" {
        super::registry::pull_image(c, &a.image, a.platform.as_deref(), true, dir)?;
    }
    let r = match c.json("POST", &path, &body) {
        Err(e) if is_not_found(&e) && a.pull != "never" => {
            eprintln!("Unable to find image '{}' locally", a.image);
            if super::registry::pull_image(c, &a.image, a.platform.as_deref(), false, dir)? != 0 {
                return Err(anyhow::anyhow!(""));
            }
            c.json("POST", &path, &body)?
        }
        other => other?,
    };
    let v = r.json()?;
    Ok(v["Id"].as_str().unwrap_or("").to_string())
}
