//! Exec endpoints: create, start (hijacked or detached), resize, inspect. Each exec runs as
//! `berth-monitor exec` — a child of berthd joined to the container — with pipes or a pty.
//! The output stream ends when the process exits (after draining its pipes), even if a
//! background child still holds them, as Docker's does.

use crate::containers::ExecRecord;
use crate::jsonv::{merge_env, strings};
use crate::server::http::{self, empty, ok_json, read_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use berth_api::stdcopy::Stream;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/containers/{id}/exec", create);
    r.add(Method::POST, "/exec/{id}/start", start);
    r.add(Method::POST, "/exec/{id}/resize", resize);
    r.add(Method::GET, "/exec/{id}/json", inspect);
}

async fn create(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    if !c.running() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let body: Value = read_json(req.into_body()).await?;
    if body["Cmd"].as_array().is_none_or(|a| a.is_empty()) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let id: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let rec = ExecRecord {
        id: id.clone(),
        container: c.id.clone(),
        config: body,
        running: false,
        exit_code: None,
        pid: 0,
    };
    let action = format!("exec_create: {}", exec_command(&rec.config));
    if let Ok(mut m) = ctx.containers.execs.lock() {
        m.insert(id.clone(), rec);
    }
    ctx.events
        .publish("container", &action, &c.id, exec_attrs(&c, &id));
    Ok(http::json(StatusCode::CREATED, &json!({"Id": id})))
}

fn get(ctx: &Ctx, id: &str) -> Result<ExecRecord, ApiError> {
    ctx.containers
        .execs
        .lock()
        .ok()
        .and_then(|m| m.get(id).cloned())
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
}

fn set(ctx: &Ctx, id: &str, f: impl FnOnce(&mut ExecRecord)) {
    if let Ok(mut m) = ctx.containers.execs.lock() {
        if let Some(r) = m.get_mut(id) {
            f(r);
        }
    }
}

fn process_spec(ctx: &Ctx, e: &ExecRecord) -> Result<Value, ApiError> {
    let c = ctx.containers.get(&e.container)?;
    let rec = c.record();
    let cfg = &e.config;
    let mut env = merge_env(
        strings(rec.pointer("/Config/Env")),
        &strings(cfg.get("Env")),
    );
    let tty = cfg["Tty"].as_bool().unwrap_or(false);
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let user_s = cfg["User"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or(rec.pointer("/Config/User").and_then(Value::as_str))
        .unwrap_or("");
    let root = format!("/proc/{}/root", c.pid());
    let user = berth_runtime::user::resolve(std::path::Path::new(&root), user_s, &[])
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let container_privileged = rec
        .pointer("/HostConfig/Privileged")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let container_caps = berth_runtime::caps::compute(
        container_privileged,
        &strs(&rec["HostConfig"]["CapAdd"]),
        &strs(&rec["HostConfig"]["CapDrop"]),
    );
    // Confined like the container: its seccomp profile (made for the container's
    // capabilities) and no_new_privs. `exec --privileged` adds every capability and nothing
    // else, as Docker's (moby sets only the exec's capabilities; runc applies the container's
    // filter to every process it joins to it).
    let caps = if cfg["Privileged"].as_bool().unwrap_or(false) {
        berth_runtime::caps::compute(true, &[], &[])
    } else {
        container_caps.clone()
    };
    let sec = berth_runtime::security::parse(&strs(&rec["HostConfig"]["SecurityOpt"]))
        .map_err(ApiError::bad_request)?;
    let seccomp = sec
        .seccomp
        .oci(container_privileged, &container_caps)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let cwd = cfg["WorkingDir"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or(rec.pointer("/Config/WorkingDir").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .unwrap_or("/");
    Ok(json!({
        "terminal": tty,
        "args": cfg["Cmd"],
        "env": env,
        "cwd": cwd,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": sec.no_new_privileges,
        "seccomp": seccomp,
        "rlimits": [],
    }))
}

/// A pty pair (master, slave) whose descriptors are close-on-exec from the start, so that no
/// monitor or other exec berthd spawns meanwhile inherits them (the slave reaches this
/// exec's helper as its 0-2 only).
fn cloexec_pty() -> nix::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    use std::os::fd::{FromRawFd, IntoRawFd};
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let m = nix::pty::posix_openpt(flags)?;
    nix::pty::grantpt(&m)?;
    nix::pty::unlockpt(&m)?;
    let name = nix::pty::ptsname_r(&m)?;
    // SAFETY: posix_openpt returned this descriptor, owned from now on by the OwnedFd.
    let master = unsafe { OwnedFd::from_raw_fd(m.into_raw_fd()) };
    let fd = nix::fcntl::open(name.as_str(), flags, nix::sys::stat::Mode::empty())?;
    // SAFETY: open returned this descriptor, owned from now on by the OwnedFd.
    Ok((master, unsafe { OwnedFd::from_raw_fd(fd) }))
}

async fn start(ctx: Ctx, mut req: Req) -> ApiResult {
    let e = get(&ctx, req.param("id"))?;
    if e.running {
        return Err(ApiError::conflict(format!(
            "Error: Exec command {} is already running",
            e.id
        )));
    }
    let c = ctx.containers.get(&e.container)?;
    if !c.running() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let upgrader = crate::server::hijack::take(&mut req.inner);
    let body: Value = {
        let b = http::read_body(req.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        serde_json::from_slice(&b).unwrap_or(json!({}))
    };
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let tty = e.config["Tty"].as_bool().unwrap_or(false);
    // The user lookup reads the container's /etc/passwd and /etc/group: off the async
    // runtime, so a hostile file (however it is made) cannot hold a worker thread.
    let spec = {
        let (ctx, e) = (ctx.clone(), e.clone());
        tokio::task::spawn_blocking(move || process_spec(&ctx, &e))
            .await
            .map_err(|err| ApiError::internal(format!("exec set-up: {err}")))??
    };
    let spec_path = ctx
        .containers
        .state_dir(&c.id)
        .join(format!("exec-{}.json", e.id));
    std::fs::write(&spec_path, spec.to_string())
        .map_err(|err| ApiError::internal(format!("writing exec spec: {err}")))?;
    let mut cmd = tokio::process::Command::from(crate::containers::monitor_exe::command());
    cmd.arg("exec")
        .arg("--pid")
        .arg(c.pid().to_string())
        .arg("--spec")
        .arg(&spec_path);
    let attach_stdin = e.config["AttachStdin"].as_bool().unwrap_or(false);
    let mut master: Option<OwnedFd> = None;
    if tty {
        let (pty_master, s) =
            cloexec_pty().map_err(|err| ApiError::internal(format!("openpty: {err}")))?;
        cmd.stdin(Stdio::from(
            s.try_clone()
                .map_err(|e| ApiError::internal(e.to_string()))?,
        ));
        cmd.stdout(Stdio::from(
            s.try_clone()
                .map_err(|e| ApiError::internal(e.to_string()))?,
        ));
        cmd.stderr(Stdio::from(s));
        master = Some(pty_master);
    } else {
        cmd.stdin(if attach_stdin && !detach {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(if detach {
            Stdio::null()
        } else {
            Stdio::piped()
        });
        cmd.stderr(if detach {
            Stdio::null()
        } else {
            Stdio::piped()
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|err| ApiError::internal(format!("starting exec: {err}")))?;
    let exec_id = e.id.clone();
    set(&ctx, &exec_id, |r| {
        r.running = true;
        r.pid = child.id().unwrap_or(0) as i64;
    });
    if let Some(m) = &master {
        if let Ok(mut map) = ctx.containers.execs.lock() {
            if let Some(r) = map.get_mut(&exec_id) {
                r.config["__master_fd"] = json!(m.as_raw_fd());
            }
        }
    }
    ctx.events.publish(
        "container",
        &format!("exec_start: {}", exec_command(&e.config)),
        &c.id,
        exec_attrs(&c, &exec_id),
    );
    let finish = {
        let ctx = ctx.clone();
        let id = exec_id.clone();
        move |code: i64| {
            set(&ctx, &id, |r| {
                r.running = false;
                r.exit_code = Some(code);
            });
            let mut a = exec_attrs(&c, &id);
            a.insert("exitCode".into(), code.to_string());
            ctx.events.publish("container", "exec_die", &c.id, a);
        }
    };
    if detach {
        tokio::spawn(async move {
            let code = child
                .wait()
                .await
                .ok()
                .and_then(|s| s.code())
                .unwrap_or(126) as i64;
            finish(code);
        });
        return Ok(empty(StatusCode::OK));
    }
    let (resp, upgraded) = upgrader.respond(!tty);
    tokio::spawn(async move {
        let Some(io) = upgraded.await else {
            let _ = child.kill().await;
            return;
        };
        let (mut cr, mut cw) = tokio::io::split(io);
        let (tx, rx) = tokio::sync::mpsc::channel::<(Stream, Vec<u8>)>(32);
        let mut readers = Vec::new();
        let up = if let Some(m) = master {
            let mf = std::fs::File::from(m);
            let Ok(rf) = mf.try_clone() else { return };
            let mut mw = tokio::fs::File::from_std(mf);
            readers.push(forward(Stream::Stdout, tokio::fs::File::from_std(rf), tx));
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut cr, &mut mw).await;
            })
        } else {
            let stdin = child.stdin.take();
            if let Some(o) = child.stdout.take() {
                readers.push(forward(Stream::Stdout, o, tx.clone()));
            }
            if let Some(e) = child.stderr.take() {
                readers.push(forward(Stream::Stderr, e, tx));
            }
            tokio::spawn(async move {
                if let Some(mut s) = stdin {
                    let _ = tokio::io::copy(&mut cr, &mut s).await;
                }
            })
        };
        let code = pump(rx, &mut child, &mut cw, !tty).await;
        for r in readers {
            r.abort();
        }
        up.abort();
        finish(code);
        let _ = cw.shutdown().await;
    });
    Ok(resp)
}

/// The command line in Docker's exec event actions (`exec_start: sh -c exit 3`).
fn exec_command(config: &Value) -> String {
    strings(Some(&config["Cmd"])).join(" ")
}

/// An exec event's attributes: the container's, plus `execID`.
fn exec_attrs(
    c: &crate::containers::Container,
    exec_id: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut a = crate::containers::exit::attrs(c);
    a.insert("execID".into(), exec_id.to_string());
    a
}

/// Once the exec's process has exited, output already in its pipes is still forwarded until
/// they stay quiet this long...
const DRAIN_QUIET: std::time::Duration = std::time::Duration::from_millis(100);
/// ...and for at most this long: a background child may hold them open for ever, and Docker
/// ends the stream when the process exits.
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads `r` into `tx` as `(stream, bytes)` until EOF.
fn forward(
    stream: Stream,
    mut r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tx: tokio::sync::mpsc::Sender<(Stream, Vec<u8>)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16384];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 || tx.send((stream, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    })
}

/// Copies output to the client (stdcopy frames when `framed`) until the process has exited
/// and its pipes are drained; returns its exit code.
async fn pump(
    mut rx: tokio::sync::mpsc::Receiver<(Stream, Vec<u8>)>,
    child: &mut tokio::process::Child,
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    framed: bool,
) -> i64 {
    let code = |s: std::io::Result<std::process::ExitStatus>| {
        s.ok().and_then(|s| s.code()).unwrap_or(126) as i64
    };
    let mut exited: Option<(i64, tokio::time::Instant)> = None;
    loop {
        let msg = match exited {
            Some((_, deadline)) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(DRAIN_QUIET.min(left), rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            None => tokio::select! {
                m = rx.recv() => m,
                s = child.wait() => {
                    exited = Some((code(s), tokio::time::Instant::now() + DRAIN_MAX));
                    continue;
                }
            },
        };
        let Some((stream, data)) = msg else { break };
        let f = if framed {
            berth_api::stdcopy::frame(stream, &data)
        } else {
            data
        };
        if out.write_all(&f).await.is_err() {
            break;
        }
    }
    match exited {
        Some((c, _)) => c,
        None => code(child.wait().await),
    }
}

async fn resize(ctx: Ctx, req: Req) -> ApiResult {
    let e = get(&ctx, req.param("id"))?;
    if let Some(fd) = e.config["__master_fd"].as_i64() {
        let ws = libc::winsize {
            ws_row: req.query.int("h")?.unwrap_or(24) as u16,
            ws_col: req.query.int("w")?.unwrap_or(80) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on the exec's pty master, which lives while the exec runs.
        unsafe { libc::ioctl(fd as i32, libc::TIOCSWINSZ, &ws) };
    }
    Ok(empty(StatusCode::CREATED))
}

async fn inspect(ctx: Ctx, req: Req) -> ApiResult {
    let e = get(&ctx, req.param("id"))?;
    let mut cfg = e.config.clone();
    if let Some(o) = cfg.as_object_mut() {
        o.remove("__master_fd");
    }
    ok_json(&json!({
        "ID": e.id, "Running": e.running, "ExitCode": e.exit_code, "ProcessConfig": {"tty": cfg["Tty"], "entrypoint": cfg["Cmd"][0], "arguments": cfg["Cmd"].as_array().map(|a| a[1..].to_vec()).unwrap_or_default(), "privileged": cfg["Privileged"], "user": cfg["User"]},
        "OpenStdin": cfg["AttachStdin"], "OpenStderr": cfg["AttachStderr"], "OpenStdout": cfg["AttachStdout"],
        "CanRemove": false, "ContainerID": e.container, "DetachKeys": "", "Pid": e.pid,
    }))
}
