//! One Dockerfile step: FROM, config instructions, RUN, COPY/ADD — each with the cache.

use super::cache::use_cache;
use super::view::ImageView;
use super::{copy, fetch, BuildError, BuildEvent, BuildOpts, BuildSink, Stage};
use crate::state::Ctx;
use berth_build::expand::expand;
use berth_build::history::nop;
use berth_build::parse::{Args, Instruction};
use berth_build::vars;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// (image, stage name) of a FROM.
pub fn from_parts(ins: &Instruction) -> (String, Option<String>) {
    let text = ins.text();
    let words: Vec<&str> = text.split_whitespace().collect();
    let image = words.first().map(|s| s.to_string()).unwrap_or_default();
    let name = match words.as_slice() {
        [_, as_kw, n] if as_kw.eq_ignore_ascii_case("as") => Some(n.to_string()),
        _ => None,
    };
    (image, name)
}

/// FROM: a stage from an image, a previous stage, or scratch.
pub(crate) fn from(
    ctx: &Ctx,
    ins: &Instruction,
    global: &BTreeMap<String, Option<String>>,
    stages: &[Stage],
) -> Result<Stage, BuildError> {
    let (raw, name) = from_parts(ins);
    let empty = Map::new();
    let image_name = expand(&raw, &vars::lookup(&empty, global), '\\')
        .map_err(|e| BuildError::msg(e.to_string()))?;
    let mut st = Stage {
        name,
        image: None,
        cfg: Map::new(),
        args: BTreeMap::new(),
        meta: global.clone(),
    };
    if image_name == "scratch" {
        st.cfg.insert("Env".into(), json!([DEFAULT_PATH]));
        return Ok(st);
    }
    if let Some(prev) = stages.iter().rev().find(|s| {
        s.name.as_deref().map(str::to_ascii_lowercase) == Some(image_name.to_ascii_lowercase())
    }) {
        st.image = prev.image.clone();
        st.cfg = prev.cfg.clone();
        return Ok(st);
    }
    let img = ctx.images.resolve(&image_name).map_err(|_| {
        BuildError::msg(format!("pull access denied for {image_name}, repository does not exist or may require 'docker login': No such image: {image_name}"))
    })?;
    st.cfg = img.config["config"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // As Docker's builder: a base image without PATH gets the default one.
    let has_path = st
        .cfg
        .get("Env")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|e| e.as_str().is_some_and(|s| s.starts_with("PATH=")))
        });
    if !has_path {
        let mut env = st
            .cfg
            .get("Env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        env.insert(0, json!(DEFAULT_PATH));
        st.cfg.insert("Env".into(), Value::Array(env));
    }
    st.image = Some(img);
    Ok(st)
}

fn base_config(st: &Stage) -> Value {
    match &st.image {
        Some(i) => i.config.clone(),
        None => {
            json!({"architecture": berth_image::save::host_arch(), "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "history": []})
        }
    }
}

/// Records the stage's config as a new image with an empty-layer history entry.
pub(crate) fn commit_config(ctx: &Ctx, st: &mut Stage, created_by: &str) -> Result<(), BuildError> {
    store_image(ctx, st, created_by, None)
}

/// Stores the stage's config as a new image on top of the stage's image and makes it the
/// stage's image. With `diff_id` the image gains that layer and a history entry for it;
/// without, the history entry (if `created_by` is not empty) is an empty layer.
pub(crate) fn store_image(
    ctx: &Ctx,
    st: &mut Stage,
    created_by: &str,
    diff_id: Option<&str>,
) -> Result<(), BuildError> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut config = base_config(st);
    config["config"] = Value::Object(st.cfg.clone());
    config["created"] = json!(now);
    if let Some(diff_id) = diff_id {
        let mut diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        diff_ids.push(json!(diff_id));
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    }
    if diff_id.is_some() || !created_by.is_empty() {
        let mut entry = json!({"created": now, "created_by": created_by});
        if diff_id.is_none() {
            entry["empty_layer"] = json!(true);
        }
        let mut h = config["history"].as_array().cloned().unwrap_or_default();
        h.push(entry);
        config["history"] = json!(h);
    }
    let bytes = serde_json::to_vec(&config).map_err(|e| BuildError::msg(e.to_string()))?;
    let parent = st.image.as_ref().map(|i| i.id.clone());
    let id = ctx
        .images
        .add_image(&bytes, &[], parent.as_deref())
        .map_err(|e| BuildError::msg(e.to_string()))?;
    st.image = Some(
        ctx.images
            .get(&id)
            .map_err(|e| BuildError::msg(e.to_string()))?,
    );
    Ok(())
}

fn done(st: &Stage, out: &dyn BuildSink) {
    if let Some(i) = &st.image {
        out.emit(BuildEvent::StepImage(i.id.clone()));
    }
}

fn shell_cmd(st: &Stage, ins: &Instruction, escape: char) -> Result<Vec<String>, BuildError> {
    let _ = escape;
    Ok(match &ins.args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) => {
            let mut c = berth_build::config::shell(&st.cfg);
            // `RUN <<EOF` alone runs the here-document as the script; with a command
            // (`RUN cat <<EOF > f`) the documents follow it, terminators included.
            let only_marker = ins.heredocs.len() == 1
                && s.trim()
                    .trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(['"', '\''])
                    == ins.heredocs[0].name;
            let mut script = if only_marker {
                String::new()
            } else {
                s.clone()
            };
            for h in &ins.heredocs {
                script = if only_marker {
                    h.content.clone()
                } else {
                    format!("{script}\n{}{}", h.content, h.name)
                };
            }
            c.push(script);
            c
        }
    })
}

/// Executes one non-FROM instruction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step(
    ctx: &Ctx,
    opts: &BuildOpts,
    context: &berth_confine::Root,
    prev: &[Stage],
    st: &mut Stage,
    ins: &Instruction,
    escape: char,
    out: &dyn BuildSink,
    rt: &tokio::runtime::Handle,
) -> Result<(), BuildError> {
    match ins.keyword.as_str() {
        "ARG" => {
            let decls = vars::declarations(ins, &vars::lookup(&st.cfg, &st.args), escape)
                .map_err(|e| BuildError::msg(format!("Dockerfile line {}: {e}", ins.line)))?;
            for (k, v) in decls {
                let val = vars::value(&k, v, &opts.build_args, &st.meta);
                st.args.insert(k, val);
            }
            let created_by = nop(&st.cfg, &format!("ARG {}", ins.text()));
            let after = st.cfg.clone();
            if !use_cache(ctx, opts, st, &created_by, &after, out)? {
                commit_config(ctx, st, &created_by)?;
                done(st, out);
            }
            Ok(())
        }
        "RUN" => run(ctx, opts, st, ins, escape, out, rt),
        "COPY" | "ADD" => copy_step(ctx, opts, context, prev, st, ins, escape, out),
        "MAINTAINER" => {
            let created_by = nop(&st.cfg, &format!("MAINTAINER {}", ins.text()));
            let after = st.cfg.clone();
            if !use_cache(ctx, opts, st, &created_by, &after, out)? {
                commit_config(ctx, st, &created_by)?;
                done(st, out);
            }
            Ok(())
        }
        _ => {
            // Config instructions: words expanded with ENV, then the ARGs in scope.
            let mut applied = st.cfg.clone();
            let args = |n: &str| st.args.get(n).cloned().flatten();
            berth_build::config::apply_with(&mut applied, ins, escape, &args)
                .map_err(|e| BuildError::msg(e.to_string()))?;
            let created_by = berth_build::history::created_by(ins, &applied, escape, &args)
                .map_err(|e| BuildError::msg(e.to_string()))?;
            if use_cache(ctx, opts, st, &created_by, &applied, out)? {
                return Ok(());
            }
            st.cfg = applied;
            if !(ins.keyword == "WORKDIR" && super::layer::workdir(ctx, st, &created_by)?) {
                commit_config(ctx, st, &created_by)?;
            }
            done(st, out);
            Ok(())
        }
    }
}

fn run(
    ctx: &Ctx,
    opts: &BuildOpts,
    st: &mut Stage,
    ins: &Instruction,
    escape: char,
    out: &dyn BuildSink,
    rt: &tokio::runtime::Handle,
) -> Result<(), BuildError> {
    let Some(img) = st.image.clone() else {
        return Err(BuildError::msg(
            "RUN needs a base image: FROM scratch has no shell",
        ));
    };
    let cmd = shell_cmd(st, ins, escape)?;
    let used = vars::run_env(&st.cfg, &st.args);
    let mut created_by = match &ins.args {
        Args::Json(v) => serde_json::to_string(v).unwrap_or_default(),
        Args::Shell(_) => cmd.join(" "),
    };
    if !used.is_empty() {
        created_by = format!("|{} {} {created_by}", used.len(), used.join(" "));
    }
    let after = st.cfg.clone();
    if use_cache(ctx, opts, st, &created_by, &after, out)? {
        return Ok(());
    }
    let mut env: Vec<Value> = st
        .cfg
        .get("Env")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    env.extend(used.iter().map(|u| json!(u)));
    let body = json!({
        "Image": img.id,
        "Entrypoint": cmd,
        "Cmd": null,
        "Env": env,
        "WorkingDir": st.cfg.get("WorkingDir").cloned().unwrap_or(json!("")),
        "User": st.cfg.get("User").cloned().unwrap_or(json!("")),
        "Labels": {},
        "HostConfig": {
            "NetworkMode": if opts.network.is_empty() { "default" } else { &opts.network },
            "ExtraHosts": opts.extra_hosts,
            "ShmSize": opts.shm_size,
            "Ulimits": opts.ulimits,
        },
    });
    let mut body = body;
    if let Some(hc) = body["HostConfig"].as_object_mut() {
        hc.extend(opts.resources.clone());
    }
    let ctx2 = ctx.clone();
    let started = rt.block_on(async move {
        let id = crate::containers::create::create(&ctx2, None, body)
            .await
            .map_err(|e| BuildError::msg(e.to_string()))?;
        let c = ctx2
            .containers
            .get(&id)
            .map_err(|e| BuildError::msg(e.to_string()))?;
        let rx = c.events.subscribe();
        let res = crate::containers::start::start(&ctx2, &c).await;
        if let Err(e) = res {
            // Not left behind, as Docker's builder.
            let _ = crate::containers::remove::remove(&ctx2, &c, true, false).await;
            return Err(BuildError::msg(e.to_string()));
        }
        Ok((id, rx))
    });
    let (id, mut rx) = started?;
    out.emit(BuildEvent::RunningIn(id.clone()));
    // With `-q` nobody sees the output: not read at all.
    if !opts.quiet {
        let log = ctx.containers.dir(&id).join(format!("{id}-json.log"));
        super::runlog::follow(&log, &|| rx.borrow().exits != 0, out);
    }
    let code = rt.block_on(async {
        while rx.borrow().exits == 0 {
            if rx.changed().await.is_err() {
                break;
            }
        }
        rx.borrow().exit_code
    });
    let remove = |ctx: &Ctx| {
        let ctx2 = ctx.clone();
        let id2 = id.clone();
        rt.block_on(async move {
            if let Ok(c) = ctx2.containers.get(&id2) {
                let _ = crate::containers::remove::remove(&ctx2, &c, false, false).await;
            }
        });
    };
    if code != 0 {
        if opts.rm || opts.force_rm {
            remove(ctx);
        }
        let shown = match &ins.args {
            Args::Json(v) => serde_json::to_string(v).unwrap_or_default(),
            Args::Shell(_) => cmd.join(" "),
        };
        return Err(BuildError {
            message: format!("The command '{shown}' returned a non-zero code: {code}"),
            code: Some(code),
        });
    }
    let opts_c = berth_image::CommitOpts {
        layer: id.clone(),
        parent: Some(img.id.clone()),
        container_id: id.clone(),
        config: Value::Object(st.cfg.clone()),
        created_by,
        ..Default::default()
    };
    let new_id = ctx
        .images
        .commit(&opts_c)
        .map_err(|e| BuildError::msg(e.to_string()))?;
    if opts.rm || opts.force_rm {
        remove(ctx);
        out.emit(BuildEvent::RemovedIntermediate(id.clone()));
    }
    st.image = Some(
        ctx.images
            .get(&new_id)
            .map_err(|e| BuildError::msg(e.to_string()))?,
    );
    done(st, out);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn copy_step(
    ctx: &Ctx,
    opts: &BuildOpts,
    context: &berth_confine::Root,
    prev: &[Stage],
    st: &mut Stage,
    ins: &Instruction,
    escape: char,
    out: &dyn BuildSink,
) -> Result<(), BuildError> {
    // Words expanded with ENV and the ARGs in scope; the shell form split at white space
    // first, as Docker's classic builder does (`COPY "a b" /d/` is refused).
    let words: Vec<String> = {
        let lookup = vars::lookup(&st.cfg, &st.args);
        let raw: Vec<String> = match &ins.args {
            Args::Json(v) => v.clone(),
            Args::Shell(s) => s.split_whitespace().map(str::to_string).collect(),
        };
        raw.iter()
            .map(|w| {
                expand(w, &lookup, escape)
                    .map_err(|e| BuildError::msg(format!("failed to process {w:?}: {e}")))
            })
            .collect::<Result<_, _>>()?
    };
    if words.len() < 2 {
        return Err(BuildError::msg(format!(
            "Dockerfile line {}: {} requires at least two arguments",
            ins.line, ins.keyword
        )));
    }
    let (srcs, dest) = words.split_at(words.len() - 1);
    let workdir = st
        .cfg
        .get("WorkingDir")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();
    let mut dest = dest[0].clone();
    if !dest.starts_with('/') {
        dest = format!("{}/{}", workdir.trim_end_matches('/'), dest);
    }
    // `--chown` and `--chmod` are expanded too (`--chown=$UID`); `--from` is not, as Docker's.
    let flag = |name: &str| -> Result<Option<String>, BuildError> {
        let lookup = vars::lookup(&st.cfg, &st.args);
        ins.flag(name)
            .map(|v| expand(v, &lookup, escape))
            .transpose()
            .map_err(|e| BuildError::msg(format!("Dockerfile line {}: {e}", ins.line)))
    };
    let chmod = flag("chmod")?.and_then(|m| u32::from_str_radix(&m, 8).ok());
    let view = match ins.flag("from") {
        Some(f) => {
            let img = prev
                .iter()
                .enumerate()
                .find(|(i, s)| {
                    s.name.as_deref().map(str::to_ascii_lowercase) == Some(f.to_ascii_lowercase())
                        || i.to_string() == f
                })
                .and_then(|(_, s)| s.image.clone())
                .or_else(|| ctx.images.resolve(f).ok())
                .ok_or_else(|| {
                    BuildError::msg(format!(
                        "invalid from flag value {f}: no stage or image of that name"
                    ))
                })?;
            Some(ImageView::open(ctx, &img)?)
        }
        None => None,
    };
    let (root, from_image) = match &view {
        Some(v) => (v.root()?, true),
        None => (context, false),
    };
    // The destination as Docker's builder writes it: symlinks of the image being built
    // followed inside its rootfs (`/o -> /elsewhere`: the files land in its `/elsewhere`).
    let base = st
        .image
        .as_ref()
        .map(|img| ImageView::open(ctx, img))
        .transpose()?;
    let base_root = base.as_ref().map(ImageView::root).transpose()?;
    let (dest_rel, dest_kind) = match base_root {
        Some(r) => r
            .scoped_path(copy::clean_dest(&dest))
            .map_err(|e| BuildError::msg(format!("COPY failed: {e}")))?,
        None => (copy::clean_dest(&dest), None),
    };
    let chown = flag("chown")?
        .map(|c| super::chown::resolve(&c, base_root))
        .transpose()?;
    let dest_is_dir = dest.ends_with('/') || dest_kind == Some(berth_confine::FileKind::Dir);
    let staging = super::layer::Staging::new(ctx)?;
    let staged = staging.root()?;
    super::layer::mirror_folders(base_root, &staged, &dest_rel)?;
    drop(base);
    // ADD of http(s) URLs: downloaded (never extracted, as Docker), bounded in size and time.
    let (urls, local): (Vec<String>, Vec<String>) = srcs.iter().cloned().partition(|s| {
        ins.keyword == "ADD" && (s.starts_with("http://") || s.starts_with("https://"))
    });
    for u in &urls {
        let target = if dest_is_dir || srcs.len() > 1 {
            dest_rel.join(fetch::file_name(u))
        } else {
            dest_rel.clone()
        };
        fetch::download(u, &staged, &target, chmod.unwrap_or(0o600))
            .map_err(|e| BuildError::msg(e.to_string()))?;
        if let Some((u, g)) = chown {
            staged
                .chown(&target, u, g)
                .map_err(|e| BuildError::msg(format!("COPY failed: {e}")))?;
        }
    }
    if !local.is_empty() {
        let spec = copy::CopySpec {
            root,
            from_image,
            sources: &local,
            dest: &dest_rel,
            dest_is_dir,
            add: ins.keyword == "ADD",
            chown,
            chmod,
        };
        copy::stage(&spec, &staged).map_err(|e| BuildError::msg(e.to_string()))?;
    }
    drop(view);
    let sum = copy::checksum(&staged);
    drop(staged);
    let created_by = format!(
        "{} #(nop) {} {}:{sum} in {dest} ",
        berth_build::config::shell(&st.cfg).join(" "),
        ins.keyword,
        if srcs.len() == 1 { "file" } else { "multi" }
    );
    let after = st.cfg.clone();
    if use_cache(ctx, opts, st, &created_by, &after, out)? {
        return Ok(());
    }
    super::layer::commit_tree(ctx, st, staging.path(), &created_by)?;
    done(st, out);
    Ok(())
}
