//! Exec instances (`docker exec`): their records, the process an exec runs — `berth-monitor
//! exec`, a child of berthd joined to the container, with the container's user, environment,
//! capabilities and seccomp profile — and its pty for a TTY. Spawning holds the container's
//! op lock (a stop, kill or removal waits for it, or it for them); the exec's output is
//! served afterwards, without it.

use super::{exit, lock, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::jsonv::merge_env;
use crate::model::exec::ExecRecord;
use crate::state::Ctx;
use berth_api::types::container::ExecConfig;
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

/// Docker's refusals of an exec into `c`: not running, or paused.
fn check_runnable(c: &Container) -> ServiceResult<()> {
    if c.view(|r| r.state.restarting) {
        return Err(ServiceError::conflict(format!(
            "Container {} is restarting, wait until the container is running",
            c.id
        )));
    }
    if !c.running() {
        return Err(ServiceError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    if c.paused() {
        return Err(ServiceError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        )));
    }
    Ok(())
}

/// Records an exec of `config` (Docker's `ExecConfig`) in the running container `c`; its id.
pub fn create(ctx: &Ctx, c: &Container, config: ExecConfig) -> ServiceResult<String> {
    check_runnable(c)?;
    if config.cmd.is_empty() {
        return Err(ServiceError::bad_request("No exec command specified"));
    }
    let detach_keys = match config.detach_keys.as_str() {
        "" => Vec::new(),
        k => berth_api::detach::parse(k)
            .map_err(|_| ServiceError::internal(format!("Invalid escape keys ({k}) provided")))?,
    };
    let id: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let rec = ExecRecord {
        id: id.clone(),
        container: c.id.clone(),
        config,
        detach_keys,
        ..ExecRecord::default()
    };
    let action = format!("exec_create: {}", exec_command(&rec.config));
    if let Ok(mut m) = ctx.containers.execs.lock() {
        m.insert(id.clone(), rec);
    }
    ctx.events
        .publish("container", &action, &c.id, exec_attrs(c, &id));
    Ok(id)
}

/// A copy of exec `id`'s record.
pub fn get(ctx: &Ctx, id: &str) -> ServiceResult<ExecRecord> {
    ctx.containers
        .execs
        .lock()
        .ok()
        .and_then(|m| m.get(id).cloned())
        .ok_or_else(|| ServiceError::not_found(format!("No such exec instance: {id}")))
}

fn set(ctx: &Ctx, id: &str, f: impl FnOnce(&mut ExecRecord)) {
    if let Ok(mut m) = ctx.containers.execs.lock() {
        if let Some(r) = m.get_mut(id) {
            f(r);
        }
    }
}

/// A started exec: its process, and what serving its streams needs.
pub struct Spawned {
    /// The exec helper (stdin/stdout/stderr piped unless detached or on a pty).
    pub child: tokio::process::Child,
    /// The pty master of a TTY exec.
    pub master: Option<OwnedFd>,
    /// Its record as it was started.
    pub exec: ExecRecord,
    /// Its container.
    pub container: Arc<Container>,
    /// Whether it has a TTY.
    pub tty: bool,
}

/// Starts exec `id` (not yet started) in its running container: pipes for the streams it
/// attaches, none when `detach`, a pty for a TTY.
pub async fn start(ctx: &Ctx, id: &str, detach: bool) -> ServiceResult<Spawned> {
    let e = get(ctx, id)?;
    if e.running {
        return Err(ServiceError::conflict(format!(
            "Error: Exec command {} is already running",
            e.id
        )));
    }
    let c = ctx.containers.get(&e.container)?;
    check_runnable(&c)?;
    let tty = e.config.tty;
    // The user lookup reads the container's /etc/passwd and /etc/group: off the async
    // runtime, so a hostile file (however it is made) cannot hold a worker thread.
    let spec = {
        let (ctx, e) = (ctx.clone(), e.clone());
        tokio::task::spawn_blocking(move || process_spec(&ctx, &e))
            .await
            .map_err(|err| ServiceError::internal(format!("exec set-up: {err}")))??
    };
    let spec_path = ctx
        .containers
        .state_dir(&c.id)
        .join(format!("exec-{}.json", e.id));
    // Spawned under the op lock: the container cannot stop or go while its process joins it.
    let op = lock::op(&c).await?;
    check_runnable(&c)?;
    std::fs::write(&spec_path, spec.to_string())
        .map_err(|err| ServiceError::internal(format!("writing exec spec: {err}")))?;
    let mut cmd = tokio::process::Command::from(super::monitor_exe::command());
    cmd.arg("exec")
        .arg("--pid")
        .arg(c.pid().to_string())
        .arg("--spec")
        .arg(&spec_path);
    let attach_stdin = e.config.attach_stdin;
    // A detached exec learns through this pipe whether its command started (end of file)
    // or not (dockerd's text): its start is answered accordingly, as dockerd's.
    let status = if detach {
        let (r, w) = std::io::pipe()
            .map_err(|err| ServiceError::internal(format!("exec status pipe: {err}")))?;
        status_fd_3(&mut cmd, w.as_raw_fd());
        Some((r, w))
    } else {
        None
    };
    let mut master: Option<OwnedFd> = None;
    if tty {
        let (pty_master, s) =
            cloexec_pty().map_err(|err| ServiceError::internal(format!("openpty: {err}")))?;
        let dup = |s: &OwnedFd| {
            s.try_clone()
                .map_err(|e| ServiceError::internal(e.to_string()))
        };
        cmd.stdin(Stdio::from(dup(&s)?));
        cmd.stdout(Stdio::from(dup(&s)?));
        cmd.stderr(Stdio::from(s));
        master = Some(pty_master);
    } else {
        let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        cmd.stdin(piped(attach_stdin && !detach));
        cmd.stdout(piped(!detach));
        cmd.stderr(piped(!detach));
    }
    let mut child = cmd
        .spawn()
        .map_err(|err| ServiceError::internal(format!("starting exec: {err}")))?;
    // The helper and its child hold the only write ends now.
    let status = status.map(|(r, _w)| r);
    set(ctx, &e.id, |r| {
        r.running = true;
        r.pid = child.id().unwrap_or(0) as i64;
        r.master_fd = master.as_ref().map(|m| m.as_raw_fd());
    });
    ctx.events.publish(
        "container",
        &format!("exec_start: {}", exec_command(&e.config)),
        &c.id,
        exec_attrs(&c, &e.id),
    );
    // A detached exec keeps the op lock until its command started (or failed to): a `pause`
    // meanwhile would freeze the helper as it joins the container's cgroups, and
    // the start would wait for an `unpause` that may never come.
    let op = status.is_some().then_some(op);
    if let Some(r) = status {
        let failed = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut s = String::new();
            let _ = r.take(65536).read_to_string(&mut s);
            s
        })
        .await
        .unwrap_or_default();
        if !failed.is_empty() {
            let _ = child.wait().await;
            set(ctx, &e.id, |r| r.pid = 0);
            finish(ctx, &c, &e.id, 126);
            return Err(start_error(failed));
        }
    }
    drop(op);
    Ok(Spawned {
        child,
        master,
        exec: e,
        container: c,
        tty,
    })
}

/// Records the end of exec `id` in `c` with `code`.
pub fn finish(ctx: &Ctx, c: &Container, id: &str, code: i64) {
    set(ctx, id, |r| {
        r.running = false;
        r.exit_code = Some(code);
        // The pty master closes with the exec's streams: no resize may reach its number.
        r.master_fd = None;
    });
    let mut a = exec_attrs(c, id);
    a.insert("exitCode".into(), code.to_string());
    ctx.events.publish("container", "exec_die", &c.id, a);
}

/// The OCI process of exec `e`: the container's environment, user, capabilities, seccomp
/// profile and `no_new_privs`, with the exec's own settings on top.
fn process_spec(ctx: &Ctx, e: &ExecRecord) -> ServiceResult<Value> {
    let c = ctx.containers.get(&e.container)?;
    let rec = c.record();
    let cfg = &e.config;
    // The links' variables as at start, then the container's own, then the exec's.
    let base = merge_env(
        super::links::env(ctx, &rec, false)?,
        rec.config.env.as_deref().unwrap_or_default(),
    );
    let mut env = merge_env(base, cfg.env.as_deref().unwrap_or_default());
    let tty = cfg.tty;
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let user_s = Some(cfg.user.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(&rec.config.user);
    let root = format!("/proc/{}/root", c.pid());
    // The container's `--group-add` groups too, as dockerd gives an exec's process.
    let group_add = rec.host_config.group_add.as_deref().unwrap_or_default();
    let user = berth_runtime::user::resolve(std::path::Path::new(&root), user_s, group_add)
        .map_err(|e| ServiceError::bad_request(e.to_string()))?;
    let hc = &rec.host_config;
    let container_privileged = hc.privileged;
    let strs = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    let container_caps = berth_runtime::caps::compute(
        container_privileged,
        &strs(&hc.cap_add),
        &strs(&hc.cap_drop),
    );
    // Confined like the container: its seccomp profile (made for the container's
    // capabilities) and no_new_privs. `exec --privileged` adds every capability and nothing
    // else, as Docker's (moby sets only the exec's capabilities; runc applies the container's
    // filter to every process it joins to it).
    let caps = if cfg.privileged {
        berth_runtime::caps::compute(true, &[], &[])
    } else {
        container_caps.clone()
    };
    let sec = berth_runtime::security::parse(&strs(&hc.security_opt))
        .map_err(ServiceError::bad_request)?;
    let seccomp = sec
        .seccomp
        .oci(container_privileged, &container_caps)
        .map_err(|e| ServiceError::bad_request(e.to_string()))?;
    let cwd = Some(cfg.working_dir.as_str())
        .filter(|s| !s.is_empty())
        .or(Some(rec.config.working_dir.as_str()))
        .filter(|s| !s.is_empty())
        .unwrap_or("/");
    Ok(json!({
        "terminal": tty,
        "args": cfg.cmd,
        "env": env,
        "cwd": cwd,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": sec.no_new_privileges,
        "seccomp": seccomp,
        "rlimits": [],
    }))
}

/// dockerd's answer to a command that could not start: 400 when it is missing or may not be
/// run (moby's `translateContainerdStartErr`), else 500.
fn start_error(text: String) -> ServiceError {
    let t = text.to_lowercase();
    let invalid = ["executable file not found", "no such file or directory"]
        .iter()
        .any(|s| t.contains(s))
        || t.contains("permission denied");
    if invalid {
        ServiceError::bad_request(text)
    } else {
        ServiceError::internal(text)
    }
}

/// Passes `fd` to the exec helper `cmd` spawns as its descriptor 3 (`--status-fd 3`).
fn status_fd_3(cmd: &mut tokio::process::Command, fd: std::os::fd::RawFd) {
    cmd.arg("--status-fd").arg("3");
    // SAFETY: runs in the forked child before its exec and calls only async-signal-safe
    // functions: it places `fd` (still open there) at 3 without close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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

/// The command line in Docker's exec event actions (`exec_start: sh -c exit 3`).
fn exec_command(config: &ExecConfig) -> String {
    config.cmd.join(" ")
}

/// An exec event's attributes: the container's, plus `execID`.
fn exec_attrs(c: &Container, exec_id: &str) -> std::collections::BTreeMap<String, String> {
    let mut a = exit::attrs(c);
    a.insert("execID".into(), exec_id.to_string());
    a
}

/// Sends `sig` to the command an exec helper runs in the container (the helper's children:
/// the helper waits for its command and exits with its status); nothing without a helper.
pub fn signal_command(helper: Option<u32>, sig: i32) {
    let Some(helper) = helper.filter(|h| *h > 0) else {
        return;
    };
    let path = format!("/proc/{helper}/task/{helper}/children");
    let kids = std::fs::read_to_string(path).unwrap_or_default();
    for pid in kids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        // SAFETY: kill(2) on a child of a helper berthd spawned; no memory is involved.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}
