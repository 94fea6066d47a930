//! `berth build`: tar the context (honouring `.dockerignore`) and stream the classic builder's
//! output, as the docker CLI's legacy builder does.

use anyhow::{bail, Result};
use berth_api::client::enc;
use berth_api::Client;
use clap::Args;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `build` flags.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Context folder, or `-` to read a tar from STDIN.
    pub context: String,
    /// Name and optionally a tag (several allowed).
    #[arg(short, long)]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile).
    #[arg(short, long)]
    pub file: Option<String>,
    /// Set build-time variables.
    #[arg(long)]
    pub build_arg: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image.
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Set metadata for an image.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build.
    #[arg(long)]
    pub network: Option<String>,
    /// Always remove intermediate containers.
    #[arg(long)]
    pub force_rm: bool,
}

fn patterns(ctx: &Path) -> Vec<(bool, String)> {
    std::fs::read_to_string(ctx.join(".dockerignore"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix('!') {
            Some(p) => (
                false,
                p.trim_start_matches('/').trim_end_matches('/').to_string(),
            ),
            None => (
                true,
                l.trim_start_matches('/').trim_end_matches('/').to_string(),
            ),
        })
        .collect()
}

fn glob(p: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                let p2 = if p.get(1) == Some(&b'*') {
                    &p[2..]
                } else {
                    &p[1..]
                };
                let double = p.get(1) == Some(&b'*');
                rec(p2, s) || (!s.is_empty() && (double || s[0] != b'/') && rec(p, &s[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => rec(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &s[1..]),
            _ => false,
        }
    }
    rec(p.as_bytes(), s.as_bytes())
}

fn ignored(rel: &str, pats: &[(bool, String)]) -> bool {
    let mut out = false;
    for (exclude, p) in pats {
        let hit = glob(p, rel) || rel.starts_with(&format!("{p}/"));
        if hit {
            out = *exclude;
        }
    }
    out
}

fn add_dir(
    b: &mut tar::Builder<Vec<u8>>,
    root: &Path,
    dir: &Path,
    pats: &[(bool, String)],
    keep: &[String],
) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
        if ignored(&rel, pats) && !keep.contains(&rel) {
            continue;
        }
        let m = std::fs::symlink_metadata(&p)?;
        if m.is_dir() {
            b.append_dir(&rel, &p)?;
            add_dir(b, root, &p, pats, keep)?;
        } else {
            b.append_path_with_name(&p, &rel)?;
        }
    }
    Ok(())
}

/// `berth build`.
pub fn build(c: &mut Client, a: BuildArgs) -> Result<i32> {
    let mut body: Vec<u8> = Vec::new();
    let dockerfile = a.file.clone().unwrap_or_else(|| "Dockerfile".into());
    if a.context == "-" {
        std::io::stdin().read_to_end(&mut body)?;
    } else {
        let ctx = PathBuf::from(&a.context);
        if !ctx.is_dir() {
            bail!("unable to prepare context: path {:?} not found", a.context);
        }
        let pats = patterns(&ctx);
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        add_dir(
            &mut b,
            &ctx,
            &ctx,
            &pats,
            &[dockerfile.clone(), ".dockerignore".into()],
        )?;
        body = b.into_inner()?;
    }
    if !a.quiet {
        println!(
            "Sending build context to berth daemon  {}",
            crate::output::human_size(body.len() as f64)
        );
    }
    let mut q = vec![
        format!("dockerfile={}", enc(&dockerfile)),
        "rm=1".to_string(),
        "version=1".to_string(),
    ];
    for t in &a.tag {
        q.push(format!("t={}", enc(t)));
    }
    let args: serde_json::Map<String, Value> = a
        .build_arg
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (
                kv.clone(),
                std::env::var(kv).map(Value::String).unwrap_or(Value::Null),
            ),
        })
        .collect();
    if !args.is_empty() {
        q.push(format!(
            "buildargs={}",
            enc(&Value::Object(args).to_string())
        ));
    }
    let labels: serde_json::Map<String, Value> = a
        .label
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect();
    if !labels.is_empty() {
        q.push(format!(
            "labels={}",
            enc(&Value::Object(labels).to_string())
        ));
    }
    if let Some(t) = &a.target {
        q.push(format!("target={}", enc(t)));
    }
    if a.no_cache {
        q.push("nocache=1".into());
    }
    if a.pull {
        q.push("pull=1".into());
    }
    if a.quiet {
        q.push("q=1".into());
    }
    if a.force_rm {
        q.push("forcerm=1".into());
    }
    if let Some(n) = &a.network {
        q.push(format!("networkmode={}", enc(n)));
    }
    let r = c.request(
        "POST",
        &format!("/build?{}", q.join("&")),
        &[("Content-Type", "application/x-tar")],
        Some(&mut body.as_slice()),
    )?;
    let mut code = 0;
    let mut id = String::new();
    r.messages(|v| {
        if let Some(e) = v["error"].as_str() {
            eprintln!("{e}");
            code = 1;
        } else if let Some(s) = v["stream"].as_str() {
            print!("{s}");
        } else if let Some(i) = v.pointer("/aux/ID").and_then(Value::as_str) {
            id = i.to_string();
        }
        Ok(())
    })?;
    if a.quiet && code == 0 {
        println!("{id}");
    }
    Ok(code)
}
