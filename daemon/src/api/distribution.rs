//! Registry endpoints: push (`/images/{name}/push`) and login (`/auth`), streaming Docker's
//! progress messages, and the `X-Registry-Auth` decoding pull shares (pull is in
//! [`super::pull`]).

use crate::server::http::{self, ok_json, read_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use base64::Engine as _;
use berth_core::reference::Reference;
use berth_core::registry::Credentials;
use hyper::Method;
use serde_json::{json, Value};

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/images/{name*}/push", push);
    r.add(Method::POST, "/auth", auth);
}

/// Decodes `X-Registry-Auth` leniently (base64url or standard, padded or not; bad = anonymous).
pub fn decode_auth(h: Option<&str>) -> Credentials {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Credentials::default();
    };
    let trimmed = h.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed));
    let Ok(bytes) = bytes else {
        return Credentials::default();
    };
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Credentials {
        username: v["username"].as_str().unwrap_or("").into(),
        password: v["password"].as_str().unwrap_or("").into(),
        identity_token: v["identitytoken"].as_str().unwrap_or("").into(),
    }
}

async fn push(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.param("name").to_string();
    let tag = req
        .query
        .get("tag")
        .filter(|t| !t.is_empty())
        .unwrap_or("latest")
        .to_string();
    let full = format!("{name}:{tag}");
    let r = Reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let img = ctx.images.resolve(&r.familiar_string()).map_err(|_| {
        ApiError::not_found(format!(
            "An image does not exist locally with the tag: {}",
            r.familiar_name()
        ))
    })?;
    let creds = decode_auth(req.header("x-registry-auth"));
    let (tx, resp) = http::json_stream();
    tokio::task::spawn_blocking(move || {
        let send = |v: Value| tx.send_blocking(v);
        let run = || -> Result<(), String> {
            let reg = ctx.registry.clone();
            send(json!({"status": format!("The push refers to repository [{}]", r.name())}));
            let chains = berth_image::chain_ids(&img.diff_ids);
            let mut descs = Vec::new();
            for (chain, diff) in chains.iter().zip(&img.diff_ids) {
                let short: String = diff
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                send(json!({"status": "Preparing", "progressDetail": {}, "id": short}));
                let mut tar = ctx
                    .images
                    .open_layer_tar(chain)
                    .map_err(|e| e.to_string())?;
                let size = tar.size();
                if reg
                    .blob_exists(&r, diff, &creds)
                    .map_err(|e| e.to_string())?
                {
                    send(
                        json!({"status": "Layer already exists", "progressDetail": {}, "id": short}),
                    );
                } else {
                    send(
                        json!({"status": "Pushing", "progressDetail": {"current": 0, "total": size}, "id": short}),
                    );
                    // A layer that cannot be rebuilt exactly says so, not how the upload ended.
                    reg.push_blob(&r, diff, size, &creds, &mut tar)
                        .map_err(|e| tar.failure().map_or_else(|| e.to_string(), str::to_string))?;
                    send(json!({"status": "Pushed", "progressDetail": {}, "id": short}));
                }
                descs.push(json!({"mediaType": berth_image::media::OCI_LAYER, "digest": diff, "size": size}));
            }
            let cfg = ctx
                .images
                .config_bytes(&img.id)
                .map_err(|e| e.to_string())?;
            if !reg
                .blob_exists(&r, &img.id, &creds)
                .map_err(|e| e.to_string())?
            {
                reg.push_blob(&r, &img.id, cfg.len() as u64, &creds, &mut cfg.as_slice())
                    .map_err(|e| e.to_string())?;
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": berth_image::media::OCI_MANIFEST,
                "config": {"mediaType": berth_image::media::OCI_CONFIG, "digest": img.id, "size": cfg.len()},
                "layers": descs,
            });
            let bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
            let digest = reg
                .push_manifest(&r, berth_image::media::OCI_MANIFEST, &bytes, &creds)
                .map_err(|e| e.to_string())?;
            let _ = ctx
                .images
                .add_repo_digest(&img.id, &format!("{}@{digest}", r.familiar_name()));
            send(json!({"status": format!("{tag}: digest: {digest} size: {}", bytes.len())}));
            send(
                json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": bytes.len()}}),
            );
            ctx.events
                .publish("image", "push", &img.id, Default::default());
            Ok(())
        };
        if let Err(e) = run() {
            tx.send_blocking(json!({"errorDetail": {"message": e}, "error": e}));
        }
    });
    Ok(resp)
}

async fn auth(ctx: Ctx, req: Req) -> ApiResult {
    let body: Value = read_json(req.into_body()).await?;
    let server = body["serveraddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("https://index.docker.io/v1/")
        .to_string();
    let creds = Credentials {
        username: body["username"].as_str().unwrap_or("").into(),
        password: body["password"].as_str().unwrap_or("").into(),
        identity_token: body["identitytoken"].as_str().unwrap_or("").into(),
    };
    let reg = ctx.registry.clone();
    let res = tokio::task::spawn_blocking(move || reg.login(&server, &creds)).await?;
    match res {
        Ok(()) => ok_json(&json!({"Status": "Login Succeeded", "IdentityToken": ""})),
        Err(berth_core::DriverError::Unauthorized(m)) => {
            Err(ApiError::new(hyper::StatusCode::UNAUTHORIZED, m))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}
