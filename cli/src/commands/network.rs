//! `network create|ls|inspect|rm|connect|disconnect|prune`.

use super::system::filters_json;
use crate::output;
use anyhow::Result;
use berth_api::client::enc;
use berth_api::Client;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// `network create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Network name.
    pub name: String,
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long)]
    pub ip_range: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long)]
    pub opt: Vec<String>,
    /// Set metadata on a network.
    #[arg(long)]
    pub label: Vec<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment.
    #[arg(long)]
    pub attachable: bool,
    /// Enable or disable IPv6 networking.
    #[arg(long)]
    pub ipv6: bool,
}

/// `network ls` flags.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge").
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `network connect` flags.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Network.
    pub network: String,
    /// Container.
    pub container: String,
    /// Add network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104").
    #[arg(long)]
    pub ip: Option<String>,
}

/// `network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
        /// Format output using a Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
        /// Do not error if the network does not exist.
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect {
        /// Network.
        network: String,
        /// Container.
        container: String,
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove all unused networks.
    Prune(super::prune::PruneArgs),
}

/// `KEY=VALUE` pairs as a JSON object.
pub fn kv_map(items: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for i in items {
        let (k, v) = i.split_once('=').unwrap_or((i, ""));
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Value::Object(m)
}

fn create(c: &mut Client, a: CreateArgs) -> Result<i32> {
    let config: Vec<Value> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut p = json!({ "Subnet": s });
            if let Some(g) = a.gateway.get(i) {
                p["Gateway"] = json!(g);
            }
            if let Some(r) = a.ip_range.get(i) {
                p["IPRange"] = json!(r);
            }
            p
        })
        .collect();
    let body = json!({
        "Name": a.name, "Driver": a.driver, "Options": kv_map(&a.opt), "Labels": kv_map(&a.label),
        "Internal": a.internal, "Attachable": a.attachable, "EnableIPv6": a.ipv6,
        "IPAM": { "Driver": "default", "Config": config, "Options": {} },
    });
    let v = c.json("POST", "/networks/create", &body)?.json()?;
    if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

fn ls(c: &mut Client, a: LsArgs) -> Result<i32> {
    let mut path = "/networks".to_string();
    if !a.filter.is_empty() {
        path += &format!("?filters={}", enc(&filters_json(&a.filter)));
    }
    let mut nets = c.get(&path)?.as_array().cloned().unwrap_or_default();
    nets.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let id = |n: &Value| {
        let id = n["Id"].as_str().unwrap_or_default();
        if a.no_trunc {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for n in &nets {
            println!("{}", id(n));
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        let items: Vec<Value> = nets
            .iter()
            .map(|n| {
                json!({ "ID": id(n), "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                "IPv6": n["EnableIPv6"], "Internal": n["Internal"], "CreatedAt": n["Created"] })
            })
            .collect();
        output::format(f, &items);
        return Ok(0);
    }
    let s = |n: &Value, k: &str| n[k].as_str().unwrap_or_default().to_string();
    let rows: Vec<Vec<String>> = nets
        .iter()
        .map(|n| vec![id(n), s(n, "Name"), s(n, "Driver"), s(n, "Scope")])
        .collect();
    output::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
    Ok(0)
}

/// `berth network ...`.
pub fn network(c: &mut Client, cmd: NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create(a) => create(c, a),
        NetworkCmd::Ls(a) => ls(c, a),
        NetworkCmd::Inspect { networks, format } => {
            super::inspect_each(c, &networks, format.as_deref(), |n| {
                format!("/networks/{}", enc(n))
            })
        }
        NetworkCmd::Rm { networks, force } => {
            let mut code = 0;
            for n in &networks {
                match c.request("DELETE", &format!("/networks/{}", enc(n)), &[], None) {
                    Ok(_) => println!("{n}"),
                    Err(berth_api::ClientError::Daemon { status: 404, .. }) if force => {}
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCmd::Connect(a) => {
            let mut ep = json!({ "Aliases": a.alias });
            if let Some(ip) = &a.ip {
                ep["IPAMConfig"] = json!({ "IPv4Address": ip });
            }
            let body = json!({ "Container": a.container, "EndpointConfig": ep });
            let path = format!("/networks/{}/connect", enc(&a.network));
            c.json("POST", &path, &body)?;
            Ok(0)
        }
        NetworkCmd::Disconnect {
            network,
            container,
            force,
        } => {
            let body = json!({ "Container": container, "Force": force });
            let path = format!("/networks/{}/disconnect", enc(&network));
            c.json("POST", &path, &body)?;
            Ok(0)
        }
        NetworkCmd::Prune(a) => super::prune::one(c, super::prune::Area::Networks, false, &a),
    }
}
