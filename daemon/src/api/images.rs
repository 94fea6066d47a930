//! Image endpoints: list, inspect, history, tag, remove, prune, save (`/images/get`), load,
//! import (`/images/create?fromSrc=-`), commit and `/system/df`. The work is done by
//! berth-image on the blocking pool; request bodies stream in through [`BodyReader`] and
//! archives stream out through a channel. Pull lives in [`super::pull`], push in [`super::distribution`].

use super::containers_io::ChannelWriter;
use crate::containers::initlayer::InitLayers;
use crate::images::remove::{image_attrs, removal_events, Usage};
use crate::server::http::{self, ok_json, ApiError, ApiResult, BodyReader};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use berth_api::types::image::{
    DeleteResponseItem, GraphDriver, HistoryResponseItem, ImageInspect, ImageMetadata,
    ImagePruneReport, ImageSummary, RootFs,
};
use berth_image::{DeleteItem, Image, ImageError, ListFilter};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

mod more;

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::GET, "/images/json", list);
    r.add(Method::POST, "/images/load", load);
    r.add(Method::GET, "/images/get", save);
    r.add(Method::POST, "/images/prune", prune);
    r.add(Method::POST, "/images/create", create);
    r.add(Method::POST, "/commit", more::commit);
    r.add(Method::GET, "/system/df", more::df);
    r.add(Method::GET, "/images/{name*}/json", inspect);
    r.add(Method::GET, "/images/{name*}/history", history);
    r.add(Method::POST, "/images/{name*}/tag", tag);
    r.add(Method::GET, "/images/{name*}/get", save_one);
    r.add(Method::DELETE, "/images/{name*}", remove);
}

/// Maps store errors onto API errors (404 `No such image: X`, 409 conflicts, 400 bad input).
pub fn err(e: ImageError) -> ApiError {
    match e {
        ImageError::NotFound(_) => ApiError::not_found(e.to_string()),
        ImageError::Conflict(m) => ApiError::conflict(m),
        ImageError::Reference(_) | ImageError::Invalid(_) | ImageError::Digest { .. } => {
            ApiError::bad_request(e.to_string())
        }
        ImageError::Driver(d) => ApiError::from(d),
        ImageError::Io { .. } | ImageError::LayerChanged { .. } => {
            ApiError::internal(e.to_string())
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?.map_err(err)
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn summary(img: &Image, shared: i64, containers: i64) -> ImageSummary {
    let labels = img.labels();
    ImageSummary {
        id: img.id.clone(),
        parent_id: img.parent.clone(),
        repo_tags: img.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        created: img.created_unix(),
        size: i64::try_from(img.size).unwrap_or(i64::MAX),
        shared_size: shared,
        labels: (!labels.is_empty()).then_some(labels),
        containers,
    }
}

/// Nanoseconds as the image store's Unix seconds.
fn unix_secs(ns: i64) -> i64 {
    ns.div_euclid(1_000_000_000)
}

fn bool_filter(f: &http::Filters, k: &str) -> Result<Option<bool>, ApiError> {
    match f.get(k).first().map(|s| s.to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if v == "true" || v == "1" => Ok(Some(true)),
        Some(v) if v == "false" || v == "0" => Ok(Some(false)),
        Some(v) => Err(ApiError::bad_request(format!(
            "invalid filter '{k}={v}': must be 'true' or 'false'"
        ))),
    }
}

async fn list(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    f.only(&["dangling", "label", "reference", "before", "since", "until"])?;
    let filter = ListFilter {
        all: req.query.bool("all", false),
        dangling: bool_filter(&f, "dangling")?,
        labels: f.get("label").to_vec(),
        references: f.get("reference").to_vec(),
        before: f.get("before").first().cloned(),
        since: f.get("since").first().cloned(),
        // The list takes the last `until`, as Docker's.
        until: match f.get("until").last() {
            Some(v) => Some(unix_secs(super::filters::time(v)?)),
            None => None,
        },
    };
    let shared = req.query.bool("shared-size", false);
    let ctx2 = ctx.clone();
    let (imgs, usage) = blocking(move || {
        let imgs = ctx2.images.list_filtered(&filter)?;
        let shared: BTreeMap<String, u64> = if shared {
            ctx2.images
                .disk_usage()
                .1
                .into_iter()
                .map(|(i, s)| (i.id, s))
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok((imgs, shared))
    })
    .await?;
    let out: Vec<ImageSummary> = imgs
        .iter()
        .map(|i| {
            let s = usage.get(&i.id).map(|s| *s as i64).unwrap_or(-1);
            summary(i, s, -1)
        })
        .collect();
    ok_json(&out)
}

/// Docker's `Config` shape: every field present, values from the image.
fn full_config(c: &Value) -> Value {
    let mut base = berth_image::default_container_config();
    if let Some(o) = c.as_object() {
        for (k, v) in o {
            base.insert(k.clone(), v.clone());
        }
    }
    Value::Object(base)
}

fn graph_data(ctx: &Ctx, img: &Image) -> Option<BTreeMap<String, String>> {
    let top = img.top_layer()?;
    let mounts = ctx.storage.mounts(&top).ok()?;
    let mut data = BTreeMap::new();
    for m in &mounts {
        for o in &m.options {
            for (key, name) in [
                ("lowerdir=", "LowerDir"),
                ("upperdir=", "UpperDir"),
                ("workdir=", "WorkDir"),
            ] {
                if let Some(v) = o.strip_prefix(key) {
                    data.insert(name.to_string(), v.to_string());
                }
            }
        }
        if m.fstype == "bind" && !m.source.is_empty() {
            data.insert("MergedDir".into(), m.source.clone());
        }
    }
    (!data.is_empty()).then_some(data)
}

/// Docker's ImageInspect for `img`.
pub fn inspect_json(ctx: &Ctx, img: &Image) -> ImageInspect {
    let c = &img.config;
    let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let last_tag = if img.last_tag_time.is_empty() {
        crate::containers::ZERO_TIME.to_string()
    } else {
        img.last_tag_time.clone()
    };
    ImageInspect {
        id: img.id.clone(),
        repo_tags: img.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        parent: img.parent.clone(),
        comment: text("comment"),
        created: text("created"),
        docker_version: text("docker_version"),
        author: text("author"),
        config: full_config(c.get("config").unwrap_or(&Value::Null)),
        architecture: text("architecture"),
        variant: text("variant"),
        os: text("os"),
        size: i64::try_from(img.size).unwrap_or(i64::MAX),
        graph_driver: GraphDriver {
            name: ctx.storage.name(),
            data: graph_data(ctx, img),
        },
        root_fs: RootFs {
            kind: "layers".into(),
            layers: img.diff_ids.clone(),
        },
        metadata: ImageMetadata {
            last_tag_time: last_tag,
        },
    }
}

async fn inspect(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.param("name").to_string();
    let ctx2 = ctx.clone();
    let img = blocking(move || ctx2.images.resolve(&name)).await?;
    let c2 = ctx.clone();
    let out = tokio::task::spawn_blocking(move || inspect_json(&c2, &img)).await?;
    ok_json(&out)
}

async fn history(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.param("name").to_string();
    let rows = blocking(move || ctx.images.history(&name)).await?;
    let out: Vec<HistoryResponseItem> = rows
        .into_iter()
        .map(|h| HistoryResponseItem {
            id: h.id,
            created: h.created,
            created_by: h.created_by,
            tags: (!h.tags.is_empty()).then_some(h.tags),
            size: i64::try_from(h.size).unwrap_or(i64::MAX),
            comment: h.comment,
        })
        .collect();
    ok_json(&out)
}

async fn tag(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.param("name").to_string();
    let repo = req.query.get("repo").unwrap_or("").to_string();
    let t = req.query.get("tag").unwrap_or("").to_string();
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "repository name must have at least one component",
        ));
    }
    let target = if t.is_empty() {
        repo
    } else {
        format!("{repo}:{t}")
    };
    let r = berth_core::reference::Reference::parse(&target)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if r.digest.is_some() {
        return Err(ApiError::bad_request(
            "refusing to create a tag with a digest reference",
        ));
    }
    let shown = r.familiar_string();
    let ctx2 = ctx.clone();
    let key = shown.clone();
    let (id, labels) = blocking(move || {
        let img = ctx2.images.resolve(&name)?;
        ctx2.images.tag(&img.id, &key)?;
        Ok((img.id.clone(), img.labels()))
    })
    .await?;
    ctx.events
        .publish("image", "tag", &id, image_attrs(labels, &shown));
    Ok(http::empty(StatusCode::CREATED))
}

fn items(list: &[DeleteItem]) -> Vec<DeleteResponseItem> {
    list.iter()
        .map(|d| match d {
            DeleteItem::Untagged(t) => DeleteResponseItem {
                untagged: Some(t.clone()),
                deleted: None,
            },
            DeleteItem::Deleted(id) => DeleteResponseItem {
                untagged: None,
                deleted: Some(id.clone()),
            },
        })
        .collect()
}

async fn remove(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.param("name").to_string();
    let force = req.query.bool("force", false);
    let prune = !req.query.bool("noprune", false);
    let list = blocking(move || crate::images::remove::remove(&ctx, &name, force, prune)).await?;
    ok_json(&items(&list))
}

async fn prune(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    f.only(&["dangling", "until", "label", "label!"])?;
    let all = bool_filter(&f, "dangling")? == Some(false);
    let mut labels = f.get("label").to_vec();
    labels.extend(f.get("label!").iter().map(|l| format!("!{l}")));
    let until = super::filters::until(&f)?.map(unix_secs);
    let ctx2 = ctx.clone();
    let (report, ids) = blocking(move || {
        let ids = ctx2.images.ids();
        let r = ctx2
            .images
            .prune(all, &labels, until, &Usage(ctx2.clone()))?;
        InitLayers::of(&ctx2).remove_orphans(ctx2.storage.as_ref());
        Ok((r, ids))
    })
    .await?;
    removal_events(&ctx, "", &report.deleted, &ids);
    ctx.events.publish(
        "image",
        "prune",
        "",
        attrs(&[("reclaimed", &report.reclaimed.to_string())]),
    );
    let deleted = items(&report.deleted);
    ok_json(&ImagePruneReport {
        images_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: report.reclaimed,
    })
}

async fn save_names(ctx: Ctx, names: Vec<String>) -> ApiResult {
    if names.is_empty() {
        return Err(ApiError::bad_request("no images to save: pass names=..."));
    }
    let ctx2 = ctx.clone();
    let n2 = names.clone();
    let ids = blocking(move || {
        n2.iter()
            .map(|n| ctx2.images.resolve(n).map(|i| i.id))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let (tx, abort, resp) = http::stream_abortable("application/x-tar");
    tokio::task::spawn_blocking(move || {
        let mut w = std::io::BufWriter::with_capacity(256 << 10, ChannelWriter(tx));
        match ctx.images.save(&names, &mut w) {
            Ok(()) => {
                let _ = std::io::Write::flush(&mut w);
                for (id, n) in ids.iter().zip(&names) {
                    ctx.events
                        .publish("image", "save", id, attrs(&[("name", n)]));
                }
            }
            // The status line is gone already: the connection is cut without the final chunk
            // (a layer that cannot be reproduced exactly is never sent whole).
            Err(e) => {
                tracing::warn!("save failed: {e}");
                abort.fail();
            }
        }
    });
    Ok(resp)
}

async fn save(ctx: Ctx, req: Req) -> ApiResult {
    let names = req.query.all("names");
    save_names(ctx, names).await
}

async fn save_one(ctx: Ctx, req: Req) -> ApiResult {
    let n = vec![req.param("name").to_string()];
    save_names(ctx, n).await
}

async fn load(ctx: Ctx, req: Req) -> ApiResult {
    let quiet = req.query.bool("quiet", false);
    let mut reader = BodyReader::new(req.into_body());
    let (tx, resp) = http::json_stream();
    tokio::task::spawn_blocking(move || {
        if !quiet {
            tx.send_blocking(json!({"status": "Loading layers", "progressDetail": {}, "id": ""}));
        }
        let tx2 = tx.clone();
        let res = ctx.images.load(&mut reader, &mut |line| {
            tx2.send_blocking(json!({ "stream": line }));
        });
        match res {
            Ok(loaded) => {
                for l in loaded {
                    let id = ctx.images.resolve(&l).map(|i| i.id).unwrap_or(l.clone());
                    ctx.events
                        .publish("image", "load", &id, attrs(&[("name", &l)]));
                }
            }
            Err(e) => {
                let m = e.to_string();
                tx.send_blocking(json!({"errorDetail": {"message": m}, "error": m}));
            }
        }
        // Read what the client still sends so it sees the answer rather than a reset.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    Ok(resp)
}

async fn create(ctx: Ctx, req: Req) -> ApiResult {
    if req.query.get("fromImage").is_some_and(|s| !s.is_empty()) {
        return super::pull::pull(ctx, req).await;
    }
    let src = req.query.get("fromSrc").unwrap_or("").to_string();
    if src.is_empty() {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    }
    if src != "-" {
        return Err(ApiError::bad_request(
            "importing from a URL is not supported: send the tarball as the request body with fromSrc=-",
        ));
    }
    let repo = req.query.get("repo").unwrap_or("").to_string();
    let tag = req.query.get("tag").unwrap_or("").to_string();
    let message = req.query.get("message").unwrap_or("").to_string();
    let changes = req.query.all("changes");
    let target = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    if let Some(t) = &target {
        berth_core::reference::Reference::parse(t)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let mut reader = BodyReader::new(req.into_body());
    let (tx, resp) = http::json_stream();
    tokio::task::spawn_blocking(move || {
        match ctx
            .images
            .import(&mut reader, target.as_deref(), &changes, &message)
        {
            Ok(id) => {
                let name = target.unwrap_or_default();
                ctx.events
                    .publish("image", "import", &id, attrs(&[("name", &name)]));
                tx.send_blocking(json!({ "status": id }));
            }
            Err(e) => {
                let m = e.to_string();
                tx.send_blocking(json!({"errorDetail": {"message": m}, "error": m}));
                // Read what the client still sends so it sees the answer rather than a reset.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            }
        }
    });
    Ok(resp)
}
