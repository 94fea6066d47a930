//! `docker pull` (`POST /images/create?fromImage=`): the query becomes a reference, platform and
//! credentials; the manifest is resolved before answering (so its errors are HTTP errors with
//! Docker's texts), then the 200 goes out and the pull service (`crate::images::pull`) streams
//! Docker's progress messages into it.

use super::distribution::decode_auth;
use crate::images::pull::{resolve, Pull};
use crate::server::http::{self, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use berth_core::reference::Reference;
use serde_json::json;

/// `POST /images/create?fromImage=...`.
pub async fn pull(ctx: Ctx, req: Req) -> ApiResult {
    let from = req.query.get("fromImage").unwrap_or("").to_string();
    let tag = req.query.get("tag").unwrap_or("").to_string();
    let full = if tag.is_empty() || from.contains('@') {
        from.clone()
    } else if tag.starts_with("sha256:") {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let r = Reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let platform = req
        .query
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut parts = p.splitn(2, '/');
            (
                parts.next().unwrap_or("linux").to_string(),
                parts.next().unwrap_or("").to_string(),
            )
        });
    let creds = decode_auth(req.header("x-registry-auth"));
    let reg = ctx.registry.clone();
    let (r2, creds2) = (r.clone(), creds.clone());
    let sources = crate::images::mirrors::sources(&ctx.config, &r);
    let resolved =
        tokio::task::spawn_blocking(move || resolve(&*reg, &r2, &sources, platform, &creds2))
            .await
            .map_err(ApiError::from)??;
    let (tx, resp) = http::json_stream();
    let sink = tx.clone();
    let p = Pull::new(
        ctx,
        creds,
        Box::new(move |v| {
            sink.send_blocking(v);
        }),
    );
    tokio::task::spawn_blocking(move || {
        if let Err(e) = p.run(&r, resolved) {
            tx.send_blocking(json!({"errorDetail": {"message": e}, "error": e}));
        }
    });
    Ok(resp)
}
