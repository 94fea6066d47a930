//! The classic builder's cache, as Docker's: a step is skipped when an image already is its
//! result. Without `--cache-from`, that is a local image whose parent is the stage's image
//! and whose last history entry has the step's `created_by`. With `--cache-from`, a local hit
//! counts only inside the chain of one of those images, and the images themselves are
//! matched by content, parent links or not (a loaded or pulled image): their history and
//! layers must start with the stage image's, and their next history entry must be the step;
//! the next image is then restored from them (their own ID at their last entry).

use super::{BuildError, BuildEvent, BuildOpts, BuildSink, Stage};
use crate::state::Ctx;
use berth_image::Image;
use serde_json::{json, Map, Value};

fn history(img: &Image) -> &[Value] {
    img.config["history"].as_array().map_or(&[], Vec::as_slice)
}

fn created_by(h: &Value) -> &str {
    h["created_by"].as_str().unwrap_or("")
}

/// A local image that is the result of `step` on top of the stage's image.
fn local(ctx: &Ctx, st: &Stage, step: &str) -> Option<Image> {
    let parent = st.image.as_ref().map(|i| i.id.clone())?;
    ctx.images
        .list()
        .into_iter()
        .find(|i| i.parent == parent && history(i).last().map(created_by) == Some(step))
}

/// Whether `id` is `of` or one of its ancestors (through parent links).
fn in_chain(ctx: &Ctx, id: &str, of: &Image) -> bool {
    let mut cur = of.id.clone();
    // Bounded: a parent loop in a damaged store ends the walk.
    for _ in 0..100_000 {
        if cur == id {
            return true;
        }
        match ctx.images.get(&cur) {
            Ok(i) if !i.parent.is_empty() => cur = i.parent,
            _ => return false,
        }
    }
    false
}

/// Whether `target` starts with the history and layers of `parent` (Docker's
/// `isValidParent`).
fn extends(target: &Image, parent: Option<&Image>) -> bool {
    let th = history(target);
    let Some(p) = parent else {
        return !th.is_empty();
    };
    let ph = history(p);
    if ph.is_empty() && p.diff_ids.is_empty() {
        return !th.is_empty();
    }
    ph.len() < th.len()
        && p.diff_ids.len() <= target.diff_ids.len()
        && ph.iter().zip(th).all(|(a, b)| a == b)
        && p.diff_ids.iter().zip(&target.diff_ids).all(|(a, b)| a == b)
}

/// The layer `target`'s history entry `index` made, if any.
fn layer_of(target: &Image, index: usize) -> Option<String> {
    let h = history(target);
    if h.get(index)?["empty_layer"].as_bool() == Some(true) {
        return None;
    }
    let before = h[..index]
        .iter()
        .filter(|e| e["empty_layer"].as_bool() != Some(true))
        .count();
    target.diff_ids.get(before).cloned()
}

/// A `--cache-from` image giving the result of `step` on the stage's image: the image itself
/// at its last entry, else one restored from its first entries (config `after`).
fn from_sources(
    ctx: &Ctx,
    sources: &[Image],
    st: &Stage,
    step: &str,
    after: &Map<String, Value>,
) -> Result<Option<Image>, BuildError> {
    let parent = st.image.as_ref();
    let len = parent.map_or(0, |p| history(p).len());
    let Some(target) = sources
        .iter()
        .find(|t| extends(t, parent) && history(t).get(len).map(created_by) == Some(step))
    else {
        return Ok(None);
    };
    if history(target).len() == len + 1 {
        return Ok(Some(target.clone()));
    }
    let entry = history(target)[len].clone();
    let mut config = match parent {
        Some(p) => p.config.clone(),
        None => json!({"rootfs": {"type": "layers", "diff_ids": []}, "history": []}),
    };
    for k in ["architecture", "os", "author", "os.version", "os.features"] {
        if let Some(v) = target.config.get(k) {
            config[k] = v.clone();
        }
    }
    let mut diff_ids = parent.map(|p| p.diff_ids.clone()).unwrap_or_default();
    diff_ids.extend(layer_of(target, len));
    let mut hist = parent.map(|p| history(p).to_vec()).unwrap_or_default();
    config["created"] = entry["created"].clone();
    hist.push(entry);
    config["history"] = json!(hist);
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    config["config"] = Value::Object(after.clone());
    let bytes = serde_json::to_vec(&config).map_err(|e| BuildError::msg(e.to_string()))?;
    let id = ctx
        .images
        .add_image(&bytes, &[], parent.map(|p| p.id.as_str()))
        .map_err(|e| BuildError::msg(e.to_string()))?;
    ctx.images
        .get(&id)
        .map(Some)
        .map_err(|e| BuildError::msg(e.to_string()))
}

/// Looks the step `step` up in the cache; on a hit the stage moves to the cached image
/// (reported as Docker does) and this returns true. `after` is the config the step gives.
pub(crate) fn use_cache(
    ctx: &Ctx,
    opts: &BuildOpts,
    st: &mut Stage,
    step: &str,
    after: &Map<String, Value>,
    out: &dyn BuildSink,
) -> Result<bool, BuildError> {
    if opts.no_cache {
        return Ok(false);
    }
    let sources: Vec<Image> = opts
        .cache_from
        .iter()
        .filter_map(|n| ctx.images.resolve(n).ok())
        .collect();
    let hit = match local(ctx, st, step) {
        Some(i)
            if opts.cache_from.is_empty() || sources.iter().any(|s| in_chain(ctx, &i.id, s)) =>
        {
            Some(i)
        }
        _ if sources.is_empty() => None,
        _ => from_sources(ctx, &sources, st, step, after)?,
    };
    let Some(img) = hit else {
        return Ok(false);
    };
    out.emit(BuildEvent::UsingCache);
    out.emit(BuildEvent::StepImage(img.id.clone()));
    st.cfg = img.config["config"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    st.image = Some(img);
    Ok(true)
}
