//! Image commands: images, image ls|inspect|rm|prune|..., import, load, save, tag, rmi, history.

use super::system::filters_json;
use crate::output;
use anyhow::{bail, Result};
use berth_api::client::enc;
use berth_api::{Client, ClientError};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};

/// `images` flags.
#[derive(Debug, Args, Clone)]
pub struct ImagesArgs {
    /// Repository to show.
    pub repository: Option<String>,
    /// Show all images (default hides intermediate images).
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

/// `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images.
    Inspect {
        /// Images.
        #[arg(required = true)]
        images: Vec<String>,
        /// Format output using a Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        args: super::prune::PruneArgs,
    },
    /// Show the history of an image.
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Save one or more images to a tar archive.
    Save(SaveArgs),
}

/// `import` flags.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// File (or `-` for STDIN).
    pub file: String,
    /// Repository and tag.
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    pub message: Option<String>,
}

/// `load` flags.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    pub input: Option<String>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `save` flags.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<String>,
}

/// `tag` args.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// Source.
    pub source: String,
    /// Target.
    pub target: String,
}

/// `rmi` flags.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of the image.
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    pub no_prune: bool,
}

/// `history` flags.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Image.
    pub image: String,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print sizes and dates in human readable format.
    #[arg(long, default_value_t = true)]
    pub human: bool,
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

/// `berth images`.
pub fn images(c: &mut Client, a: ImagesArgs) -> Result<i32> {
    let mut f = a.filter.clone();
    if let Some(r) = &a.repository {
        f.push(format!("reference={r}"));
    }
    let mut q = format!("/images/json?all={}", if a.all { 1 } else { 0 });
    if !f.is_empty() {
        q.push_str(&format!("&filters={}", enc(&filters_json(&f))));
    }
    let list = c.get(&q)?;
    let list = list.as_array().cloned().unwrap_or_default();
    if a.quiet {
        for i in &list {
            println!("{}", short_id(i["Id"].as_str().unwrap_or(""), a.no_trunc));
        }
        return Ok(0);
    }
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for i in &list {
        let id = short_id(i["Id"].as_str().unwrap_or(""), a.no_trunc);
        let created = output::ago(i["Created"].as_i64().unwrap_or(0));
        let size = output::human_size(i["Size"].as_f64().unwrap_or(0.0));
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let digest = i["RepoDigests"]
            .as_array()
            .and_then(|d| d.first())
            .and_then(|d| d.as_str())
            .and_then(|d| d.split_once('@'))
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| "<none>".into());
        let pairs: Vec<(String, String)> = if tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            tags.iter()
                .map(|t| {
                    let (r, tg) = t.rsplit_once(':').unwrap_or((t, ""));
                    (r.to_string(), tg.to_string())
                })
                .collect()
        };
        for (repo, tag) in pairs {
            items.push(serde_json::json!({"ID": id, "Repository": repo, "Tag": tag, "CreatedSince": created, "Size": size, "Digest": digest}));
            let mut row = vec![repo, tag];
            if a.digests {
                row.push(digest.clone());
            }
            row.extend([id.clone(), created.clone(), size.clone()]);
            rows.push(row);
        }
    }
    if let Some(fmt) = &a.format {
        output::format(fmt, &items);
        return Ok(0);
    }
    let mut headers = vec!["REPOSITORY", "TAG"];
    if a.digests {
        headers.push("DIGEST");
    }
    headers.extend(["IMAGE ID", "CREATED", "SIZE"]);
    output::table(&headers, &rows);
    Ok(0)
}

/// `berth image ...`.
pub fn image(c: &mut Client, cmd: ImageCmd) -> Result<i32> {
    match cmd {
        ImageCmd::Ls(a) => images(c, a),
        ImageCmd::Inspect { images, format } => {
            super::inspect_each(c, &images, format.as_deref(), |i| {
                format!("/images/{i}/json")
            })
        }
        ImageCmd::Rm(a) => rmi(c, a),
        ImageCmd::Prune { all, args } => {
            super::prune::one(c, super::prune::Area::Images, all, &args)
        }
        ImageCmd::History(a) => history(c, a),
        ImageCmd::Tag(a) => tag(c, a),
        ImageCmd::Import(a) => import(c, a),
        ImageCmd::Load(a) => load(c, a),
        ImageCmd::Save(a) => save(c, a),
    }
}

fn stream_messages(r: berth_api::Response, quiet: bool) -> Result<i32> {
    let mut failed = None;
    r.messages(|v| {
        if let Some(e) = v["error"].as_str() {
            failed = Some(e.to_string());
            return Ok(());
        }
        if let Some(s) = v["stream"].as_str() {
            if !quiet || s.starts_with("Loaded") {
                print!("{s}");
            }
        } else if let Some(s) = v["status"].as_str() {
            if !quiet {
                match v["id"].as_str() {
                    Some(id) if !id.is_empty() => println!("{id}: {s}"),
                    _ => println!("{s}"),
                }
            }
        }
        Ok(())
    })?;
    if let Some(e) = failed {
        eprintln!("{e}");
        return Ok(1);
    }
    Ok(0)
}

/// `berth import`.
pub fn import(c: &mut Client, a: ImportArgs) -> Result<i32> {
    let mut reader: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(&a.file).map_err(|e| anyhow::anyhow!("open {}: {e}", a.file))?)
    };
    let mut q = vec!["fromSrc=-".to_string()];
    if let Some(r) = &a.reference {
        let (repo, tag) = match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
            _ => (r.clone(), String::new()),
        };
        q.push(format!("repo={}", enc(&repo)));
        if !tag.is_empty() {
            q.push(format!("tag={}", enc(&tag)));
        }
    }
    for ch in &a.change {
        q.push(format!("changes={}", enc(ch)));
    }
    if let Some(m) = &a.message {
        q.push(format!("message={}", enc(m)));
    }
    let r = c.request(
        "POST",
        &format!("/images/create?{}", q.join("&")),
        &[("Content-Type", "application/x-tar")],
        Some(&mut reader),
    )?;
    let mut code = 0;
    r.messages(|v| {
        if let Some(e) = v["error"].as_str() {
            eprintln!("{e}");
            code = 1;
        } else if let Some(s) = v["status"].as_str() {
            println!("{s}");
        }
        Ok(())
    })?;
    Ok(code)
}

/// `berth load`.
pub fn load(c: &mut Client, a: LoadArgs) -> Result<i32> {
    let mut reader: Box<dyn Read> = match &a.input {
        Some(f) => Box::new(std::fs::File::open(f).map_err(|e| anyhow::anyhow!("open {f}: {e}"))?),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin())
        }
    };
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let r = c.request(
        "POST",
        &format!("/images/load?quiet={}", if quiet { 1 } else { 0 }),
        &[("Content-Type", "application/x-tar")],
        Some(&mut reader),
    )?;
    stream_messages(r, a.quiet)
}

/// `berth save`.
pub fn save(c: &mut Client, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let q: Vec<String> = a
        .images
        .iter()
        .map(|i| format!("names={}", enc(i)))
        .collect();
    let mut r = c.request("GET", &format!("/images/get?{}", q.join("&")), &[], None)?;
    match &a.output {
        Some(f) => {
            let full = berth_core::atomic::Flush::Full;
            berth_core::atomic::write_atomic_with(std::path::Path::new(f), full, |out| {
                std::io::copy(r.reader(), out).map(drop)
            })?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            std::io::copy(r.reader(), &mut out)?;
            out.flush()?;
        }
    }
    Ok(0)
}

/// `berth tag`.
pub fn tag(c: &mut Client, a: TagArgs) -> Result<i32> {
    let (repo, tag) = match a.target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (a.target.clone(), "latest".to_string()),
    };
    c.request(
        "POST",
        &format!(
            "/images/{}/tag?repo={}&tag={}",
            a.source,
            enc(&repo),
            enc(&tag)
        ),
        &[],
        None,
    )?;
    Ok(0)
}

/// `berth rmi`.
pub fn rmi(c: &mut Client, a: RmiArgs) -> Result<i32> {
    let mut code = 0;
    for i in &a.images {
        match c
            .request(
                "DELETE",
                &format!(
                    "/images/{i}?force={}&noprune={}",
                    a.force as u8, a.no_prune as u8
                ),
                &[],
                None,
            )
            .and_then(|r| r.json())
        {
            Ok(v) => {
                for d in v.as_array().cloned().unwrap_or_default() {
                    if let Some(u) = d["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(u) = d["Deleted"].as_str() {
                        println!("Deleted: {u}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `berth history`.
pub fn history(c: &mut Client, a: HistoryArgs) -> Result<i32> {
    let v = c.get(&format!("/images/{}/history", a.image))?;
    let mut rows = Vec::new();
    for h in v.as_array().cloned().unwrap_or_default() {
        let id = h["Id"].as_str().unwrap_or("");
        let id = if id == "<missing>" {
            id.to_string()
        } else {
            short_id(id, a.no_trunc)
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let by = h["CreatedBy"].as_str().unwrap_or("").to_string();
        let by = if a.no_trunc || by.chars().count() <= 45 {
            by
        } else {
            format!("{}…", by.chars().take(44).collect::<String>())
        };
        rows.push(vec![
            id,
            output::ago(h["Created"].as_i64().unwrap_or(0)),
            by,
            output::human_size(h["Size"].as_f64().unwrap_or(0.0)),
            h["Comment"].as_str().unwrap_or("").to_string(),
        ]);
    }
    if !a.quiet {
        output::table(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &rows,
        );
    }
    Ok(0)
}

/// Whether an error is "no such image" (for run's pull-on-missing).
pub fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Daemon { status: 404, .. })
}

/// Prints a JSON value pretty.
pub fn pretty(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
