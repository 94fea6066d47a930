//! Container listing and inspection: `GET /containers/json` (filters in `containers_filter`),
//! `GET /containers/{id}/json` and `POST /containers/prune`.

use crate::containers::Container;
use crate::server::http::{ok_json, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use berth_api::units::human_duration;
use serde_json::{json, Value};
use std::sync::Arc;

/// Docker's inspect JSON of a container.
pub fn inspect_json(c: &Container) -> Value {
    let mut r = c.record();
    if let Some(o) = r.as_object_mut() {
        o.remove("ManuallyStopped");
    }
    let live = r
        .pointer("/NetworkSettings/Ports")
        .filter(|p| p.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    let mut ports = live.unwrap_or_else(|| {
        r.pointer("/HostConfig/PortBindings")
            .cloned()
            .unwrap_or(json!({}))
    });
    // As Docker reports them: the bound address (0.0.0.0 for "all").
    if let Some(m) = ports.as_object_mut() {
        for list in m.values_mut() {
            for b in list.as_array_mut().into_iter().flatten() {
                if b["HostIp"].as_str().unwrap_or("").is_empty() {
                    b["HostIp"] = json!("0.0.0.0");
                }
            }
        }
    }
    r["NetworkSettings"]["Ports"] = ports;
    r
}

pub async fn inspect(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    ok_json(&inspect_json(&c))
}

fn status_text(state: &Value) -> String {
    let since = |t: &str| -> String {
        let secs = chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| (chrono::Utc::now().timestamp() - d.timestamp()).max(0))
            .unwrap_or(0);
        human_duration(secs)
    };
    match state["Status"].as_str().unwrap_or("created") {
        "running" => format!("Up {}", since(state["StartedAt"].as_str().unwrap_or(""))),
        "paused" => format!(
            "Up {} (Paused)",
            since(state["StartedAt"].as_str().unwrap_or(""))
        ),
        "exited" => format!(
            "Exited ({}) {} ago",
            state["ExitCode"].as_i64().unwrap_or(0),
            since(state["FinishedAt"].as_str().unwrap_or(""))
        ),
        "created" => "Created".into(),
        other => other.to_string(),
    }
}

fn command_text(r: &Value) -> String {
    let mut parts = vec![r["Path"].as_str().unwrap_or("").to_string()];
    parts.extend(
        r["Args"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string)),
    );
    parts.join(" ")
}

/// A container as `GET /containers/json` lists it.
fn summary(c: &Container) -> Value {
    c.view(|r| summary_of(&c.id, r))
}

fn summary_of(id: &str, r: &Value) -> Value {
    let created = chrono::DateTime::parse_from_rfc3339(r["Created"].as_str().unwrap_or(""))
        .map(|d| d.timestamp())
        .unwrap_or(0);
    let mut ports = Vec::new();
    let live = r
        .pointer("/NetworkSettings/Ports")
        .filter(|p| p.as_object().is_some_and(|m| !m.is_empty()));
    if let Some(pb) = live
        .or(r.pointer("/HostConfig/PortBindings"))
        .and_then(Value::as_object)
    {
        for (k, v) in pb {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            for b in v.as_array().cloned().unwrap_or_default() {
                ports.push(json!({"IP": if b["HostIp"].as_str().unwrap_or("").is_empty() { "0.0.0.0" } else { b["HostIp"].as_str().unwrap_or("") }, "PrivatePort": port.parse::<u16>().unwrap_or(0), "PublicPort": b["HostPort"].as_str().unwrap_or("0").parse::<u16>().unwrap_or(0), "Type": proto}));
            }
        }
    }
    json!({
        "Id": id,
        "Names": [r["Name"]],
        "Image": r.pointer("/Config/Image").cloned().unwrap_or(json!("")),
        "ImageID": r["Image"],
        "Command": command_text(r),
        "Created": created,
        "Ports": ports,
        "Labels": r.pointer("/Config/Labels").cloned().unwrap_or(json!({})),
        "State": r.pointer("/State/Status").cloned().unwrap_or(json!("created")),
        "Status": status_text(&r["State"]),
        "HostConfig": {"NetworkMode": r.pointer("/HostConfig/NetworkMode").cloned().unwrap_or(json!("bridge"))},
        "NetworkSettings": {"Networks": r.pointer("/NetworkSettings/Networks").cloned().unwrap_or(json!({}))},
        "Mounts": r["Mounts"],
    })
}

pub async fn list(ctx: Ctx, req: Req) -> ApiResult {
    let all = req.query.bool("all", false);
    let limit = req.query.int("limit")?.unwrap_or(-1);
    let f = super::containers_filter::PsFilter::new(&ctx, req.query.filters()?)?;
    let all = all || f.wants_all();
    let mut cs: Vec<Arc<Container>> = ctx
        .containers
        .all()
        .into_iter()
        .filter(|c| (all || c.running() || limit > 0) && f.matches(c))
        .collect();
    // Newest first; each record's creation time read once, in place.
    cs.sort_by_cached_key(|c| {
        std::cmp::Reverse(c.view(|r| r["Created"].as_str().unwrap_or("").to_string()))
    });
    if limit > 0 {
        cs.truncate(limit as usize);
    }
    if req.query.bool("size", false) {
        return ok_json(&summaries_with_sizes(&ctx, &cs).await?);
    }
    let out: Vec<Value> = cs.iter().map(|c| summary(c)).collect();
    ok_json(&out)
}

/// [`summary`]s with `SizeRw` (the content of the container's rw layer) and `SizeRootFs`
/// (that plus its image), as `ps -s` and `system df` show them.
pub(crate) async fn summaries_with_sizes(
    ctx: &Ctx,
    cs: &[Arc<Container>],
) -> Result<Vec<Value>, ApiError> {
    let items: Vec<(String, Option<String>)> = cs
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                c.record()["Image"].as_str().map(str::to_string),
            )
        })
        .collect();
    let ctx2 = ctx.clone();
    let sizes: Vec<(u64, u64)> = tokio::task::spawn_blocking(move || {
        // Each image's record is read once, however many containers use it.
        let mut image_sizes = std::collections::HashMap::new();
        items
            .iter()
            .map(|(id, img)| {
                let rw = ctx2.storage.usage(id).map(|u| u.size).unwrap_or(0);
                let base = img.as_ref().map_or(0, |i| {
                    *image_sizes
                        .entry(i.clone())
                        .or_insert_with(|| ctx2.images.get(i).map_or(0, |im| im.size))
                });
                (rw, rw + base)
            })
            .collect()
    })
    .await?;
    Ok(cs
        .iter()
        .zip(sizes)
        .map(|(c, (rw, rootfs))| {
            let mut v = summary(c);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rootfs);
            v
        })
        .collect())
}

pub async fn prune(ctx: Ctx, _req: Req) -> ApiResult {
    let deleted = crate::containers::remove::prune(&ctx).await?;
    ok_json(&json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}))
}
