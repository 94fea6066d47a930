//! Container commands that read or copy a container's state: top, rename, diff, export,
//! commit, port.

use super::containers::{CommitArgs, ExportArgs, OneArgs, RenameArgs, TopArgs};
use crate::output;
use anyhow::{bail, Result};
use berth_api::client::enc;
use berth_api::Client;
use serde_json::{json, Value};
use std::io::IsTerminal;

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
