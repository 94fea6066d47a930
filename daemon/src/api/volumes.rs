//! Volume endpoints: `GET /volumes`, `POST /volumes/create`, `GET|DELETE /volumes/{name}`,
//! `POST /volumes/prune`, with moby's shapes and error texts.

use crate::filters::truthy;
use crate::server::http::{self, empty, ok_json, read_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use crate::volumes::{self, mounts};
use berth_api::types::volume::{Volume as ApiVolume, VolumeList, VolumesPruneResponse};
use hyper::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::GET, "/volumes", list);
    r.add(Method::POST, "/volumes/create", create);
    r.add(Method::POST, "/volumes/prune", prune);
    r.add(Method::GET, "/volumes/{name}", inspect);
    r.add(Method::DELETE, "/volumes/{name}", remove);
}

fn publish(ctx: &Ctx, action: &str, name: &str) {
    let mut a = BTreeMap::new();
    a.insert("driver".to_string(), "local".to_string());
    ctx.events.publish("volume", action, name, a);
}

async fn list(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    f.only(&["name", "driver", "label", "label!", "dangling"])?;
    let f = super::filters::volume(&f);
    let out: Vec<ApiVolume> = ctx
        .volumes
        .list()
        .iter()
        .filter(|v| f.matches(v, !mounts::users(&ctx.containers, &v.name).is_empty()))
        .map(volumes::Volume::to_api)
        .collect();
    ok_json(&VolumeList {
        volumes: Some(out),
        warnings: None,
    })
}

async fn create(ctx: Ctx, req: Req) -> ApiResult {
    let body: Value = read_json(req.into_body()).await?;
    let driver = body["Driver"].as_str().unwrap_or("");
    if !driver.is_empty() && driver != "local" {
        return Err(ApiError::not_found(format!(
            "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
        )));
    }
    let name = match body["Name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => volumes::anonymous_name(),
    };
    let labels = if body["Name"].as_str().unwrap_or("").is_empty()
        && body["Labels"].as_object().is_none_or(|m| m.is_empty())
    {
        volumes::anonymous_labels()
    } else {
        body["Labels"].clone()
    };
    let (v, created) = ctx.volumes.create(&name, &labels, &body["DriverOpts"])?;
    if created {
        publish(&ctx, "create", &v.name);
    }
    Ok(http::json(StatusCode::CREATED, &v.to_api()))
}

async fn inspect(ctx: Ctx, req: Req) -> ApiResult {
    let v = ctx.volumes.get(req.param("name"))?;
    ok_json(&v.to_api())
}

async fn remove(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.param("name").to_string();
    let force = req.query.bool("force", false);
    if force && ctx.volumes.get(&name).is_err() {
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    let users = mounts::users(&ctx.containers, &name);
    ctx.volumes.remove(&name, &users)?;
    publish(&ctx, "destroy", &name);
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn prune(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    // API 1.42 made prune spare named volumes unless `all` (which older versions refuse).
    let modern = req.version >= (1, 42);
    f.only(if modern {
        &["label", "label!", "all"]
    } else {
        &["label", "label!"]
    })?;
    let all = !modern || f.get("all").iter().any(|v| truthy(v));
    let filter = super::filters::volume(&f);
    let ctx2 = ctx.clone();
    let p = tokio::task::spawn_blocking(move || {
        volumes::prune::prune(&ctx2, &filter, all, |name| publish(&ctx2, "destroy", name))
    })
    .await
    .map_err(|e| ApiError::internal(format!("pruning volumes: {e}")))?;
    let mut a = BTreeMap::new();
    a.insert("reclaimed".to_string(), p.reclaimed.to_string());
    ctx.events.publish("volume", "prune", "", a);
    ok_json(&VolumesPruneResponse {
        volumes_deleted: Some(p.deleted),
        space_reclaimed: p.reclaimed,
    })
}
