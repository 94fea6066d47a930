//! The image endpoints that involve containers: `POST /commit` (a container's rw layer
//! becomes an image) and `GET /system/df` (disk usage of images, containers and their layers).

use super::{attrs, blocking, summary};
use crate::containers::monitor_client;
use crate::server::http::{self, ok_json, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use berth_api::types::image::ImageSummary;
use berth_image::CommitOpts;
use berth_monitor_proto::Command;
use hyper::StatusCode;
use serde_json::{json, Value};

/// Whether a user-given config value should override the container's (moby's merge: only
/// non-empty values win).
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(_) => true,
    }
}

pub(super) async fn commit(ctx: Ctx, req: Req) -> ApiResult {
    let q = req.query.clone();
    let c = ctx.containers.get(q.get("container").unwrap_or(""))?;
    let body: Value = http::read_json(req.into_body()).await?;
    let rec = c.record();
    let parent = Some(rec.image.clone()).filter(|s| !s.is_empty());
    let repo = q.get("repo").unwrap_or("").to_string();
    let tag = q.get("tag").unwrap_or("").to_string();
    let target = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    // The image config is JSON the image store merges into (a commit is not a hot path).
    let mut cfg = serde_json::to_value(&rec.config).unwrap_or_default();
    if let (Some(o), true) = (body.as_object(), cfg.is_object()) {
        for (k, v) in o {
            if is_set(v) {
                cfg[k] = v.clone();
            }
        }
    }
    let mut cmd = vec![rec.path.clone()];
    cmd.extend(rec.args.iter().cloned());
    let opts = CommitOpts {
        layer: c.id.clone(),
        parent,
        container_id: c.id.clone(),
        config: cfg,
        created_by: cmd.join(" ").trim().to_string(),
        changes: q.all("changes"),
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        tag: target,
    };
    let pause = q.bool("pause", true) && c.running();
    let sock = ctx.containers.monitor_sock(&c.id);
    if pause {
        let _ = monitor_client::call(&sock, Command::Pause).await;
    }
    let ctx2 = ctx.clone();
    let result = blocking(move || ctx2.images.commit(&opts)).await;
    if pause {
        let _ = monitor_client::call(&sock, Command::Resume).await;
    }
    let id = result?;
    ctx.events
        .publish("container", "commit", &c.id, attrs(&[("name", &c.name())]));
    Ok(http::json(
        StatusCode::CREATED,
        &berth_api::types::container::IdResponse { id },
    ))
}

pub(super) async fn df(ctx: Ctx, _req: Req) -> ApiResult {
    let ctx2 = ctx.clone();
    let (total, imgs) = blocking(move || Ok(ctx2.images.disk_usage())).await?;
    let images: Vec<ImageSummary> = imgs
        .iter()
        .map(|(i, shared)| {
            let n = ctx.containers.using_image(&i.id).len() as i64;
            summary(i, *shared as i64, n)
        })
        .collect();
    let all = ctx.containers.all();
    let containers = super::super::containers_list::summaries_with_sizes(&ctx, &all).await?;
    let ctx3 = ctx.clone();
    let volumes: Vec<berth_api::types::volume::Volume> = blocking(move || {
        Ok(ctx3
            .volumes
            .list()
            .iter()
            .map(|v| {
                let users = crate::volumes::mounts::users(&ctx3.containers, &v.name);
                let mut j = v.to_api();
                j.usage_data = Some(berth_api::types::volume::UsageData {
                    size: crate::volumes::disk_usage(&v.mountpoint) as i64,
                    ref_count: users.len() as i64,
                });
                j
            })
            .collect())
    })
    .await?;
    ok_json(&json!({
        "LayersSize": total,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    }))
}
