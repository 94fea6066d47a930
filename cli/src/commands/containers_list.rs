//! Container commands that list and inspect: ps, inspect.

use super::containers::{InspectArgs, PsArgs};
use super::images::pretty;
use super::system::filters_json;
use crate::output;
use anyhow::Result;
use berth_api::client::enc;
use berth_api::Client;
use serde_json::json;

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
