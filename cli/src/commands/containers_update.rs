//! `berth update`: changes the resource limits and restart policy of containers, printing
//! each name as the docker CLI does.

use super::create::{parse_bytes, parse_restart};
use anyhow::{bail, Result};
use berth_api::Client;
use clap::Args;
use serde_json::{json, Map, Value};

/// `update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

fn body(a: &UpdateArgs) -> Result<Value> {
    let mut b = Map::new();
    let mut set = |k: &str, v: Value| {
        b.insert(k.to_string(), v);
    };
    if let Some(v) = a.cpu_period {
        set("CpuPeriod", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set("CpuQuota", json!(v));
    }
    if let Some(v) = a.cpu_shares {
        set("CpuShares", json!(v));
    }
    if let Some(v) = a.cpus {
        set("NanoCpus", json!((v * 1e9) as i64));
    }
    if let Some(v) = &a.memory {
        set("Memory", json!(parse_bytes(v)?));
    }
    if let Some(v) = &a.memory_swap {
        set("MemorySwap", json!(parse_bytes(v)?));
    }
    if let Some(v) = a.pids_limit {
        set("PidsLimit", json!(v));
    }
    if let Some(r) = &a.restart {
        let (name, max) = parse_restart(r)?;
        set(
            "RestartPolicy",
            json!({"Name": name, "MaximumRetryCount": max}),
        );
    }
    if b.is_empty() {
        bail!("you must provide one or more flags when using this command");
    }
    Ok(Value::Object(b))
}

/// `berth update`.
pub fn update(c: &mut Client, a: UpdateArgs) -> Result<i32> {
    let b = body(&a)?;
    let mut errs = Vec::new();
    for ctr in &a.containers {
        match c.json("POST", &format!("/containers/{ctr}/update"), &b) {
            Ok(_) => println!("{ctr}"),
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        return Ok(0);
    }
    eprintln!("{}", errs.join("\n"));
    Ok(1)
}
