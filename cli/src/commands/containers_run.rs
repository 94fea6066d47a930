//! Container lifecycle commands: run, create, start, stop, restart, kill, rm, wait, pause,
//! unpause.

use super::containers::{IdsArgs, KillArgs, RmArgs, StartArgs, StopArgs};
use super::containers_io::{keys_query, stream_io, RawMode};
use super::create::{create_container, RunArgs};
use anyhow::Result;
use berth_api::client::enc;
use berth_api::{Client, ClientError};
use serde_json::Value;
use std::io::IsTerminal;

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
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}{}",
            if a.interactive { "&stdin=1" } else { "" },
            keys_query(&a.detach_keys)
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
        super::winch::follow_size(c, &format!("/containers/{id}/resize"));
    }
    if let Some(r) = attached {
        if stream_io(r, tty, a.interactive, &a.detach_keys)? {
            return Ok(0);
        }
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
                "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}{}",
                if a.interactive { "&stdin=1" } else { "" },
                keys_query(&a.detach_keys)
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
        if stream_io(r, tty, a.interactive, &a.detach_keys)? {
            return Ok(0);
        }
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
        // A link (`/parent/alias`) is named without its slashes, as by docker's CLI.
        let id = id.trim_matches('/');
        c.request(
            "DELETE",
            &format!(
                "/containers/{id}?force={}&v={}&link={}",
                a.force as u8, a.volumes as u8, a.link as u8
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
