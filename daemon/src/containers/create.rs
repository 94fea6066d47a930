//! `POST /containers/create`: merge the request with the image's config as Docker does,
//! create the rw layer, record the container.

use super::{names, timestamp, Container, ContainerRecord};
use crate::error::ServiceError;
use crate::jsonv::{env_key, merge_env, strings};
use crate::state::Ctx;
use berth_api::types::container::{ContainerConfig, ContainerJson, HostConfig, NetworkSettings};
use berth_api::types::image::GraphDriver;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn non_empty_array(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

/// Merges the request's `Config` over the image's config.
pub fn merge_config(req: &Value, image_cfg: &Value) -> Value {
    let mut cfg: Map<String, Value> = req.as_object().cloned().unwrap_or_default();
    for k in ["HostConfig", "NetworkingConfig"] {
        cfg.remove(k);
    }
    let img = image_cfg.as_object().cloned().unwrap_or_default();
    // Env: image first, request overrides by key.
    let mut env = merge_env(strings(img.get("Env")), &strings(cfg.get("Env")));
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    cfg.insert("Env".into(), json!(env));
    let has_ep = non_empty_array(cfg.get("Entrypoint").unwrap_or(&Value::Null));
    if !has_ep {
        cfg.insert(
            "Entrypoint".into(),
            img.get("Entrypoint").cloned().unwrap_or(Value::Null),
        );
        if !non_empty_array(cfg.get("Cmd").unwrap_or(&Value::Null)) {
            cfg.insert("Cmd".into(), img.get("Cmd").cloned().unwrap_or(Value::Null));
        }
    }
    for k in ["WorkingDir", "User", "StopSignal"] {
        if cfg.get(k).and_then(Value::as_str).unwrap_or("").is_empty() {
            if let Some(v) = img.get(k).filter(|v| !v.as_str().unwrap_or("").is_empty()) {
                cfg.insert(k.into(), v.clone());
            }
        }
    }
    for k in ["ExposedPorts", "Volumes", "Labels"] {
        let mut merged: Map<String, Value> = img
            .get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(m) = cfg.get(k).and_then(Value::as_object) {
            for (a, b) in m {
                merged.insert(a.clone(), b.clone());
            }
        }
        cfg.insert(
            k.into(),
            if merged.is_empty() && k != "Labels" {
                Value::Null
            } else {
                Value::Object(merged)
            },
        );
    }
    if cfg.get("Healthcheck").is_none_or(Value::is_null) {
        if let Some(h) = img.get("Healthcheck") {
            cfg.insert("Healthcheck".into(), h.clone());
        }
    }
    for (k, d) in [
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Domainname", json!("")),
        ("Hostname", json!("")),
        ("User", json!("")),
        ("WorkingDir", json!("")),
    ] {
        cfg.entry(k).or_insert(d);
    }
    Value::Object(cfg)
}

/// The request's `HostConfig` with Docker's defaults where it left a field unset.
fn host_config_defaults(mut h: HostConfig) -> HostConfig {
    if h.network_mode.is_empty() || h.network_mode == "default" {
        h.network_mode = "bridge".into();
    }
    if h.restart_policy.name.is_empty() {
        h.restart_policy.name = "no".into();
    }
    h.port_bindings.get_or_insert_with(Default::default);
    if h.shm_size == 0 {
        h.shm_size = 64 << 20;
    }
    h
}

fn random_id() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Creates a container; returns its id.
pub async fn create(
    ctx: &Ctx,
    name: Option<&str>,
    mut body: Value,
) -> Result<String, ServiceError> {
    if !body.is_object() {
        return Err(ServiceError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    super::validate::normalise(&mut body);
    let (host_config, networking) = super::validate::check(&body)?;
    let rt = &host_config.runtime;
    if !rt.is_empty() && !ctx.runtimes.contains_key(rt) {
        return Err(ServiceError::bad_request(crate::runtimes::unknown(rt)));
    }
    let image_name = body["Image"].as_str().unwrap_or("").to_string();
    if image_name.is_empty() {
        return Err(ServiceError::bad_request("No command specified"));
    }
    let ctx2 = ctx.clone();
    let iname = image_name.clone();
    let image = tokio::task::spawn_blocking(move || ctx2.images.resolve(&iname))
        .await?
        .map_err(|_| {
            let shown = berth_core::reference::Reference::parse(&image_name)
                .map(|r| r.familiar_string())
                .unwrap_or(image_name.clone());
            ServiceError::not_found(format!("No such image: {shown}"))
        })?;
    let cfg = merge_config(&body, &image.config["config"]);
    let mut path_args: Vec<String> = Vec::new();
    for k in ["Entrypoint", "Cmd"] {
        if cfg[k].is_array() {
            path_args.extend(strings(cfg.get(k)));
        } else if let Some(s) = cfg[k].as_str() {
            path_args.push(s.to_string());
        }
    }
    if path_args.is_empty() {
        return Err(ServiceError::bad_request("no command specified"));
    }
    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) => {
            if !names::valid(n) {
                return Err(ServiceError::bad_request(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            let n = n.trim_start_matches('/').to_string();
            if let Some(e) = names::taken(&ctx.containers, &n, "") {
                return Err(e);
            }
            n
        }
        None => loop {
            let n = names::generate();
            if ctx.containers.get(&n).is_err() {
                break n;
            }
        },
    };
    let id = random_id();
    let mut cfg = cfg;
    if cfg["Hostname"].as_str().unwrap_or("").is_empty() {
        cfg["Hostname"] = json!(id[..12]);
    }
    cfg["Image"] = json!(image_name);
    // The request was checked field by field (`validate::check`); what the image adds may
    // still be of the wrong type.
    let cfg: ContainerConfig = serde_json::from_value(cfg).map_err(|e| {
        ServiceError::bad_request(format!("the image's config cannot be used: {e}"))
    })?;
    let mut host_config = host_config_defaults(host_config);
    // The daemon's log-driver and log-opts complete the request's; refused as Docker does.
    host_config.log_config = super::logconfig::merge_and_check(
        &host_config.log_config,
        &ctx.config.log_driver,
        &ctx.config.log_opts,
    )
    .map_err(ServiceError::bad_request)?;
    let log_path = if host_config.log_config.kind == "none" {
        String::new()
    } else {
        ctx.containers
            .dir(&id)
            .join(format!("{id}-json.log"))
            .display()
            .to_string()
    };
    let networks = crate::network::endpoints::plan(ctx, &host_config, &networking)?;
    let mounts = crate::volumes::mounts::plan(&ctx.volumes, &ctx.containers, &cfg, &host_config)?;
    let parent = image.top_chain().map(|c| berth_image::storage_id(&c));
    let (storage, lid) = (ctx.storage.clone(), id.clone());
    let inits = super::initlayer::InitLayers::of(ctx);
    tokio::task::spawn_blocking(move || {
        let init = inits
            .ensure(storage.as_ref(), parent.as_deref())
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        storage
            .create(
                &lid,
                Some(&init),
                &berth_core::storage::CreateOpts {
                    rw: true,
                    ..Default::default()
                },
            )
            .map_err(ServiceError::from)
    })
    .await??;
    let dir = ctx.containers.dir(&id);
    let path = |f: &str| dir.join(f).display().to_string();
    let rec = ContainerRecord {
        inspect: ContainerJson {
            id: id.clone(),
            created: timestamp(),
            path: path_args.first().cloned().unwrap_or_default(),
            args: path_args.iter().skip(1).cloned().collect(),
            image: image.id.clone(),
            resolv_conf_path: path("resolv.conf"),
            hostname_path: path("hostname"),
            hosts_path: path("hosts"),
            log_path,
            name: format!("/{name}"),
            driver: ctx.storage.name().to_string(),
            platform: "linux".into(),
            host_config,
            graph_driver: GraphDriver {
                name: ctx.storage.name().to_string(),
                data: None,
            },
            mounts,
            config: cfg,
            network_settings: NetworkSettings {
                networks,
                ..NetworkSettings::default()
            },
            ..ContainerJson::default()
        },
        manually_stopped: false,
    };
    let c = Container::new(id.clone(), rec);
    let undo = |e: ServiceError| {
        let _ = ctx.storage.remove(&id);
        let _ = std::fs::remove_dir_all(&dir);
        Err(e)
    };
    if let Err(e) = crate::modes::private_dir_all(&dir) {
        return undo(ServiceError::internal(format!(
            "creating {}: {e}",
            dir.display()
        )));
    }
    if let Err(e) = ctx.containers.save(&c) {
        return undo(e);
    }
    // The name is taken for good here, under the names lock (it was free when checked above,
    // but another create or a rename may have taken it since).
    {
        let Ok(_names) = ctx.containers.names.lock() else {
            return undo(ServiceError::internal("container names lock poisoned"));
        };
        if let Some(e) = names::taken(&ctx.containers, &name, &id) {
            drop(_names);
            return undo(e);
        }
        ctx.containers.insert(Arc::clone(&c));
    }
    ctx.events
        .publish("container", "create", &id, super::exit::attrs(&c));
    super::prestart::begin(ctx, &c);
    Ok(id)
}
