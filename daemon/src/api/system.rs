//! System endpoints: `/_ping`, `/version`, and the swarm endpoints that answer "not part of a
//! swarm"; `/info` and `/events` live in their own modules and are registered here.

use crate::server::http::{self, ok_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::server::{API_VERSION, MIN_API_VERSION};
use crate::state::Ctx;
use berth_api::types::system::{ComponentVersion, Platform, Version};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use std::collections::BTreeMap;

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

/// What `/version` calls the toolchain (Docker reports its Go version).
const TOOLCHAIN: &str = "rust";
/// berth does not record build times or commits in the binary.
const UNKNOWN: &str = "n/a";

async fn version(_: Ctx, _: Req) -> ApiResult {
    let v = env!("CARGO_PKG_VERSION").to_string();
    let kernel = super::info::kernel();
    let details: BTreeMap<String, String> = [
        ("ApiVersion", API_VERSION),
        ("MinAPIVersion", MIN_API_VERSION),
        ("GitCommit", UNKNOWN),
        ("GoVersion", TOOLCHAIN),
        ("Os", "linux"),
        ("Arch", arch()),
        ("KernelVersion", kernel.as_str()),
        ("Experimental", "false"),
        ("BuildTime", UNKNOWN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ok_json(&Version {
        platform: Platform {
            name: "berth".into(),
        },
        components: vec![ComponentVersion {
            name: "Engine".into(),
            version: v.clone(),
            details,
        }],
        version: v,
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: UNKNOWN.into(),
        go_version: TOOLCHAIN.into(),
        os: "linux".into(),
        arch: arch().into(),
        kernel_version: kernel,
        experimental: false,
        build_time: UNKNOWN.into(),
    })
}
