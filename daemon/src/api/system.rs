//! System endpoints: `/_ping`, `/version`, and the swarm endpoints that answer "not part of a
//! swarm"; `/info` and `/events` live in their own modules and are registered here.

use crate::server::http::{self, ok_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::server::{API_VERSION, MIN_API_VERSION};
use crate::state::Ctx;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::json;

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::GET, "/_ping", ping);
    r.add(Method::HEAD, "/_ping", ping);
    r.add(Method::GET, "/version", version);
    r.add(Method::GET, "/info", super::info::info);
    r.add(Method::GET, "/events", super::events::events);
    for p in [
        "/swarm",
        "/swarm/{x*}",
        "/nodes",
        "/nodes/{x*}",
        "/services",
        "/services/{x*}",
        "/tasks",
        "/tasks/{x*}",
        "/secrets",
        "/secrets/{x*}",
        "/configs",
        "/configs/{x*}",
    ] {
        for m in [Method::GET, Method::POST, Method::DELETE] {
            r.add(m, p, swarm);
        }
    }
}

async fn swarm(_: Ctx, _: Req) -> ApiResult {
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "This node is not part of a swarm",
    ))
}

async fn ping(_: Ctx, req: Req) -> ApiResult {
    let head = req.inner.method() == Method::HEAD;
    let mut r = if head {
        http::bytes(StatusCode::OK, "text/plain; charset=utf-8", "")
    } else {
        http::bytes(StatusCode::OK, "text/plain; charset=utf-8", "OK")
    };
    let h = r.headers_mut();
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    Ok(r)
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn version(_: Ctx, _: Req) -> ApiResult {
    let v = env!("CARGO_PKG_VERSION");
    let details = json!({
        "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "berth",
        "GoVersion": "rust", "Os": "linux", "Arch": arch(), "KernelVersion": super::info::kernel(),
        "Experimental": "false", "BuildTime": "2026-11-28T00:00:00.000000000+00:00",
    });
    ok_json(&json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": v, "Details": details}],
        "Version": v, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "berth", "GoVersion": "rust", "Os": "linux", "Arch": arch(),
        "KernelVersion": super::info::kernel(), "BuildTime": "2026-11-28T00:00:00.000000000+00:00",
    }))
}
