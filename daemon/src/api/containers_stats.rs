//! `GET /containers/{id}/stats`: one-shot or streaming (~1/s) resource figures from the
//! container's cgroup, in Docker's JSON shape (with `precpu_stats` for the CLI's CPU %).

use crate::containers::Container;
use crate::server::http::{self, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use berth_runtime::cgroups::Stats;
use serde_json::{json, Value};

fn read(c: &Container) -> Stats {
    crate::containers::cgroup(c).stats()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn cpu_json(s: &Stats) -> Value {
    json!({
        "cpu_usage": {
            "total_usage": s.cpu_total_ns,
            "percpu_usage": if s.cpu_percpu_ns.is_empty() { Value::Null } else { json!(s.cpu_percpu_ns) },
            "usage_in_kernelmode": s.cpu_system_ns,
            "usage_in_usermode": s.cpu_user_ns,
        },
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// Docker's stats object of a running container (`pre`: the previous sample).
fn stats_json(c: &Container, s: &Stats, pre: Option<&(Stats, String)>) -> Value {
    let mut mem_stats: serde_json::Map<String, Value> = s
        .memory_stats
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    mem_stats
        .entry("inactive_file")
        .or_insert(json!(s.inactive_file));
    mem_stats
        .entry("total_inactive_file")
        .or_insert(json!(s.inactive_file));
    let blkio: Vec<Value> = s
        .io_service_bytes
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect();
    let empty_cpu = json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
    json!({
        "read": now(),
        "preread": pre.map(|p| p.1.clone()).unwrap_or_else(|| crate::containers::ZERO_TIME.to_string()),
        "id": c.id,
        "name": format!("/{}", c.name()),
        "num_procs": 0,
        "pids_stats": {"current": s.pids_current, "limit": if s.pids_limit == 0 { Value::Null } else { json!(s.pids_limit) }},
        "blkio_stats": {"io_service_bytes_recursive": if blkio.is_empty() { Value::Null } else { json!(blkio) }, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null},
        "storage_stats": {},
        "cpu_stats": cpu_json(s),
        "precpu_stats": pre.map(|p| cpu_json(&p.0)).unwrap_or(empty_cpu),
        "memory_stats": {"usage": s.memory_usage, "max_usage": s.memory_max_usage, "limit": s.memory_limit, "stats": mem_stats},
        "networks": networks(c.pid()),
    })
}

/// Interface counters from inside the container's network namespace.
fn networks(pid: i64) -> Value {
    let mut out = serde_json::Map::new();
    if pid <= 0 {
        return Value::Object(out);
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    for n in berth_core::netns::dev_counters(&text) {
        out.insert(
            n.name,
            json!({
                "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets, "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets, "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
            }),
        );
    }
    Value::Object(out)
}

/// Docker's all-zero object for a container that is not running.
fn stopped_json(c: &Container) -> Value {
    json!({
        "read": crate::containers::ZERO_TIME, "preread": crate::containers::ZERO_TIME,
        "id": c.id, "name": format!("/{}", c.name()),
        "pids_stats": {}, "blkio_stats": {}, "num_procs": 0, "storage_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": {},
    })
}

/// The handler.
pub async fn stats(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let stream = req.query.bool("stream", true);
    let one_shot = req.query.bool("one-shot", false);
    let (tx, resp) = http::stream("application/json");
    tokio::spawn(async move {
        let mut pre: Option<(Stats, String)> = None;
        if !stream && !one_shot && c.running() {
            pre = Some((read(&c), now()));
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        loop {
            let body = if c.running() {
                let s = read(&c);
                let v = stats_json(&c, &s, pre.as_ref());
                pre = Some((s, now()));
                v
            } else {
                stopped_json(&c)
            };
            if tx
                .send(bytes::Bytes::from(format!("{body}\n")))
                .await
                .is_err()
                || !stream
            {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(resp)
}
