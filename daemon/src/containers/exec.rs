//! Exec instances: their records, the process spec an exec runs with (the container's user,
//! environment, capabilities, seccomp profile), and the pty of a TTY exec.

use crate::containers::ExecRecord;
use crate::jsonv::{merge_env, strings};
use crate::server::http::{self, read_json, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::os::fd::OwnedFd;

pub async fn create(ctx: Ctx, req: Req) -> ApiResult {
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

pub fn get(ctx: &Ctx, id: &str) -> Result<ExecRecord, ApiError> {
    ctx.containers
        .execs
        .lock()
        .ok()
        .and_then(|m| m.get(id).cloned())
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
}

pub fn set(ctx: &Ctx, id: &str, f: impl FnOnce(&mut ExecRecord)) {
    if let Ok(mut m) = ctx.containers.execs.lock() {
        if let Some(r) = m.get_mut(id) {
            f(r);
        }
    }
}

pub fn process_spec(ctx: &Ctx, e: &ExecRecord) -> Result<Value, ApiError> {
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
pub fn cloexec_pty() -> nix::Result<(OwnedFd, OwnedFd)> {
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
pub fn exec_command(config: &Value) -> String {
    strings(Some(&config["Cmd"])).join(" ")
}

/// An exec event's attributes: the container's, plus `execID`.
pub fn exec_attrs(
    c: &crate::containers::Container,
    exec_id: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut a = crate::containers::exit::attrs(c);
    a.insert("execID".into(), exec_id.to_string());
    a
}
