//! Network endpoints: `GET /networks`, `POST /networks/create`, `GET|DELETE /networks/{id}`,
//! `POST /networks/{id}/connect|disconnect`, `POST /networks/prune`, with moby's shapes, status
//! codes and error texts.

use crate::model::network::NetworkRecord;
use crate::network::{self, endpoints, ipam, PREDEFINED};
use crate::server::http::{self, empty, ok_json, read_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use berth_api::types::network::{
    IpamConfig, NetworkContainer, NetworkCreateRequest, NetworkCreateResponse, NetworkResource,
    NetworksPruneResponse,
};
use berth_core::network::NetworkSpec;
use hyper::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::GET, "/networks", list);
    r.add(Method::POST, "/networks/create", create);
    r.add(Method::POST, "/networks/prune", prune);
    r.add(Method::GET, "/networks/{id}", inspect);
    r.add(Method::DELETE, "/networks/{id}", remove);
    r.add(Method::POST, "/networks/{id}/connect", connect);
    r.add(Method::POST, "/networks/{id}/disconnect", disconnect);
}

fn forbidden(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, m)
}

/// The `Containers` map of a network, from the containers' records.
fn attached(ctx: &Ctx, rec: &NetworkRecord) -> BTreeMap<String, NetworkContainer> {
    let name = rec.name.as_str();
    let mut out = BTreeMap::new();
    for c in ctx.containers.all() {
        let Some((cname, ep)) = c.view(|r| {
            let ep = r.network_settings.networks.get(name)?.clone();
            Some((r.short_name().to_string(), ep))
        }) else {
            continue;
        };
        // Only live endpoints (a stopped container keeps its configuration, not its endpoint).
        if ep.endpoint_id.is_empty() {
            continue;
        }
        let with_prefix = |ip: &str, len: i64| {
            if ip.is_empty() {
                String::new()
            } else {
                format!("{ip}/{len}")
            }
        };
        let v4 = with_prefix(&ep.ip_address, ep.ip_prefix_len);
        let v6 = with_prefix(&ep.global_ipv6_address, ep.global_ipv6_prefix_len);
        out.insert(
            c.id.clone(),
            NetworkContainer {
                name: cname,
                endpoint_id: ep.endpoint_id,
                mac_address: ep.mac_address,
                ipv4_address: v4,
                ipv6_address: v6,
            },
        );
    }
    out
}

/// What clients see of a network: its resource, with what only the driver knows (the
/// default network's subnet) and, for inspect, the attached containers.
fn complete(ctx: &Ctx, rec: NetworkRecord, with_containers: bool) -> NetworkResource {
    let containers = if with_containers {
        attached(ctx, &rec)
    } else {
        BTreeMap::new()
    };
    let driver_id = rec.driver_id().to_string();
    let mut res = rec.resource;
    if res.driver == "bridge" && res.ipam.config.is_empty() {
        let state = ctx
            .config
            .data_root
            .join("network/bridge")
            .join(format!("{driver_id}.json"));
        if let Ok(Ok(st)) = std::fs::read(state).map(|b| serde_json::from_slice::<Value>(&b)) {
            let s = |k: &str| st[k].as_str().unwrap_or_default().to_string();
            res.ipam.config = vec![IpamConfig {
                subnet: s("subnet"),
                gateway: s("gateway"),
                ..IpamConfig::default()
            }];
        }
    }
    res.containers = containers;
    res
}

async fn list(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    f.only(&["driver", "id", "label", "name", "scope", "type", "dangling"])?;
    let f = super::filters::network(&f);
    let out: Vec<NetworkResource> = ctx
        .networks
        .list()
        .into_iter()
        .filter(|n| f.matches(n, attached(&ctx, n).is_empty()))
        .map(|n| complete(&ctx, n, false))
        .collect();
    ok_json(&out)
}

async fn inspect(ctx: Ctx, req: Req) -> ApiResult {
    let rec = ctx.networks.get(req.param("id"))?;
    ok_json(&complete(&ctx, rec, true))
}

async fn create(ctx: Ctx, req: Req) -> ApiResult {
    let body: Option<NetworkCreateRequest> = read_json(req.into_body()).await?;
    let body = body.unwrap_or_default();
    let name = body.name;
    if name.is_empty() {
        return Err(ApiError::bad_request("network name cannot be empty"));
    }
    if ctx.networks.name_taken(&name) {
        return Err(ApiError::conflict(format!(
            "network with name {name} already exists"
        )));
    }
    let driver = Some(body.driver.as_str())
        .filter(|d| !d.is_empty())
        .unwrap_or("bridge");
    let plugin = ctx.networks.driver_named(driver, None).is_some();
    if (driver == "host" || driver == "null") && !plugin {
        return Err(forbidden(format!(
            "only one instance of \"{driver}\" network is allowed"
        )));
    }
    let driver = driver.to_string();
    let net = ctx
        .networks
        .driver_named(&driver, ctx.network.as_ref())
        .ok_or_else(|| ApiError::not_found(format!("plugin \"{driver}\" not found")))?;
    let taken: Vec<berth_core::network::Cidr> = ctx
        .networks
        .list()
        .into_iter()
        .flat_map(|n| ipam::subnets(&complete(&ctx, n, false).ipam.config))
        .collect();
    let pools = ipam::check(&body.ipam.config, body.enable_ipv6, &taken)?;
    if body.enable_ipv6 && pools.v6.is_none() {
        return Err(ApiError::not_found(
            "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network",
        ));
    }
    let id = network::random_id();
    let mut spec = NetworkSpec {
        id: id.clone(),
        name: name.clone(),
        internal: body.internal,
        options: body.options.clone(),
        ..Default::default()
    };
    ipam::fill_spec(&mut spec, &pools);
    let net2 = net.clone();
    let info = tokio::task::spawn_blocking(move || net2.create_network(&spec)).await??;
    let mut rec = network::record(&id, &name, &driver);
    // dockerd shows the configuration as given, and the pool it picked when none was.
    rec.ipam.config = body.ipam.config;
    if pools.v4.is_none() && !info.subnet.is_empty() {
        rec.ipam.config.insert(
            0,
            IpamConfig {
                subnet: info.subnet,
                gateway: info.gateway,
                ..IpamConfig::default()
            },
        );
    }
    rec.user_subnet = pools.v4.is_some();
    rec.enable_ipv6 = body.enable_ipv6;
    rec.internal = body.internal;
    rec.attachable = body.attachable;
    rec.labels = body.labels;
    rec.options = body.options;
    if let Err(e) = ctx.networks.save(&rec) {
        let _ = tokio::task::spawn_blocking(move || net.delete_network(&id)).await;
        return Err(e.into());
    }
    endpoints::publish(&ctx, &rec, "create", None);
    Ok(http::json(
        StatusCode::CREATED,
        &NetworkCreateResponse {
            id: rec.id.clone(),
            warning: String::new(),
        },
    ))
}

/// Deletes one custom network (Docker's texts for predefined and in-use networks).
async fn delete_one(ctx: &Ctx, rec: &NetworkRecord) -> Result<(), ApiError> {
    let name = rec.name.clone();
    if PREDEFINED.contains(&name.as_str()) {
        return Err(forbidden(format!(
            "{name} is a pre-defined network and cannot be removed"
        )));
    }
    if !attached(ctx, rec).is_empty() {
        return Err(forbidden(format!(
            "error while removing network: network {name} has active endpoints"
        )));
    }
    if let Some(net) = ctx.networks.driver(rec, ctx.network.as_ref()) {
        {
            let did = rec.driver_id().to_string();
            // Leases of containers that are gone (removed without leaving this network).
            let stale = if rec.driver == "bridge" {
                driver_endpoints(ctx, &did)
            } else {
                Vec::new()
            };
            tokio::task::spawn_blocking(move || {
                for ep in stale {
                    net.leave(&did, &ep)?;
                }
                // Already gone from the driver (an older driver's state lost): deleted.
                match net.delete_network(&did) {
                    Err(berth_core::DriverError::NotFound(_)) => Ok(()),
                    r => r,
                }
            })
            .await??;
        }
    }
    ctx.networks.remove(&rec.id)?;
    endpoints::publish(ctx, rec, "destroy", None);
    Ok(())
}

/// Endpoint ids the bridge driver still holds for network `did` whose container no longer
/// has the network (its lease files, `<data-root>/network/bridge/<id>.leases/<ep>.json`).
fn driver_endpoints(ctx: &Ctx, did: &str) -> Vec<String> {
    let dir = ctx
        .config
        .data_root
        .join("network/bridge")
        .join(format!("{did}.leases"));
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension()? == "json")
                        .then(|| p.file_stem()?.to_str().map(str::to_string))?
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn remove(ctx: Ctx, req: Req) -> ApiResult {
    let rec = ctx.networks.get(req.param("id"))?;
    delete_one(&ctx, &rec).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn prune(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    f.only(&["label", "label!", "until"])?;
    let filter = super::filters::prune(&f)?;
    let mut deleted = Vec::new();
    for rec in ctx.networks.list() {
        let name = rec.name.clone();
        if PREDEFINED.contains(&name.as_str()) || !attached(&ctx, &rec).is_empty() {
            continue;
        }
        if crate::network::prunable(&filter, &rec) && delete_one(&ctx, &rec).await.is_ok() {
            deleted.push(name);
        }
    }
    let mut a = BTreeMap::new();
    a.insert("reclaimed".to_string(), "0".to_string());
    ctx.events.publish("network", "prune", "", a);
    ok_json(&NetworksPruneResponse {
        networks_deleted: (!deleted.is_empty()).then_some(deleted),
    })
}

/// The network, the request body, the container it names and the network's name, for
/// `connect` and `disconnect`.
async fn target(
    ctx: &Ctx,
    req: Req,
) -> Result<
    (
        NetworkRecord,
        Value,
        std::sync::Arc<crate::containers::Container>,
        String,
    ),
    ApiError,
> {
    let rec = ctx.networks.get(req.param("id"))?;
    let body: Value = read_json(req.into_body()).await?;
    let c = ctx
        .containers
        .get(body["Container"].as_str().unwrap_or_default())?;
    let name = rec.name.clone();
    Ok((rec, body, c, name))
}

async fn connect(ctx: Ctx, req: Req) -> ApiResult {
    let (rec, body, c, name) = target(&ctx, req).await?;
    let (n, connected, mode) = c.view(|r| {
        let nets = &r.network_settings.networks;
        let mode = r.host_config.network_mode.clone();
        (nets.len(), nets.contains_key(&name), mode)
    });
    if connected {
        return Err(forbidden(format!(
            "endpoint with name {} already exists in network {name}",
            c.name()
        )));
    }
    if name == "host" || mode == "host" {
        return Err(ApiError::bad_request(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    if mode.starts_with("container:") {
        return Err(ApiError::bad_request(
            "container sharing network namespace with another container or host cannot be connected to any other network",
        ));
    }
    if name == "none" || mode == "none" {
        return Err(ApiError::bad_request(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode",
        ));
    }
    let epc = endpoints::requested(body.get("EndpointConfig"), &name)?;
    endpoints::validate(&rec, &epc)?;
    let mut entry = endpoints::entry(&rec, &epc);
    if c.running() {
        // Stores the configuration first: `join_one` reads it from the record.
        c.update(|r| {
            let nets = &mut r.network_settings.networks;
            nets.insert(name.clone(), Box::new(entry.clone()))
        });
        match endpoints::join_one(&ctx, &c, c.pid(), &name, format!("eth{n}"), Vec::new()).await {
            Ok((_, ep, _)) => entry = ep,
            Err(e) => {
                c.update(|r| r.network_settings.networks.remove(&name));
                return Err(e.into());
            }
        }
    }
    c.update(|r| r.network_settings.networks.insert(name, Box::new(entry)));
    ctx.containers.save(&c)?;
    if !c.running() {
        // A running container's join published it.
        endpoints::publish(&ctx, &rec, "connect", Some(&c.id));
    }
    Ok(empty(StatusCode::OK))
}

async fn disconnect(ctx: Ctx, req: Req) -> ApiResult {
    let (rec, _, c, name) = target(&ctx, req).await?;
    if !c.view(|r| r.network_settings.networks.contains_key(&name)) {
        return Err(forbidden(format!(
            "container {} is not connected to network {name}",
            c.id
        )));
    }
    if let Some(net) = ctx.networks.driver(&rec, ctx.network.as_ref()) {
        let did = rec.driver_id().to_string();
        let id = c
            .view(|r| {
                r.network_settings
                    .networks
                    .get(&name)
                    .map(|e| e.endpoint_id.clone())
            })
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| c.id.clone());
        tokio::task::spawn_blocking(move || net.leave(&did, &id)).await??;
    }
    c.update(|r| {
        r.network_settings.networks.remove(&name);
        if name == "bridge" {
            let none = berth_api::types::network::EndpointSettings::default();
            r.network_settings.show_default(&none);
        }
    });
    ctx.containers.save(&c)?;
    endpoints::publish(&ctx, &rec, "disconnect", Some(&c.id));
    Ok(empty(StatusCode::OK))
}
