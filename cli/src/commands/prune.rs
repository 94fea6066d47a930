//! Every `prune`: `container`, `image [-a]`, `network`, `volume [-a]`, `builder [-a]` and
//! `system [-a] [--volumes]` — Docker's confirmation prompts, its filters and its output
//! ("Deleted Containers:" …, "Total reclaimed space: …"), one request per area.

use super::system::filters_json;
use crate::output;
use anyhow::{bail, Result};
use berth_api::client::enc;
use berth_api::Client;
use berth_core::json::strings;
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};

/// What a prune removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Containers,
    Networks,
    Volumes,
    Images,
    BuildCache,
}

/// The flags every area's `prune` takes (`-a` only where the area has it).
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=<key>=<value>").
    #[arg(long)]
    pub filter: Vec<String>,
}

/// `system prune` flags.
#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images and build cache, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>").
    #[arg(long)]
    pub filter: Vec<String>,
}

/// `builder` subcommands.
#[derive(Debug, Subcommand)]
pub enum BuilderCmd {
    /// Remove build cache.
    Prune {
        /// Remove all unused build cache, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        args: PruneArgs,
        /// Amount of disk space to keep for cache (accepted, as Docker's; the classic
        /// builder's cache is images).
        #[arg(long)]
        keep_storage: Option<String>,
    },
}

/// The confirmation Docker asks for before one area's prune.
fn warning(area: Area, all: bool) -> &'static str {
    match (area, all) {
        (Area::Containers, _) => {
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"
        }
        (Area::Networks, _) => {
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?"
        }
        (Area::Volumes, false) => {
            "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?"
        }
        (Area::Volumes, true) => {
            "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
        }
        (Area::Images, false) => {
            "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
        }
        (Area::Images, true) => {
            "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
        }
        (Area::BuildCache, false) => {
            "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
        }
        (Area::BuildCache, true) => {
            "WARNING! This will remove all build cache. Are you sure you want to continue?"
        }
    }
}

/// Asks `question` on stdout, as Docker's `[y/N]` prompt; true for `y` or `yes`.
fn confirm(question: &str) -> Result<bool> {
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// One area's prune request: the bytes reclaimed and what Docker prints for it (empty when
/// nothing was deleted).
pub fn request(c: &mut Client, area: Area, all: bool, filters: &[String]) -> Result<(u64, String)> {
    let mut f = filters.to_vec();
    let (path, extra) = match area {
        Area::Containers => ("/containers/prune", ""),
        Area::Networks => ("/networks/prune", ""),
        Area::Volumes => ("/volumes/prune", ""),
        Area::Images => ("/images/prune", ""),
        Area::BuildCache => ("/build/prune", if all { "all=1&" } else { "" }),
    };
    if all && area == Area::Volumes {
        f.push("all=true".into());
    }
    if all && area == Area::Images {
        f.push("dangling=false".into());
    }
    let mut url = format!("{path}?{extra}");
    if !f.is_empty() {
        url += &format!("filters={}", enc(&filters_json(&f)));
    }
    let url = url.trim_end_matches(['?', '&']).to_string();
    let v = c.request("POST", &url, &[], None)?.json()?;
    let reclaimed = v["SpaceReclaimed"].as_u64().unwrap_or(0);
    let (title, lines) = match area {
        Area::Containers => ("Deleted Containers:", strings(&v["ContainersDeleted"])),
        Area::Networks => ("Deleted Networks:", strings(&v["NetworksDeleted"])),
        Area::Volumes => ("Deleted Volumes:", strings(&v["VolumesDeleted"])),
        Area::BuildCache => ("Deleted build cache objects:", strings(&v["CachesDeleted"])),
        Area::Images => {
            let items = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
            let lines = items
                .iter()
                .flat_map(|d| {
                    let untagged = d["Untagged"].as_str().map(|u| format!("untagged: {u}"));
                    let deleted = d["Deleted"].as_str().map(|u| format!("deleted: {u}"));
                    untagged.into_iter().chain(deleted)
                })
                .collect();
            ("Deleted Images:", lines)
        }
    };
    if lines.is_empty() {
        return Ok((reclaimed, String::new()));
    }
    let mut out = format!("{title}\n");
    for l in lines {
        out += &l;
        out.push('\n');
    }
    Ok((reclaimed, out))
}

/// `docker <area> prune`: asks (unless `-f`), prunes, prints Docker's output.
pub fn one(c: &mut Client, area: Area, all: bool, args: &PruneArgs) -> Result<i32> {
    if !args.force && !confirm(warning(area, all))? {
        return Ok(0);
    }
    let (reclaimed, out) = request(c, area, all, &args.filter)?;
    if !out.is_empty() {
        println!("{out}");
    }
    if area != Area::Networks {
        println!(
            "Total reclaimed space: {}",
            output::human_size(reclaimed as f64)
        );
    }
    Ok(0)
}

/// `docker system prune`: containers, networks, (volumes,) images and build cache in turn.
pub fn system(c: &mut Client, a: &SystemPruneArgs) -> Result<i32> {
    if a.volumes && a.filter.iter().any(|f| f.starts_with("until=")) {
        bail!("ERROR: The \"until\" filter is not supported with \"--volumes\"");
    }
    if !a.force {
        let mut q = String::from(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
        );
        if a.volumes {
            q += "  - all anonymous volumes not used by at least one container\n";
        }
        q += if a.all {
            "  - all images without at least one container associated to them\n  - all build cache\n"
        } else {
            "  - all dangling images\n  - unused build cache\n"
        };
        q += "\nAre you sure you want to continue?";
        if !confirm(&q)? {
            return Ok(0);
        }
    }
    let mut areas = vec![Area::Containers, Area::Networks];
    if a.volumes {
        areas.push(Area::Volumes);
    }
    areas.extend([Area::Images, Area::BuildCache]);
    let mut total = 0;
    for area in areas {
        // Volumes: anonymous ones only, whatever `-a` says, as Docker's.
        let all = a.all && area != Area::Volumes;
        let (reclaimed, out) = request(c, area, all, &a.filter)?;
        total += reclaimed;
        if !out.is_empty() {
            println!("{out}");
        }
    }
    println!(
        "Total reclaimed space: {}",
        output::human_size(total as f64)
    );
    Ok(0)
}

/// `berth builder ...`.
pub fn builder(c: &mut Client, cmd: BuilderCmd) -> Result<i32> {
    match cmd {
        BuilderCmd::Prune { all, args, .. } => one(c, Area::BuildCache, all, &args),
    }
}
