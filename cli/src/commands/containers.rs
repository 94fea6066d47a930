//! Container commands: run, create, start, ps, stop, restart, kill, rm, wait, pause, unpause,
//! logs, inspect, exec, top, rename, diff, export, commit, port, attach, container ...

use super::images::{is_not_found, pretty};
use super::system::filters_json;
use crate::output;
use anyhow::{bail, Result};
use berth_api::client::enc;
use berth_api::{Client, ClientError};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use std::io::{IsTerminal, Read, Write};

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
    /// Image.
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `start` flags.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
}

/// `ps` flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Show n last created containers.
    #[arg(short = 'n', long)]
    pub last: Option<i64>,
    /// Show the latest created container.
    #[arg(short, long)]
    pub latest: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `stop` / `restart` flags.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
}

/// `kill` flags.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
}

/// `rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
}

/// Containers only.
#[derive(Debug, Args)]
pub struct IdsArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// One container.
#[derive(Debug, Args)]
pub struct OneArgs {
    /// Container.
    pub container: String,
}

/// `logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Container.
    pub container: String,
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
}

/// `inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Objects.
    #[arg(required = true)]
    pub objects: Vec<String>,
    /// Format output using a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `exec` flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Container.
    pub container: String,
    /// Command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// `top` args.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Container.
    pub container: String,
    /// ps options.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `rename` args.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Container.
    pub container: String,
    /// New name.
    pub new_name: String,
}

/// `export` flags.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Container.
    pub container: String,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<String>,
}

/// `commit` flags.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Container.
    pub container: String,
    /// Repository[:tag].
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author.
    #[arg(short, long)]
    pub author: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true)]
    pub pause: bool,
}

/// `container` subcommands.
#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    /// List containers.
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Remove all stopped containers.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Run a command in a new container.
    Run(RunArgs),
    /// Create a new container.
    Create(RunArgs),
    /// Remove one or more containers.
    Rm(RmArgs),
    /// Display detailed information on one or more containers.
    Inspect(InspectArgs),
    /// Stop one or more running containers.
    Stop(StopArgs),
    /// Start one or more stopped containers.
    Start(StartArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
}

fn parse_bytes(s: &str) -> Result<i64> {
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

fn parse_ports(specs: &[String]) -> Result<(Map<String, Value>, Map<String, Value>)> {
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

fn env_files(files: &[String]) -> Result<Vec<String>> {
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

fn expand_env(list: &[String]) -> Vec<String> {
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

fn term_size() -> Option<(u16, u16)> {
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
fn create_body(a: &RunArgs) -> Result<Value> {
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
    let (policy, max) = match a.restart.split_once(':') {
        Some((p, n)) => (p.to_string(), n.parse::<i64>().unwrap_or(0)),
        None => (a.restart.clone(), 0),
    };
    if !["no", "always", "on-failure", "unless-stopped"].contains(&policy.as_str()) {
        bail!("invalid restart policy: {policy}");
    }
    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        let (name, vals) = u
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid ulimit argument: {u}"))?;
        let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
        ulimits.push(json!({"Name": name, "Soft": soft.parse::<i64>().unwrap_or(0), "Hard": hard.parse::<i64>().unwrap_or(0)}));
    }
    let mut tmpfs = Map::new();
    for t in &a.tmpfs {
        let (p, o) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(p.to_string(), json!(o));
    }
    let mut extra_hosts = Vec::new();
    for h in &a.add_host {
        extra_hosts.push(json!(h.replacen('=', ":", 1)));
    }
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
            "SecurityOpt": a.security_opt,
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

fn create_container(
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

struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enable() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(orig) = nix::sys::termios::tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut raw = orig.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
        RawMode(Some(orig))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// Streams an attached/hijacked connection to the terminal; returns when output ends.
fn stream_io(resp: berth_api::Response, tty: bool, stdin: bool) -> Result<()> {
    let Some(conn) = resp.conn else { return Ok(()) };
    if stdin {
        let w = conn.try_clone()?;
        std::thread::spawn(move || {
            let mut w = w;
            let mut buf = [0u8; 4096];
            let mut input = std::io::stdin();
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = w.shutdown_write();
        });
    }
    let mut r = conn;
    if tty {
        let mut out = std::io::stdout();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
    } else {
        let _ = berth_api::stdcopy::demux(&mut r, &mut std::io::stdout(), &mut std::io::stderr());
    }
    Ok(())
}

fn exit_code_for(e: &ClientError) -> i32 {
    let m = e.to_string();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        125
    }
}

/// `berth run` (`start` true) and `berth create`.
pub fn run(c: &mut Client, a: RunArgs, start: bool, dir: Option<&str>) -> Result<i32> {
    let id = match create_container(c, &a, dir) {
        Ok(id) => id,
        Err(e) => {
            let msg = e.to_string();
            if !msg.is_empty() {
                eprintln!("berth: {msg}");
            }
            return Ok(125);
        }
    };
    if !start {
        println!("{id}");
        return Ok(0);
    }
    let tty = a.tty;
    let attach = !a.detach;
    let mut attached = None;
    if attach {
        let q = format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
            if a.interactive { "&stdin=1" } else { "" }
        );
        match c.hijack(&q, None) {
            Ok(r) => attached = Some(r),
            Err(e) => {
                eprintln!("berth: {e}");
                return Ok(125);
            }
        }
    }
    let cond = if a.rm { "removed" } else { "next-exit" };
    let wait = c.request(
        "POST",
        &format!("/containers/{id}/wait?condition={cond}"),
        &[],
        None,
    );
    if let Err(e) = c.request("POST", &format!("/containers/{id}/start"), &[], None) {
        eprintln!("berth: {e}");
        return Ok(exit_code_for(&e));
    }
    if !attach {
        println!("{id}");
        return Ok(0);
    }
    let _raw = if tty && std::io::stdin().is_terminal() {
        Some(RawMode::enable())
    } else {
        None
    };
    if tty {
        if let Some((h, w)) = term_size() {
            let _ = c.request(
                "POST",
                &format!("/containers/{id}/resize?h={h}&w={w}"),
                &[],
                None,
            );
        }
    }
    if let Some(r) = attached {
        stream_io(r, tty, a.interactive)?;
    }
    drop(_raw);
    let code = match wait.and_then(|w| w.json()) {
        Ok(v) => v["StatusCode"].as_i64().unwrap_or(125) as i32,
        Err(_) => 125,
    };
    Ok(code)
}

fn each(containers: &[String], mut f: impl FnMut(&str) -> Result<(), ClientError>) -> i32 {
    let mut code = 0;
    for ct in containers {
        match f(ct) {
            Ok(()) => println!("{ct}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    code
}

/// `berth start`.
pub fn start(c: &mut Client, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        let id = &a.containers[0];
        let info = c.get(&format!("/containers/{id}/json"))?;
        let tty = info
            .pointer("/Config/Tty")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let r = c.hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
                if a.interactive { "&stdin=1" } else { "" }
            ),
            None,
        )?;
        let wait = c.request(
            "POST",
            &format!("/containers/{id}/wait?condition=next-exit"),
            &[],
            None,
        );
        c.request("POST", &format!("/containers/{id}/start"), &[], None)?;
        stream_io(r, tty, a.interactive)?;
        return Ok(wait
            .and_then(|w| w.json())
            .map(|v| v["StatusCode"].as_i64().unwrap_or(0) as i32)
            .unwrap_or(1));
    }
    Ok(each(&a.containers, |id| {
        c.request("POST", &format!("/containers/{id}/start"), &[], None)
            .map(|_| ())
    }))
}

/// `berth ps`.
pub fn ps(c: &mut Client, a: PsArgs) -> Result<i32> {
    let limit = if a.latest { Some(1) } else { a.last };
    let mut q = format!("/containers/json?all={}", (a.all || limit.is_some()) as u8);
    if let Some(n) = limit {
        q.push_str(&format!("&limit={n}"));
    }
    if !a.filter.is_empty() {
        q.push_str(&format!("&filters={}", enc(&filters_json(&a.filter))));
    }
    let list = c.get(&q)?.as_array().cloned().unwrap_or_default();
    if a.quiet {
        for x in &list {
            let id = x["Id"].as_str().unwrap_or("");
            println!(
                "{}",
                if a.no_trunc {
                    id
                } else {
                    &id[..id.len().min(12)]
                }
            );
        }
        return Ok(0);
    }
    let mut items = Vec::new();
    let mut rows = Vec::new();
    for x in &list {
        let id = x["Id"].as_str().unwrap_or("").to_string();
        let id = if a.no_trunc {
            id
        } else {
            id.chars().take(12).collect()
        };
        let cmd = x["Command"].as_str().unwrap_or("").to_string();
        let cmd = if a.no_trunc || cmd.chars().count() <= 20 {
            format!("\"{cmd}\"")
        } else {
            format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
        };
        let ports: Vec<String> = x["Ports"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                if p["PublicPort"].as_u64().unwrap_or(0) > 0 {
                    format!(
                        "{}:{}->{}/{}",
                        p["IP"].as_str().unwrap_or("0.0.0.0"),
                        p["PublicPort"],
                        p["PrivatePort"],
                        p["Type"].as_str().unwrap_or("tcp")
                    )
                } else {
                    format!(
                        "{}/{}",
                        p["PrivatePort"],
                        p["Type"].as_str().unwrap_or("tcp")
                    )
                }
            })
            .collect();
        let names: Vec<String> = x["Names"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.as_str().map(|s| s.trim_start_matches('/').to_string()))
            .collect();
        let row = vec![
            id.clone(),
            x["Image"].as_str().unwrap_or("").to_string(),
            cmd.clone(),
            output::ago(x["Created"].as_i64().unwrap_or(0)),
            x["Status"].as_str().unwrap_or("").to_string(),
            ports.join(", "),
            names.join(","),
        ];
        items.push(json!({"ID": id, "Image": row[1], "Command": cmd, "CreatedAt": row[3], "RunningFor": row[3], "Status": row[4], "Ports": row[5], "Names": row[6], "State": x["State"], "Labels": x["Labels"]}));
        rows.push(row);
    }
    if let Some(f) = &a.format {
        output::format(f, &items);
        return Ok(0);
    }
    output::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &rows,
    );
    Ok(0)
}

/// `berth stop` / `berth restart`.
pub fn stop(c: &mut Client, a: StopArgs, restart: bool) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(t) = a.time {
        q.push(format!("t={t}"));
    }
    if let Some(s) = &a.signal {
        q.push(format!("signal={}", enc(s)));
    }
    let verb = if restart { "restart" } else { "stop" };
    let qs = q.join("&");
    Ok(each(&a.containers, |id| {
        c.request("POST", &format!("/containers/{id}/{verb}?{qs}"), &[], None)
            .map(|_| ())
    }))
}

/// `berth kill`.
pub fn kill(c: &mut Client, a: KillArgs) -> Result<i32> {
    let sig = enc(&a.signal);
    Ok(each(&a.containers, |id| {
        c.request(
            "POST",
            &format!("/containers/{id}/kill?signal={sig}"),
            &[],
            None,
        )
        .map(|_| ())
    }))
}

/// `berth rm`.
pub fn rm(c: &mut Client, a: RmArgs) -> Result<i32> {
    Ok(each(&a.containers, |id| {
        c.request(
            "DELETE",
            &format!(
                "/containers/{id}?force={}&v={}",
                a.force as u8, a.volumes as u8
            ),
            &[],
            None,
        )
        .map(|_| ())
    }))
}

/// `berth wait`.
pub fn wait(c: &mut Client, a: IdsArgs) -> Result<i32> {
    let mut code = 0;
    for id in &a.containers {
        match c
            .request("POST", &format!("/containers/{id}/wait"), &[], None)
            .and_then(|r| r.json())
        {
            Ok(v) => println!("{}", v["StatusCode"]),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `berth pause|unpause`.
pub fn simple(c: &mut Client, a: IdsArgs, verb: &str) -> Result<i32> {
    Ok(each(&a.containers, |id| {
        c.request("POST", &format!("/containers/{id}/{verb}"), &[], None)
            .map(|_| ())
    }))
}

/// `berth logs`.
pub fn logs(c: &mut Client, a: LogsArgs) -> Result<i32> {
    let info = c.get(&format!("/containers/{}/json", a.container))?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut q = format!(
        "/containers/{}/logs?stdout=1&stderr=1&tail={}&follow={}&timestamps={}",
        a.container,
        enc(&a.tail),
        a.follow as u8,
        a.timestamps as u8
    );
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", enc(s)));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", enc(u)));
    }
    let mut r = c.request("GET", &q, &[], None)?;
    if tty {
        std::io::copy(r.reader(), &mut std::io::stdout())?;
    } else {
        berth_api::stdcopy::demux(r.reader(), &mut std::io::stdout(), &mut std::io::stderr())?;
    }
    Ok(0)
}

/// `berth inspect`.
pub fn inspect(c: &mut Client, a: InspectArgs) -> Result<i32> {
    let mut out = Vec::new();
    let mut code = 0;
    for o in &a.objects {
        match c
            .get(&format!("/containers/{o}/json"))
            .or_else(|_| c.get(&format!("/images/{o}/json")))
        {
            Ok(v) => out.push(v),
            Err(_) => {
                eprintln!("Error: No such object: {o}");
                code = 1;
            }
        }
    }
    match &a.format {
        Some(f) => output::format(f, &out),
        None => pretty(&json!(out)),
    }
    Ok(code)
}

/// `berth exec`.
pub fn exec(c: &mut Client, a: ExecArgs) -> Result<i32> {
    let body = json!({
        "User": a.user.clone().unwrap_or_default(), "Privileged": a.privileged, "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach, "AttachStdout": !a.detach, "AttachStderr": !a.detach,
        "Detach": a.detach, "Env": expand_env(&a.env), "WorkingDir": a.workdir.clone().unwrap_or_default(), "Cmd": a.command,
    });
    let id = match c
        .json("POST", &format!("/containers/{}/exec", a.container), &body)
        .and_then(|r| r.json())
    {
        Ok(v) => v["Id"].as_str().unwrap_or("").to_string(),
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    if a.detach {
        c.json(
            "POST",
            &format!("/exec/{id}/start"),
            &json!({"Detach": true, "Tty": a.tty}),
        )?;
        return Ok(0);
    }
    let r = c.hijack(
        &format!("/exec/{id}/start"),
        Some(&json!({"Detach": false, "Tty": a.tty})),
    )?;
    let _raw = if a.tty && std::io::stdin().is_terminal() {
        Some(RawMode::enable())
    } else {
        None
    };
    if a.tty {
        if let Some((h, w)) = term_size() {
            let _ = c.request("POST", &format!("/exec/{id}/resize?h={h}&w={w}"), &[], None);
        }
    }
    stream_io(r, a.tty, a.interactive)?;
    drop(_raw);
    for _ in 0..50 {
        let v = c.get(&format!("/exec/{id}/json"))?;
        if !v["Running"].as_bool().unwrap_or(false) {
            return Ok(v["ExitCode"].as_i64().unwrap_or(0) as i32);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(0)
}

/// `berth top`.
pub fn top(c: &mut Client, a: TopArgs) -> Result<i32> {
    let v = c.get(&format!("/containers/{}/top", a.container))?;
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .map(|t| t.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = v["Processes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            p.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .collect();
    output::table(&titles, &rows);
    Ok(0)
}

/// `berth rename`.
pub fn rename(c: &mut Client, a: RenameArgs) -> Result<i32> {
    c.request(
        "POST",
        &format!(
            "/containers/{}/rename?name={}",
            a.container,
            enc(&a.new_name)
        ),
        &[],
        None,
    )?;
    Ok(0)
}

/// `berth diff`.
pub fn diff(c: &mut Client, a: OneArgs) -> Result<i32> {
    let v = c.get(&format!("/containers/{}/changes", a.container))?;
    for ch in v.as_array().cloned().unwrap_or_default() {
        let k = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            _ => "D",
        };
        println!("{k} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}

/// `berth export`.
pub fn export(c: &mut Client, a: ExportArgs) -> Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut r = c.request(
        "GET",
        &format!("/containers/{}/export", a.container),
        &[],
        None,
    )?;
    match &a.output {
        Some(f) => {
            let mut out = std::fs::File::create(f)?;
            std::io::copy(r.reader(), &mut out)?;
        }
        None => {
            std::io::copy(r.reader(), &mut std::io::stdout())?;
        }
    }
    Ok(0)
}

/// `berth commit`.
pub fn commit(c: &mut Client, a: CommitArgs) -> Result<i32> {
    let mut q = vec![
        format!("container={}", enc(&a.container)),
        format!("pause={}", a.pause as u8),
    ];
    if let Some(r) = &a.reference {
        let (repo, tag) = match r.rsplit_once(':') {
            Some((x, t)) if !t.contains('/') => (x.to_string(), t.to_string()),
            _ => (r.clone(), String::new()),
        };
        q.push(format!("repo={}", enc(&repo)));
        q.push(format!("tag={}", enc(&tag)));
    }
    if let Some(m) = &a.message {
        q.push(format!("comment={}", enc(m)));
    }
    if let Some(au) = &a.author {
        q.push(format!("author={}", enc(au)));
    }
    for ch in &a.change {
        q.push(format!("changes={}", enc(ch)));
    }
    let v = c
        .json("POST", &format!("/commit?{}", q.join("&")), &json!({}))?
        .json()?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

/// `berth port`.
pub fn port(c: &mut Client, a: OneArgs) -> Result<i32> {
    let v = c.get(&format!("/containers/{}/json", a.container))?;
    if let Some(m) = v
        .pointer("/NetworkSettings/Ports")
        .and_then(Value::as_object)
    {
        for (k, list) in m {
            for b in list.as_array().cloned().unwrap_or_default() {
                let ip = b["HostIp"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("0.0.0.0");
                println!("{k} -> {ip}:{}", b["HostPort"].as_str().unwrap_or(""));
            }
        }
    }
    Ok(0)
}

/// `berth attach`.
pub fn attach(c: &mut Client, a: OneArgs) -> Result<i32> {
    let info = c.get(&format!("/containers/{}/json", a.container))?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = info
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let r = c.hijack(
        &format!(
            "/containers/{}/attach?stream=1&stdout=1&stderr=1{}",
            a.container,
            if stdin { "&stdin=1" } else { "" }
        ),
        None,
    )?;
    let wait = c.request(
        "POST",
        &format!("/containers/{}/wait", a.container),
        &[],
        None,
    );
    let _raw = if tty && std::io::stdin().is_terminal() {
        Some(RawMode::enable())
    } else {
        None
    };
    stream_io(r, tty, stdin)?;
    drop(_raw);
    Ok(wait
        .and_then(|w| w.json())
        .map(|v| v["StatusCode"].as_i64().unwrap_or(0) as i32)
        .unwrap_or(0))
}

/// `berth container ...`.
pub fn container(c: &mut Client, cmd: ContainerCmd, dir: Option<&str>) -> Result<i32> {
    match cmd {
        ContainerCmd::Ls(a) => ps(c, a),
        ContainerCmd::Prune { .. } => {
            let v = c.request("POST", "/containers/prune", &[], None)?.json()?;
            println!("Deleted Containers:");
            for d in v["ContainersDeleted"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                println!("{}", d.as_str().unwrap_or(""));
            }
            println!(
                "\nTotal reclaimed space: {}",
                output::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
            );
            Ok(0)
        }
        ContainerCmd::Run(a) => run(c, a, true, dir),
        ContainerCmd::Create(a) => run(c, a, false, dir),
        ContainerCmd::Rm(a) => rm(c, a),
        ContainerCmd::Inspect(a) => inspect(c, a),
        ContainerCmd::Stop(a) => stop(c, a, false),
        ContainerCmd::Start(a) => start(c, a),
        ContainerCmd::Logs(a) => logs(c, a),
    }
}
