//! `POST /build`: Docker's classic (non-BuildKit) build endpoint — the context tarball is
//! unpacked into a fresh private folder (no size limit, as Docker), the builder runs, and
//! its output streams as Docker's `{"stream": ...}` / `{"aux": {"ID": ...}}` /
//! `errorDetail` messages.

use crate::build::{build, BuildOpts, BUILD_STACK};
use crate::server::http::{self, ApiError, ApiResult, BodyReader};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use hyper::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Registers the route.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/build", build_h);
    r.add(Method::POST, "/build/prune", prune);
}

async fn prune(_ctx: Ctx, _req: Req) -> ApiResult {
    http::ok_json(&json!({"CachesDeleted": [], "SpaceReclaimed": 0}))
}

fn json_map(s: Option<&str>) -> Result<BTreeMap<String, Value>, ApiError> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON parameter: {e}"))),
    }
}

async fn build_h(ctx: Ctx, req: Req) -> ApiResult {
    let q = req.query.clone();
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "remote build contexts are not supported; send the context as a tarball",
        ));
    }
    let build_args = json_map(q.get("buildargs"))?
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map(str::to_string)))
        .collect();
    let labels = json_map(q.get("labels"))?
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("").to_string()))
        .collect();
    let opts = BuildOpts {
        tags: q.all("t"),
        dockerfile: q
            .get("dockerfile")
            .filter(|d| !d.is_empty())
            .unwrap_or("Dockerfile")
            .to_string(),
        build_args,
        labels,
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: q.bool("nocache", false),
        rm: q.bool("rm", true),
        force_rm: q.bool("forcerm", false),
        quiet: q.bool("q", false),
        network: q.get("networkmode").unwrap_or("").to_string(),
    };
    for t in &opts.tags {
        berth_core::reference::Reference::parse(t)
            .map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))?;
    }
    let reader = BodyReader::new(req.into_body());
    let (tx, resp) = http::json_stream();
    let rt = tokio::runtime::Handle::current();
    let job = move || {
        let dir = ctx.images.tmp_dir().join(format!(
            "build-ctx-{}",
            (0..8)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect::<String>()
        ));
        // A fresh folder of berthd's own, so the tar lands in nothing it did not make; the
        // tar is a plain one (no layer whiteouts), unpacked without following its links.
        let unpacked = std::fs::create_dir(&dir)
            .map_err(|e| e.to_string())
            .and_then(|_| berth_archive::decompress(reader).map_err(|e| e.to_string()))
            .and_then(|(_, plain)| {
                berth_archive::extract(plain, &dir, &berth_archive::ExtractOptions::default())
                    .map_err(|e| e.to_string())
            });
        let result = match unpacked {
            Err(e) => Err(crate::build::BuildError {
                message: format!("invalid build context: {e}"),
                code: None,
            }),
            Ok(_) => build(&ctx, &opts, &dir, &tx, &rt),
        };
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(id) => {
                tx.send_blocking(json!({"aux": {"ID": id}}));
                let short: String = id.trim_start_matches("sha256:").chars().take(12).collect();
                if !opts.quiet {
                    tx.send_blocking(json!({"stream": format!("Successfully built {short}\n")}));
                }
                for t in &opts.tags {
                    match ctx.images.tag(&id, t) {
                        Ok(_) => {
                            let shown = berth_core::reference::Reference::parse(t)
                                .map(|r| r.familiar_string())
                                .unwrap_or(t.clone());
                            if !opts.quiet {
                                tx.send_blocking(
                                    json!({"stream": format!("Successfully tagged {shown}\n")}),
                                );
                            }
                        }
                        Err(e) => {
                            let m = e.to_string();
                            tx.send_blocking(json!({"errorDetail": {"message": m}, "error": m}));
                        }
                    }
                }
            }
            Err(e) => {
                let mut detail = json!({"message": e.message});
                if let Some(c) = e.code {
                    detail["code"] = json!(c);
                }
                tx.send_blocking(json!({"errorDetail": detail, "error": e.message}));
            }
        }
    };
    // A thread of its own with a large stack: copying, diffing and removing trees recurse
    // once per folder level, and a hostile context or stage nests folders deeply
    // (`COPY` refuses beyond `copy::MAX_DEPTH` levels, which this stack holds).
    std::thread::Builder::new()
        .name("berth-build".into())
        .stack_size(BUILD_STACK)
        .spawn(job)
        .map_err(|e| ApiError::internal(format!("starting the build: {e}")))?;
    Ok(resp)
}
