//! `berth build`: tar the context (honouring `.dockerignore`) and stream the classic builder's
//! output, as the docker CLI's legacy builder does.

use anyhow::{bail, Result};
use berth_api::client::enc;
use berth_api::Client;
use berth_build::ignore::Ignore;
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
    /// Add a custom host-to-IP mapping (host:ip) for RUN.
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Size of /dev/shm for RUN.
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Ulimit options for RUN.
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Images to consider as cache sources.
    #[arg(long)]
    pub cache_from: Vec<String>,
    /// Memory limit for RUN.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory plus swap limit for RUN ('-1' for unlimited swap).
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight) for RUN.
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// CFS period for RUN.
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// CFS quota for RUN.
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow RUN (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow RUN.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Parent cgroup for RUN containers.
    #[arg(long)]
    pub cgroup_parent: Option<String>,
}

/// The context's `.dockerignore`, with the exceptions the docker CLI adds so that the
/// Dockerfile (when in the context) and `.dockerignore` itself are always sent.
fn patterns(ctx: &Path, dockerfile: Option<&str>) -> Result<Ignore> {
    let text = match std::fs::read_to_string(ctx.join(".dockerignore")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => bail!("reading .dockerignore: {e}"),
    };
    let mut ig = Ignore::parse(&text)?;
    for keep in std::iter::once(".dockerignore").chain(dockerfile) {
        if ig.excluded(keep) {
            ig.push(&format!("!{keep}"))?;
        }
    }
    Ok(ig)
}

/// Adds the folder `dir` of the context `root` to the tar, as Docker's walk does: excluded
/// files left out, an excluded folder skipped unless an exception names something in it.
fn add_dir(b: &mut tar::Builder<Vec<u8>>, root: &Path, dir: &Path, ig: &Ignore) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
        let excluded = ig.excluded(&rel);
        let m = std::fs::symlink_metadata(&p)?;
        if m.is_dir() {
            if !excluded {
                b.append_dir(&rel, &p)?;
                add_dir(b, root, &p, ig)?;
            } else if ig.walk_excluded_dir(&rel) {
                add_dir(b, root, &p, ig)?;
            }
        } else if !excluded {
            b.append_path_with_name(&p, &rel)?;
        }
    }
    Ok(())
}

/// Where `-f` points, as the docker CLI resolves it (relative to the current folder): a path
/// inside the context, or the text of a Dockerfile outside it (or from stdin with `-f -`).
enum Dockerfile {
    InContext(String),
    Outside(Vec<u8>),
}

fn dockerfile(ctx: &Path, file: Option<&str>) -> Result<Dockerfile> {
    let Some(f) = file else {
        // As the docker CLI: a lower-case `dockerfile` when there is no `Dockerfile`.
        let lower = !ctx.join("Dockerfile").exists() && ctx.join("dockerfile").exists();
        let name = if lower { "dockerfile" } else { "Dockerfile" };
        return Ok(Dockerfile::InContext(name.into()));
    };
    if f == "-" {
        let mut text = Vec::new();
        std::io::stdin().read_to_end(&mut text)?;
        return Ok(Dockerfile::Outside(text));
    }
    let abs_ctx = std::fs::canonicalize(ctx)?;
    let abs = std::path::absolute(f)?;
    let abs = match std::fs::canonicalize(&abs) {
        Ok(p) => p,
        Err(_) => bail!("Cannot locate Dockerfile: {:?}", abs.display().to_string()),
    };
    match abs.strip_prefix(&abs_ctx) {
        Ok(rel) => Ok(Dockerfile::InContext(rel.display().to_string())),
        Err(_) => Ok(Dockerfile::Outside(std::fs::read(&abs)?)),
    }
}

/// Adds a Dockerfile from outside the context under a random name, listing it in the
/// `.dockerignore` sent, so the daemon drops it from the context once read — as the docker
/// CLI does. Returns the name.
fn add_outside_dockerfile(
    b: &mut tar::Builder<Vec<u8>>,
    ctx: &Path,
    text: &[u8],
) -> Result<String> {
    let name = format!(".dockerfile.{:020x}", rand_id());
    let mut ignore = std::fs::read(ctx.join(".dockerignore")).unwrap_or_default();
    ignore.extend_from_slice(format!("\n{name}\n").as_bytes());
    for (path, data) in [(name.as_str(), text), (".dockerignore", &ignore[..])] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, data)?;
    }
    Ok(name)
}

/// 80 random bits (from the kernel's generator).
fn rand_id() -> u128 {
    let mut buf = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf[..10]);
    }
    u128::from_le_bytes(buf)
}

/// Whether `data` is a tar (`ustar` at 257) or a compressed stream (gzip, bzip2, xz, zstd).
fn is_archive(data: &[u8]) -> bool {
    data.get(257..262) == Some(b"ustar".as_slice())
        || [
            &[0x1f, 0x8b][..],
            b"BZh",
            &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
            &[0x28, 0xb5, 0x2f, 0xfd],
        ]
        .iter()
        .any(|m| data.starts_with(m))
}

/// `berth build`.
pub fn build(c: &mut Client, a: BuildArgs) -> Result<i32> {
    let mut body: Vec<u8> = Vec::new();
    let mut dockerfile = a.file.clone().unwrap_or_else(|| "Dockerfile".into());
    if a.context == "-" {
        std::io::stdin().read_to_end(&mut body)?;
        if !is_archive(&body) {
            // A Dockerfile alone: sent as the only file of a context, as the docker CLI does.
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            b.append_data(&mut h, "Dockerfile", body.as_slice())?;
            body = b.into_inner()?;
        }
    } else {
        let ctx = PathBuf::from(&a.context);
        if !ctx.is_dir() {
            bail!("unable to prepare context: path {:?} not found", a.context);
        }
        let df = self::dockerfile(&ctx, a.file.as_deref())?;
        let ig = match &df {
            Dockerfile::InContext(rel) => patterns(&ctx, Some(rel))?,
            Dockerfile::Outside(_) => patterns(&ctx, None)?,
        };
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        match df {
            Dockerfile::InContext(rel) => {
                add_dir(&mut b, &ctx, &ctx, &ig)?;
                dockerfile = rel;
            }
            Dockerfile::Outside(text) => {
                // The context's own .dockerignore is replaced by the one naming the file.
                let mut ig = ig;
                ig.push(".dockerignore")?;
                add_dir(&mut b, &ctx, &ctx, &ig)?;
                dockerfile = add_outside_dockerfile(&mut b, &ctx, &text)?;
            }
        }
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
    for h in super::create::parse_extra_hosts(&a.add_host) {
        q.push(format!("extrahosts={}", enc(&h)));
    }
    if let Some(s) = &a.shm_size {
        q.push(format!("shmsize={}", super::create::parse_bytes(s)?));
    }
    if !a.ulimit.is_empty() {
        let u = Value::Array(super::create::parse_ulimits(&a.ulimit)?);
        q.push(format!("ulimits={}", enc(&u.to_string())));
    }
    for (param, v) in [("memory", &a.memory), ("memswap", &a.memory_swap)] {
        if let Some(v) = v {
            q.push(format!("{param}={}", super::create::parse_bytes(v)?));
        }
    }
    for (param, v) in [
        ("cpushares", a.cpu_shares),
        ("cpuperiod", a.cpu_period),
        ("cpuquota", a.cpu_quota),
    ] {
        if let Some(v) = v {
            q.push(format!("{param}={v}"));
        }
    }
    for (param, v) in [
        ("cpusetcpus", &a.cpuset_cpus),
        ("cpusetmems", &a.cpuset_mems),
        ("cgroupparent", &a.cgroup_parent),
    ] {
        if let Some(v) = v {
            q.push(format!("{param}={}", enc(v)));
        }
    }
    if !a.cache_from.is_empty() {
        q.push(format!(
            "cachefrom={}",
            enc(&serde_json::json!(a.cache_from).to_string())
        ));
    }
    let r = c.request(
        "POST",
        &format!("/build?{}", q.join("&")),
        &[("Content-Type", "application/x-tar")],
        Some(&mut body.as_slice()),
    )?;
    let mut code = 0;
    let mut id = String::new();
    let mut printed = false;
    r.messages(|v| {
        if let Some(e) = v["error"].as_str() {
            eprintln!("{e}");
            code = 1;
        } else if let Some(s) = v["stream"].as_str() {
            print!("{s}");
            printed = true;
        } else if let Some(i) = v.pointer("/aux/ID").and_then(Value::as_str) {
            id = i.to_string();
        }
        Ok(())
    })?;
    // Under -q the daemon's stream is the image ID alone (as dockerd's); an older daemon that
    // sent nothing gets the aux ID printed.
    if a.quiet && code == 0 && !printed {
        println!("{id}");
    }
    Ok(code)
}
