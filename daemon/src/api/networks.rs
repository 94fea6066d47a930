//! Network endpoints: `GET /networks`, `POST /networks/create`, `GET|DELETE /networks/{id}`,
//! `POST /networks/{id}/connect|disconnect`, `POST /networks/prune`, with moby's shapes, status
//! codes and error texts.

use crate::network::{self, driver_id, endpoints, PREDEFINED};
use crate::server::http::{self, empty, ok_json, read_json, ApiError, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use berth_core::network::NetworkSpec;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
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
fn attached(ctx: &Ctx, rec: &Value) -> serde_json::Map<String, Value> {
    let name = rec["Name"].as_str().unwrap_or_default();
    let mut out = serde_json::Map::new();
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
        let ip = &ep.ip_address;
        let v4 = if ip.is_empty() {
            String::new()
        } else {
            format!("{ip}/{}", ep.ip_prefix_len)
        };
        out.insert(
            c.id.clone(),
            json!({"Name": cname, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac_address,
                   "IPv4Address": v4, "IPv6Address": ""}),
        );
    }
    out
}

/// Fills what only the driver knows (the default network's subnet) and the endpoints.
fn complete(ctx: &Ctx, mut rec: Value, with_containers: bool) -> Value {
    if rec["Driver"] == "bridge"
        && rec["IPAM"]["Config"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    {
        let state = ctx
            .config
            .data_root
            .join("network/bridge")
            .join(format!("{}.json", driver_id(&rec)));
        if let Ok(Ok(st)) = std::fs::read(state).map(|b| serde_json::from_slice::<Value>(&b)) {
            rec["IPAM"]["Config"] = json!([{"Subnet": st["subnet"], "Gateway": st["gateway"]}]);
        }
    }
    if with_containers {
        rec["Containers"] = Value::Object(attached(ctx, &rec));
    }
    if let Some(o) = rec.as_object_mut() {
        o.remove("DriverNetworkID");
        o.remove("BerthUserSubnet");
    }
    rec
}

async fn list(ctx: Ctx, req: Req) -> ApiResult {
    let f = req.query.filters()?;
    f.only(&["driver", "id", "label", "name", "scope", "type", "dangling"])?;
    let f = super::filters::network(&f);
    let out: Vec<Value> = ctx
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
    let body: Value = read_json(req.into_body()).await?;
    let name = body["Name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("network name cannot be empty"));
    }
    if ctx.networks.name_taken(&name) {
        return Err(ApiError::conflict(format!(
            "network with name {name} already exists"
        )));
    }
    let driver = body["Driver"]
        .as_str()
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
    let cfg = body["IPAM"]["Config"]
        .get(0)
        .cloned()
        .unwrap_or(Value::Null);
    let opt = |k: &str| {
        cfg[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let options: BTreeMap<String, String> = body["Options"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let id = network::random_id();
    let spec = NetworkSpec {
        id: id.clone(),
        name: name.clone(),
        subnet: opt("Subnet"),
        gateway: opt("Gateway"),
        ip_range: opt("IPRange"),
        internal: body["Internal"].as_bool().unwrap_or(false),
        options: options.clone(),
        ..Default::default()
    };
    let net2 = net.clone();
    let info = tokio::task::spawn_blocking(move || net2.create_network(&spec)).await??;
    let mut rec = network::record(&id, &name, &driver);
    if !info.subnet.is_empty() {
        let mut ipam = json!({"Subnet": info.subnet, "Gateway": info.gateway});
        if let Some(r) = opt("IPRange") {
            ipam["IPRange"] = json!(r);
        }
        rec["IPAM"]["Config"] = json!([ipam]);
    }
    rec["BerthUserSubnet"] = json!(opt("Subnet").is_some());
    rec["Internal"] = json!(spec_internal(&body));
    rec["Attachable"] = json!(body["Attachable"].as_bool().unwrap_or(false));
    rec["Labels"] = if body["Labels"].is_object() {
        body["Labels"].clone()
    } else {
        json!({})
    };
    rec["Options"] = json!(options);
    if let Err(e) = ctx.networks.save(&rec) {
        let _ = tokio::task::spawn_blocking(move || net.delete_network(&id)).await;
        return Err(e.into());
    }
    endpoints::publish(&ctx, &rec, "create", None);
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": rec["Id"], "Warning": ""}),
    ))
}

fn spec_internal(body: &Value) -> bool {
    body["Internal"].as_bool().unwrap_or(false)
}

/// Deletes one custom network (Docker's texts for predefined and in-use networks).
async fn delete_one(ctx: &Ctx, rec: &Value) -> Result<(), ApiError> {
    let name = rec["Name"].as_str().unwrap_or_default().to_string();
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
            let did = driver_id(rec);
            // Leases of containers that are gone (removed without leaving this network).
            let stale = if rec["Driver"] == "bridge" {
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
    ctx.networks
        .remove(rec["Id"].as_str().unwrap_or_default())?;
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
    let labels = super::filters::labels(&f);
    let mut deleted = Vec::new();
    for rec in ctx.networks.list() {
        let name = rec["Name"].as_str().unwrap_or_default().to_string();
        if PREDEFINED.contains(&name.as_str()) || !attached(&ctx, &rec).is_empty() {
            continue;
        }
        let labels_ok =
            labels.matches(|k| rec["Labels"].get(k).map(|v| v.as_str().unwrap_or_default()));
        if labels_ok && delete_one(&ctx, &rec).await.is_ok() {
            deleted.push(name);
        }
    }
    ok_json(&json!({"NetworksDeleted": deleted}))
}

/// The network, the request body, the container it names and the network's name, for
/// `connect` and `disconnect`.
async fn target(
    ctx: &Ctx,
    req: Req,
) -> Result<
    (
        Value,
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
    let name = rec["Name"].as_str().unwrap_or_default().to_string();
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
            nets.insert(name.clone(), entry.clone())
        });
        match endpoints::join_one(&ctx, &c, c.pid(), &name, format!("eth{n}"), Vec::new()).await {
            Ok((_, ep, _)) => entry = ep,
            Err(e) => {
                c.update(|r| r.network_settings.networks.remove(&name));
                return Err(e.into());
            }
        }
    }
    c.update(|r| r.network_settings.networks.insert(name, entry));
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
        let (did, id) = (driver_id(&rec), c.id.clone());
        tokio::task::spawn_blocking(move || net.leave(&did, &id)).await??;
    }
    c.update(|r| {
        r.network_settings.networks.remove(&name);
        if name == "bridge" {
            r.network_settings.ip_address.clear();
        }
    });
    ctx.containers.save(&c)?;
    endpoints::publish(&ctx, &rec, "disconnect", Some(&c.id));
    Ok(empty(StatusCode::OK))
}
