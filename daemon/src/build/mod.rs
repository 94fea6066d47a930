//! The classic builder behind `POST /build`: Dockerfile steps executed one by one, each
//! producing an image (config steps) or a layer (`RUN` in a real container, `COPY`/`ADD` from
//! a staged tree), with Docker's cache (same parent image + same `created_by`), multi-stage
//! builds and Docker's output stream.

mod cache;
mod chown;
pub mod copy;
pub mod events;
mod fetch;
mod layer;
mod runlog;
mod steps;
mod view;

use crate::state::Ctx;
use berth_build::parse::Instruction;
use berth_image::Image;
pub use events::{BuildEvent, BuildSink, Ready};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// What the client asked for.
#[derive(Debug, Clone, Default)]
pub struct BuildOpts {
    /// `-t` (several).
    pub tags: Vec<String>,
    /// Dockerfile path inside the context.
    pub dockerfile: String,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// Remove intermediate containers after a successful build.
    pub rm: bool,
    /// Always remove intermediate containers.
    pub force_rm: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--network`.
    pub network: String,
    /// `--add-host` (`name:ip`), for `RUN`.
    pub extra_hosts: Vec<String>,
    /// `--shm-size` in bytes (0: the default), for `RUN`.
    pub shm_size: i64,
    /// Resource limits for `RUN` (`--memory`, `--cpu-shares`, ...) as `HostConfig` fields
    /// (`Memory`, `MemorySwap`, `CpuShares`, `CpuPeriod`, `CpuQuota`, `CpusetCpus`,
    /// `CpusetMems`, `CgroupParent`); only those given.
    pub resources: serde_json::Map<String, serde_json::Value>,
    /// `--cache-from` images.
    pub cache_from: Vec<String>,
    /// `--ulimit`s (`{"Name","Soft","Hard"}` as `HostConfig.Ulimits`), for `RUN`.
    pub ulimits: Vec<serde_json::Value>,
}

/// A stage being built.
pub(crate) struct Stage {
    pub name: Option<String>,
    /// The current image (None = scratch with no step yet).
    pub image: Option<Image>,
    /// The config object (`config` of the image config).
    pub cfg: Map<String, Value>,
    /// ARGs in scope with their values.
    pub args: BTreeMap<String, Option<String>>,
    /// The global ARGs (before the first `FROM`) a stage's `ARG name` may take over.
    pub meta: BTreeMap<String, Option<String>>,
}

/// A build error shown to the client.
#[derive(Debug)]
pub struct BuildError {
    /// Message.
    pub message: String,
    /// Exit code of a failing RUN.
    pub code: Option<i64>,
}

impl BuildError {
    fn msg(m: impl Into<String>) -> BuildError {
        BuildError {
            message: m.into(),
            code: None,
        }
    }
}

/// An ID as Docker shows it in build output: 12 hex digits, without `sha256:`.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Stack of a build's threads (reserved address space; only what is used is committed):
/// copying, diffing and removing trees recurse once per folder level.
pub const BUILD_STACK: usize = 64 << 20;

/// Largest Dockerfile read (Docker sets none; a Dockerfile is text a person wrote).
pub const MAX_DOCKERFILE: u64 = 16 << 20;

/// The Dockerfile `name` of the context (symlinks followed inside the context, as Docker
/// does): a regular file of at most [`MAX_DOCKERFILE`] bytes.
fn read_dockerfile(context: &berth_confine::Root, name: &str) -> Result<String, BuildError> {
    let missing = || BuildError::msg(format!("Cannot locate specified Dockerfile: {name}"));
    let rel = copy::clean_dest(name);
    match context.read_regular(&rel, MAX_DOCKERFILE) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| BuildError::msg(format!("the Dockerfile {name} is not UTF-8 text"))),
        Err(berth_confine::ConfineError::TooLarge { limit, .. }) => Err(BuildError::msg(format!(
            "the Dockerfile {name} is larger than {limit} bytes"
        ))),
        Err(_) => Err(missing()),
    }
}

/// As Docker's builder: once the Dockerfile is read, `.dockerignore` and the Dockerfile leave
/// the context when `.dockerignore` excludes them (the docker CLI sends both whatever it
/// says, and lists there the Dockerfile it adds from outside the context or from stdin).
fn drop_build_files(context: &berth_confine::Root, dockerfile: &str) -> Result<(), BuildError> {
    let Ok(text) = context.read_regular(".dockerignore", MAX_DOCKERFILE) else {
        return Ok(());
    };
    let ignore = berth_build::ignore::Ignore::parse(&String::from_utf8_lossy(&text))
        .map_err(|e| BuildError::msg(format!("failed to parse .dockerignore: {e}")))?;
    for f in [".dockerignore", dockerfile] {
        if ignore.excluded(f) {
            let _ = context.remove(copy::clean_dest(f));
        }
    }
    Ok(())
}

/// The `ONBUILD` triggers of a stage's base image, taken out of its config (the image built
/// does not inherit them) and parsed, as Docker's builder runs them right after `FROM`.
fn onbuild_triggers(st: &mut Stage) -> Result<Vec<Instruction>, BuildError> {
    let Some(Value::Array(list)) = st.cfg.remove("OnBuild") else {
        return Ok(Vec::new());
    };
    let text: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let df = berth_build::parse(&format!("FROM scratch\n{}", text.join("\n")))
        .map_err(|e| BuildError::msg(format!("failed to parse the ONBUILD triggers: {e}")))?;
    let triggers: Vec<Instruction> = df.instructions.into_iter().skip(1).collect();
    for t in &triggers {
        if matches!(t.keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
            return Err(BuildError::msg(format!(
                "{} isn't allowed as an ONBUILD trigger",
                t.keyword
            )));
        }
    }
    Ok(triggers)
}

/// Runs a build from the context folder `ctx_dir`. Returns the final image ID.
pub fn build(
    ctx: &Ctx,
    opts: &BuildOpts,
    ctx_dir: &std::path::Path,
    out: &dyn BuildSink,
    rt: &tokio::runtime::Handle,
    ready: &Ready,
) -> Result<String, BuildError> {
    // The context is the client's tree: everything in it is resolved inside it.
    let context = berth_confine::Root::open(ctx_dir)
        .map_err(|e| BuildError::msg(format!("invalid build context: {e}")))?;
    // As Docker: the default name falls back to a lower-case `dockerfile`.
    let exists = |n: &str| context.lstat(n).ok().flatten().is_some();
    let name = if opts.dockerfile == "Dockerfile" && !exists("Dockerfile") && exists("dockerfile") {
        "dockerfile"
    } else {
        opts.dockerfile.as_str()
    };
    let text = read_dockerfile(&context, name)?;
    drop_build_files(&context, name)?;
    let df = berth_build::parse(&text).map_err(|e| BuildError::msg(e.to_string()))?;
    let first_from = df
        .instructions
        .iter()
        .position(|i| i.keyword == "FROM")
        .unwrap_or(0);
    let body: Vec<&Instruction> = df.instructions[first_from..].iter().collect();
    // Stop at the target stage.
    let mut upto = body.len();
    if let Some(t) = &opts.target {
        let mut found = false;
        for (i, ins) in body.iter().enumerate() {
            if ins.keyword == "FROM" {
                if found {
                    upto = i;
                    break;
                }
                let name = steps::from_parts(ins).1;
                if name.as_deref().map(str::to_ascii_lowercase) == Some(t.to_ascii_lowercase()) {
                    found = true;
                }
            }
        }
        if !found {
            return Err(BuildError::msg(format!(
                "failed to reach build target {t} in Dockerfile"
            )));
        }
    }
    let body = &body[..upto];
    ready.fire(Ok(()));
    // Docker counts the global ARGs (before the first FROM) as steps too.
    // ... and each `--label` as a `LABEL` step at the end.
    let total = first_from + body.len() + opts.labels.len();
    let mut global: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (n, ins) in df.instructions[..first_from].iter().enumerate() {
        out.emit(BuildEvent::Step {
            n: n + 1,
            total,
            instruction: ins.original.clone(),
        });
        let decls = {
            let vars = |n: &str| global.get(n).cloned().flatten();
            berth_build::vars::declarations(ins, &vars, df.escape)
                .map_err(|e| BuildError::msg(format!("Dockerfile line {}: {e}", ins.line)))?
        };
        for (k, v) in decls {
            let val = berth_build::vars::value(&k, v, &opts.build_args, &BTreeMap::new());
            global.insert(k, val);
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for (n, ins) in body.iter().enumerate() {
        out.emit(BuildEvent::Step {
            n: first_from + n + 1,
            total,
            instruction: ins.original.clone(),
        });
        if ins.keyword == "FROM" {
            let mut st = steps::from(ctx, ins, &global, &stages)?;
            if let Some(img) = &st.image {
                out.emit(BuildEvent::StepImage(img.id.clone()));
            }
            let triggers = onbuild_triggers(&mut st)?;
            stages.push(st);
            if !triggers.is_empty() {
                let n = triggers.len();
                out.emit(BuildEvent::Output(format!(
                    "# Executing {n} build trigger{}\n",
                    if n == 1 { "" } else { "s" }
                )));
            }
            for t in &triggers {
                let len = stages.len();
                let (prev_stages, rest) = stages.split_at_mut(len - 1);
                steps::step(
                    ctx,
                    opts,
                    &context,
                    prev_stages,
                    &mut rest[0],
                    t,
                    df.escape,
                    out,
                    rt,
                )?;
            }
            continue;
        }
        if stages.is_empty() {
            return Err(BuildError::msg("no build stage in current context"));
        }
        let len = stages.len();
        let (prev_stages, rest) = stages.split_at_mut(len - 1);
        let cur = &mut rest[0];
        steps::step(
            ctx,
            opts,
            &context,
            prev_stages,
            cur,
            ins,
            df.escape,
            out,
            rt,
        )?;
    }
    let declared = global
        .keys()
        .chain(stages.iter().flat_map(|s| s.args.keys()));
    if let Some(w) = berth_build::vars::unconsumed_warning(&opts.build_args, declared) {
        out.emit(BuildEvent::Output(w));
    }
    let last = stages
        .last_mut()
        .ok_or_else(|| BuildError::msg("the Dockerfile has no FROM"))?;
    // --label applies to the final image.
    // Docker adds each --label (sorted by key) to the last stage as a LABEL step of its own.
    for (i, (k, v)) in opts.labels.iter().enumerate() {
        out.emit(BuildEvent::Step {
            n: total - opts.labels.len() + i + 1,
            total,
            instruction: format!("LABEL {k}={v}"),
        });
        let mut after = last.cfg.clone();
        let mut labels = after
            .get("Labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.insert(k.clone(), json!(v));
        after.insert("Labels".into(), Value::Object(labels));
        let created_by = berth_build::history::nop(&after, &format!("LABEL {k}={v}"));
        if cache::use_cache(ctx, opts, last, &created_by, &after, out)? {
            continue;
        }
        last.cfg = after;
        steps::commit_config(ctx, last, &created_by)?;
        if let Some(img) = &last.image {
            out.emit(BuildEvent::StepImage(img.id.clone()));
        }
    }
    let img = match &last.image {
        Some(i) => i.clone(),
        None => {
            steps::commit_config(ctx, last, "")?;
            last.image
                .clone()
                .ok_or_else(|| BuildError::msg("no image produced"))?
        }
    };
    Ok(img.id)
}

/// A context tar as the docker CLI sends it with `-f -` or a Dockerfile outside the context:
/// its last entry's data not padded and no end-of-archive blocks (Go's tar reader, and so
/// Docker's daemon, take that). At the stream's end this supplies the zeros a tar reader
/// wants: the padding to a 512-byte block and two zero blocks (ignored after a complete tar).
struct TarTail<R> {
    inner: R,
    read: u64,
    tail: Option<u64>,
}

impl<R: std::io::Read> std::io::Read for TarTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tail.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.tail = Some((512 - self.read % 512) % 512 + 1024);
        }
        let left = self.tail.unwrap_or(0);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        buf[..n].fill(0);
        self.tail = Some(left - n as u64);
        Ok(n)
    }
}

/// A whole build as `POST /build` runs it, on the calling (build) thread: the context tarball
/// `context_tar` is unpacked into a fresh private folder (no size limit, as Docker), the
/// Dockerfile built, the image tagged; everything is reported to `out`, errors included —
/// but those before the first step to `ready`.
pub fn run(
    ctx: &Ctx,
    opts: &BuildOpts,
    context_tar: impl std::io::Read,
    out: &dyn BuildSink,
    rt: &tokio::runtime::Handle,
    ready: &Ready,
) {
    let dir = ctx.images.tmp_dir().join(format!(
        "build-ctx-{}",
        (0..8)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect::<String>()
    ));
    // A fresh folder of berthd's own, so the tar lands in nothing it did not make; the tar is
    // a plain one (no layer whiteouts), unpacked without following its links.
    let unpacked = std::fs::create_dir(&dir)
        .map_err(|e| e.to_string())
        .and_then(|_| berth_archive::decompress(context_tar).map_err(|e| e.to_string()))
        .and_then(|(_, plain)| {
            let plain = TarTail {
                inner: plain,
                read: 0,
                tail: None,
            };
            berth_archive::extract(plain, &dir, &berth_archive::ExtractOptions::default())
                .map_err(|e| e.to_string())
        });
    let result = match unpacked {
        Err(e) => Err(BuildError::msg(format!("invalid build context: {e}"))),
        Ok(_) => build(ctx, opts, &dir, out, rt, ready),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let id = match result {
        Ok(id) => id,
        Err(e) => {
            if !ready.fire(Err(e.message.clone())) {
                out.emit(BuildEvent::Error {
                    message: e.message,
                    code: e.code,
                });
            }
            return;
        }
    };
    out.emit(BuildEvent::ImageId(id.clone()));
    out.emit(BuildEvent::Built(id.clone()));
    for t in &opts.tags {
        match ctx.images.tag(&id, t) {
            Ok(_) => {
                let shown = berth_core::reference::Reference::parse(t)
                    .map(|r| r.familiar_string())
                    .unwrap_or(t.clone());
                out.emit(BuildEvent::Tagged(shown));
            }
            Err(e) => out.emit(BuildEvent::Error {
                message: e.to_string(),
                code: None,
            }),
        }
    }
}
