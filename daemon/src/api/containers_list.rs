//! Container listing and inspection: `GET /containers/json` (filters in `containers_filter`),
//! `GET /containers/{id}/json` and `POST /containers/prune`.

use crate::containers::{Container, ContainerRecord};
use crate::server::http::{ok_json, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use berth_api::types::container::{
    ContainerJson, ContainerState, ContainerSummary, ContainersPruneResponse, Port, PortBinding,
};
use berth_api::units::human_duration;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The published ports of a record as Docker reports them: the live bindings while it runs,
/// else the requested ones, each with its bound address (0.0.0.0 for "all").
fn ports(r: &ContainerRecord) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    let live = &r.network_settings.ports;
    let mut ports = if live.is_empty() {
        r.host_config.port_bindings.clone().unwrap_or_default()
    } else {
        live.clone()
    };
    for b in ports.values_mut().flatten().flatten() {
        if b.host_ip.is_empty() {
            b.host_ip = "0.0.0.0".into();
        }
    }
    ports
}

/// A container's endpoints as clients see them (without berth's bookkeeping members).
fn shown_networks(
    nets: &BTreeMap<String, Box<berth_api::types::network::EndpointSettings>>,
) -> BTreeMap<String, Box<berth_api::types::network::EndpointSettings>> {
    let mut out = nets.clone();
    for ep in out.values_mut() {
        ep.extra
            .retain(|k, _| !crate::network::endpoints::bookkeeping(k));
    }
    out
}

/// Docker's inspect shape of a container: the record (without berth's bookkeeping) plus
/// the derived fields.
pub fn inspect_json(c: &Container) -> ContainerJson {
    c.view(|r| {
        let mut out = r.inspect.clone();
        out.network_settings.ports = ports(r);
        out.network_settings.networks = shown_networks(&r.network_settings.networks);
        out
    })
}

pub async fn inspect(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let mut out = inspect_json(&c);
    // Before API 1.45 a live endpoint on a user network listed the short id among its
    // aliases (it is in `DNSNames` since).
    if req.version < (1, 45) {
        let short: String = c.id.chars().take(12).collect();
        for (name, ep) in out.network_settings.networks.iter_mut() {
            let user = !crate::network::PREDEFINED.contains(&name.as_str());
            if !user || ep.endpoint_id.is_empty() {
                continue;
            }
            let aliases = ep.aliases.get_or_insert_with(Vec::new);
            if !aliases.contains(&short) {
                aliases.push(short.clone());
            }
        }
    }
    ok_json(&out)
}

fn status_text(state: &ContainerState) -> String {
    let since = |t: &str| -> String {
        let secs = chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| (chrono::Utc::now().timestamp() - d.timestamp()).max(0))
            .unwrap_or(0);
        human_duration(secs)
    };
    match state.status() {
        "running" => match &state.health {
            Some(h) => format!("Up {} ({})", since(&state.started_at), h.summary()),
            None => format!("Up {}", since(&state.started_at)),
        },
        "paused" => format!("Up {} (Paused)", since(&state.started_at)),
        "exited" => format!(
            "Exited ({}) {} ago",
            state.exit_code,
            since(&state.finished_at)
        ),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            state.exit_code,
            since(&state.finished_at)
        ),
        "created" => "Created".into(),
        other => other.to_string(),
    }
}

fn command_text(r: &ContainerRecord) -> String {
    let mut parts = vec![r.path.clone()];
    parts.extend(r.args.iter().cloned());
    parts.join(" ")
}

/// A container as `GET /containers/json` lists it.
fn summary(c: &Container) -> ContainerSummary {
    c.view(|r| summary_of(&c.id, r))
}

fn summary_of(id: &str, r: &ContainerRecord) -> ContainerSummary {
    let created = chrono::DateTime::parse_from_rfc3339(&r.created)
        .map(|d| d.timestamp())
        .unwrap_or(0);
    let mut list = Vec::new();
    for (k, v) in ports(r) {
        let (port, proto) = k.split_once('/').unwrap_or((&k, "tcp"));
        for b in v.into_iter().flatten() {
            list.push(Port {
                ip: b.host_ip,
                private_port: port.parse().unwrap_or(0),
                public_port: b.host_port.parse().unwrap_or(0),
                kind: proto.to_string(),
            });
        }
    }
    let mode = Some(r.host_config.network_mode.as_str()).filter(|m| !m.is_empty());
    ContainerSummary {
        id: id.to_string(),
        names: vec![r.name.clone()],
        image: r.config.image.clone(),
        image_id: r.image.clone(),
        command: command_text(r),
        created,
        ports: list,
        size_rw: None,
        size_root_fs: None,
        labels: r.config.labels.clone().unwrap_or_default(),
        state: r.state.status().to_string(),
        status: status_text(&r.state),
        host_config: json!({"NetworkMode": mode.unwrap_or("bridge")}),
        network_settings: json!({"Networks": shown_networks(&r.network_settings.networks)}),
        mounts: r.mounts.clone(),
    }
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
    cs.sort_by_cached_key(|c| std::cmp::Reverse(c.view(|r| r.created.clone())));
    if limit > 0 {
        cs.truncate(limit as usize);
    }
    let mut out = if req.query.bool("size", false) {
        summaries_with_sizes(&ctx, &cs).await?
    } else {
        cs.iter().map(|c| summary(c)).collect()
    };
    // A link target is also listed by its links' names (`/parent/alias`), as dockerd's.
    let linked = crate::containers::links::names_by_target(&ctx);
    for s in &mut out {
        if let Some(more) = s
            .names
            .first()
            .and_then(|n| linked.get(n.trim_start_matches('/')))
        {
            s.names.extend(more.iter().cloned());
            s.names.sort();
        }
    }
    ok_json(&out)
}

/// [`summary`]s with `SizeRw` (the content of the container's rw layer) and `SizeRootFs`
/// (that plus its image), as `ps -s` and `system df` show them.
pub(crate) async fn summaries_with_sizes(
    ctx: &Ctx,
    cs: &[Arc<Container>],
) -> Result<Vec<ContainerSummary>, ApiError> {
    let items: Vec<(String, Option<String>)> = cs
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                c.view(|r| Some(r.image.clone()).filter(|i| !i.is_empty())),
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
            v.size_rw = i64::try_from(rw).ok();
            v.size_root_fs = i64::try_from(rootfs).ok();
            v
        })
        .collect())
}

pub async fn prune(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    f.only(&["label", "label!", "until"])?;
    let filter = super::filters::prune(&f)?;
    let p = crate::containers::remove::prune(&ctx, &filter).await?;
    let mut a = BTreeMap::new();
    a.insert("reclaimed".to_string(), p.reclaimed.to_string());
    ctx.events.publish("container", "prune", "", a);
    ok_json(&ContainersPruneResponse {
        containers_deleted: (!p.deleted.is_empty()).then_some(p.deleted),
        space_reclaimed: p.reclaimed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ip: &str, port: &str) -> Option<Vec<PortBinding>> {
        Some(vec![PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }])
    }

    #[test]
    fn ports_are_the_live_bindings_else_the_requested_ones_with_an_address() {
        let mut r = ContainerRecord::default();
        let mut asked = BTreeMap::new();
        asked.insert("80/tcp".to_string(), binding("", "8080"));
        r.host_config.port_bindings = Some(asked);
        assert_eq!(ports(&r)["80/tcp"], binding("0.0.0.0", "8080"));
        r.network_settings
            .ports
            .insert("80/tcp".into(), binding("127.0.0.1", "32768"));
        assert_eq!(ports(&r)["80/tcp"], binding("127.0.0.1", "32768"));
        let s = summary_of("abc", &r);
        assert_eq!(
            (s.ports[0].private_port, s.ports[0].public_port),
            (80, 32768)
        );
        assert_eq!(
            (s.state.as_str(), s.status.as_str()),
            ("created", "Created")
        );
    }

    #[test]
    fn inspect_hides_berths_bookkeeping() {
        let mut r = ContainerRecord {
            manually_stopped: true,
            pod: None,
            cgroup: Some("berth/x".into()),
            ..ContainerRecord::default()
        };
        r.state.set_running(7, "2026-01-01T00:00:00Z");
        let v = serde_json::to_value(&r.inspect).expect("serialises");
        assert!(v.get("ManuallyStopped").is_none());
        assert!(v.get("BerthCgroup").is_none());
        assert_eq!(v["State"]["Status"], "running");
        assert_eq!(v["State"]["Pid"], 7);
    }
}
