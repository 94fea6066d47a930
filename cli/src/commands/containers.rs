//! Container commands: run, create, start, ps, stop, restart, kill, rm, wait, pause, unpause,
//! logs, inspect, exec, top, rename, diff, export, commit, port, attach, container ...

pub use super::create::RunArgs;
use super::create::{create_container, expand_env, term_size};
use super::images::pretty;
pub use super::state::{commit, diff, export, port, rename, top};
use super::system::filters_json;
use crate::output;
use anyhow::Result;
use berth_api::client::enc;
use berth_api::{Client, ClientError};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::{IsTerminal, Read, Write};

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
