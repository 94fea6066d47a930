//! `volume create|ls|inspect|rm|prune`.

use super::network::kv_map;
use super::system::filters_json;
use crate::output;
use anyhow::Result;
use berth_api::client::enc;
use berth_api::Client;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// `volume create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Volume name (generated when omitted).
    pub name: Option<String>,
    /// Specify volume driver name.
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set driver specific options.
    #[arg(short, long)]
    pub opt: Vec<String>,
    /// Set metadata for a volume.
    #[arg(long)]
    pub label: Vec<String>,
}

/// `volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCmd {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Provide filter values (e.g. "dangling=true").
        #[arg(short, long)]
        filter: Vec<String>,
        /// Format output using a Go template.
        #[arg(long)]
        format: Option<String>,
        /// Only display volume names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes.
    Inspect {
        /// Volumes.
        #[arg(required = true)]
        volumes: Vec<String>,
        /// Format output using a Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Remove one or more volumes.
    #[command(alias = "remove")]
    Rm {
        /// Volumes.
        #[arg(required = true)]
        volumes: Vec<String>,
        /// Force the removal of one or more volumes.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove unused local volumes.
    Prune {
        /// Remove all unused volumes, not just anonymous ones.
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        args: super::prune::PruneArgs,
    },
}

/// `berth volume ...`.
pub fn volume(c: &mut Client, cmd: VolumeCmd) -> Result<i32> {
    match cmd {
        VolumeCmd::Create(a) => {
            let body = json!({
                "Name": a.name.unwrap_or_default(), "Driver": a.driver,
                "DriverOpts": kv_map(&a.opt), "Labels": kv_map(&a.label),
            });
            let v = c.json("POST", "/volumes/create", &body)?.json()?;
            println!("{}", v["Name"].as_str().unwrap_or_default());
            Ok(0)
        }
        VolumeCmd::Ls {
            filter,
            format,
            quiet,
        } => {
            let mut path = "/volumes".to_string();
            if !filter.is_empty() {
                path += &format!("?filters={}", enc(&filters_json(&filter)));
            }
            let v = c.get(&path)?;
            let mut vols = v["Volumes"].as_array().cloned().unwrap_or_default();
            vols.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            let s = |n: &Value, k: &str| n[k].as_str().unwrap_or_default().to_string();
            if quiet {
                for n in &vols {
                    println!("{}", s(n, "Name"));
                }
            } else if let Some(f) = &format {
                output::format(f, &vols);
            } else {
                let rows: Vec<Vec<String>> = vols
                    .iter()
                    .map(|n| vec![s(n, "Driver"), s(n, "Name")])
                    .collect();
                output::table(&["DRIVER", "VOLUME NAME"], &rows);
            }
            Ok(0)
        }
        VolumeCmd::Inspect { volumes, format } => {
            super::inspect_each(c, &volumes, format.as_deref(), |n| {
                format!("/volumes/{}", enc(n))
            })
        }
        VolumeCmd::Rm { volumes, force } => {
            let mut code = 0;
            let q = if force { "?force=1" } else { "" };
            for n in &volumes {
                match c.request("DELETE", &format!("/volumes/{}{q}", enc(n)), &[], None) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCmd::Prune { all, args } => {
            super::prune::one(c, super::prune::Area::Volumes, all, &args)
        }
    }
}
