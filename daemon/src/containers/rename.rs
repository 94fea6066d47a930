//! Renaming a container.

use super::exit;
use crate::server::http::{empty, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use hyper::StatusCode;
use serde_json::json;

pub async fn rename(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let new = req
        .query
        .get("name")
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    if !crate::containers::names::valid(&new) {
        return Err(ApiError::bad_request(format!(
            "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if let Ok(o) = ctx.containers.get(&new) {
        if o.name() == new {
            return Err(ApiError::conflict(format!("Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.", o.id)));
        }
    }
    let old = format!("/{}", c.name());
    c.update(|r| r["Name"] = json!(format!("/{new}")));
    ctx.containers.save(&c)?;
    let mut a = exit::attrs(&c);
    a.insert("oldName".into(), old);
    ctx.events.publish("container", "rename", &c.id, a);
    Ok(empty(StatusCode::NO_CONTENT))
}
