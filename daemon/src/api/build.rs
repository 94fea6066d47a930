//! `POST /build`: Docker's classic (non-BuildKit) build endpoint — the query becomes
//! [`BuildOpts`], the builder (`crate::build::run`) runs on a thread of its own, and its typed
//! [`BuildEvent`]s are rendered here as Docker's `{"stream": ...}` / `{"aux": {"ID": ...}}` /
//! `errorDetail` messages.

use crate::build::{short, BuildEvent, BuildOpts, Ready, BUILD_STACK};
use crate::filters::go_duration_nanos;
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

/// `POST /build/prune` (`docker builder prune`): the filters are checked as Docker's; the
/// classic builder keeps its cache as images (`image prune` removes those), so no BuildKit
/// cache record is ever deleted here.
async fn prune(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    let keys = [
        "id",
        "parent",
        "type",
        "description",
        "inuse",
        "shared",
        "private",
        "until",
        "unused-for",
        "unusedfor",
        "label",
        "label!",
    ];
    if let Err(e) = f.only(&keys) {
        return Err(ApiError::bad_request(format!(
            "failed to prune build cache: {}",
            e.message
        )));
    }
    for k in ["until", "unused-for", "unusedfor"] {
        if let Some(v) = f.get(k).iter().find(|v| go_duration_nanos(v).is_none()) {
            return Err(ApiError::bad_request(format!(
                "failed to prune build cache: \"{k}\" filter expects a duration (e.g., '24h'): time: invalid duration {v:?}"
            )));
        }
    }
    let reclaimed = BTreeMap::from([("reclaimed".to_string(), "0".to_string())]);
    ctx.events.publish("builder", "prune", "", reclaimed);
    http::ok_json(&json!({"CachesDeleted": null, "SpaceReclaimed": 0}))
}

fn json_map(s: Option<&str>) -> Result<BTreeMap<String, Value>, ApiError> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON parameter: {e}"))),
    }
}

/// One build event as Docker's JSON stream shows it; `None` for progress under `-q`.
fn render(ev: &BuildEvent, quiet: bool) -> Option<Value> {
    if quiet && ev.is_progress() {
        // Under `-q` Docker's one line is the image ID.
        return match ev {
            BuildEvent::Built(id) => Some(json!({ "stream": format!("{id}\n") })),
            _ => None,
        };
    }
    let line = |s: String| Some(json!({ "stream": s }));
    match ev {
        BuildEvent::Step {
            n,
            total,
            instruction,
        } => line(format!("Step {n}/{total} : {instruction}\n")),
        BuildEvent::UsingCache => line(" ---> Using cache\n".into()),
        BuildEvent::StepImage(id) => line(format!(" ---> {}\n", short(id))),
        BuildEvent::RunningIn(id) => line(format!(" ---> Running in {}\n", short(id))),
        BuildEvent::Output(text) => line(text.clone()),
        BuildEvent::RemovedIntermediate(id) => {
            line(format!("Removing intermediate container {}\n", short(id)))
        }
        BuildEvent::ImageId(id) => Some(json!({"aux": {"ID": id}})),
        BuildEvent::Built(id) => line(format!("Successfully built {}\n", short(id))),
        BuildEvent::Tagged(shown) => line(format!("Successfully tagged {shown}\n")),
        BuildEvent::Error { message, code } => {
            let mut detail = json!({ "message": message });
            if let Some(c) = code {
                detail["code"] = json!(c);
            }
            Some(json!({"errorDetail": detail, "error": message}))
        }
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
    // Resource limits for RUN, as moby reads them (numbers, or text for the cpuset/cgroup).
    let mut resources = serde_json::Map::new();
    for (param, field) in [
        ("memory", "Memory"),
        ("memswap", "MemorySwap"),
        ("cpushares", "CpuShares"),
        ("cpuperiod", "CpuPeriod"),
        ("cpuquota", "CpuQuota"),
    ] {
        if let Some(v) = q.get(param).filter(|v| !v.is_empty()) {
            let n: i64 = v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid {param} {v:?}")))?;
            resources.insert(field.into(), json!(n));
        }
    }
    for (param, field) in [
        ("cpusetcpus", "CpusetCpus"),
        ("cpusetmems", "CpusetMems"),
        ("cgroupparent", "CgroupParent"),
    ] {
        if let Some(v) = q.get(param).filter(|v| !v.is_empty()) {
            resources.insert(field.into(), json!(v));
        }
    }
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
        extra_hosts: q.all("extrahosts"),
        resources,
        cache_from: match q.get("cachefrom").filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(s) => serde_json::from_str(s)
                .map_err(|e| ApiError::bad_request(format!("invalid cachefrom: {e}")))?,
        },
        shm_size: match q.get("shmsize").filter(|s| !s.is_empty()) {
            None => 0,
            Some(s) => s
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid shmsize {s:?}")))?,
        },
        ulimits: match q.get("ulimits").filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(s) => serde_json::from_str(s)
                .map_err(|e| ApiError::bad_request(format!("invalid ulimits: {e}")))?,
        },
    };
    for t in &opts.tags {
        berth_core::reference::Reference::parse(t)
            .map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))?;
    }
    let reader = BodyReader::new(req.into_body());
    let (tx, resp) = http::json_stream();
    let rt = tokio::runtime::Handle::current();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let ready = Ready::new(move |r| {
        let _ = ready_tx.send(r);
    });
    let job = move || {
        let quiet = opts.quiet;
        let sink = |ev: BuildEvent| {
            if let Some(v) = render(&ev, quiet) {
                tx.send_blocking(v);
            }
        };
        crate::build::run(&ctx, &opts, reader, &sink, &rt, &ready);
    };
    // A thread of its own with a large stack: copying, diffing and removing trees recurse
    // once per folder level, and a hostile context or stage nests folders deeply
    // (`COPY` refuses beyond `copy::MAX_DEPTH` levels, which this stack holds).
    std::thread::Builder::new()
        .name("berth-build".into())
        .stack_size(BUILD_STACK)
        .spawn(job)
        .map_err(|e| ApiError::internal(format!("starting the build: {e}")))?;
    // As Docker: what fails before the first step is the answer's status, not a message.
    match ready_rx.await {
        Ok(Err(message)) => Err(ApiError::bad_request(message)),
        _ => Ok(resp),
    }
}
