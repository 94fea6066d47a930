//! Container commands that stream: logs, exec, attach (with the terminal put in raw mode for
//! a TTY).

use super::containers::{AttachArgs, ExecArgs, LogsArgs};
use super::create::expand_env;
use anyhow::Result;
use berth_api::client::enc;
use berth_api::{detach, Client};
use serde_json::{json, Value};
use std::io::{IsTerminal, Read, Write};

pub struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    pub fn enable() -> RawMode {
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

/// The `&detachKeys=` part of an attach query (empty for the default keys).
pub fn keys_query(keys: &Option<String>) -> String {
    keys.as_deref()
        .map(|k| format!("&detachKeys={}", enc(k)))
        .unwrap_or_default()
}

/// Streams an attached/hijacked connection to the terminal; returns when output ends, or
/// `true` as soon as the user typed the detach keys (ctrl-p ctrl-q) on a TTY, as the docker
/// CLI does — the container keeps running.
pub fn stream_io(
    resp: berth_api::Response,
    tty: bool,
    stdin: bool,
    keys: &Option<String>,
) -> Result<bool> {
    let keys = match keys {
        Some(k) => detach::parse(k).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => detach::DEFAULT.to_vec(),
    };
    let Some(conn) = resp.conn else {
        return Ok(false);
    };
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if stdin {
        let w = conn.try_clone()?;
        let flag = detached.clone();
        std::thread::spawn(move || {
            let mut w = w;
            // With a TTY the client watches for the keys (as the docker CLI); otherwise the
            // daemon does.
            let mut escape = detach::Escape::new(if tty { keys } else { Vec::new() });
            let mut buf = [0u8; 4096];
            let mut input = std::io::stdin();
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let (fwd, done) = escape.feed(&buf[..n]);
                        if w.write_all(&fwd).is_err() {
                            break;
                        }
                        if done {
                            flag.store(true, std::sync::atomic::Ordering::SeqCst);
                            let _ = w.shutdown();
                            return;
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
    Ok(detached.load(std::sync::atomic::Ordering::SeqCst))
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
        super::winch::follow_size(c, &format!("/exec/{id}/resize"));
    }
    if stream_io(r, a.tty, a.interactive, &a.detach_keys)? {
        return Ok(0);
    }
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
pub fn attach(c: &mut Client, a: AttachArgs) -> Result<i32> {
    let info = c.get(&format!("/containers/{}/json", a.container))?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = !a.no_stdin
        && info
            .pointer("/Config/OpenStdin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let keys = keys_query(&a.detach_keys);
    let r = c.hijack(
        &format!(
            "/containers/{}/attach?stream=1&stdout=1&stderr=1{}{keys}",
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
    if tty {
        super::winch::follow_size(c, &format!("/containers/{}/resize", a.container));
    }
    if stream_io(r, tty, stdin, &a.detach_keys)? {
        // As the docker CLI: the escape error is reported, status 1.
        eprintln!("read escape sequence");
        return Ok(1);
    }
    drop(_raw);
    Ok(wait
        .and_then(|w| w.json())
        .map(|v| v["StatusCode"].as_i64().unwrap_or(0) as i32)
        .unwrap_or(0))
}
