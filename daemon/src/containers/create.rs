//! `POST /containers/create`: merge the request with the image's config as Docker does,
//! create the rw layer, record the container.

use super::{names, timestamp, Container, ContainerRecord};
use crate::error::ServiceError;
use crate::jsonv::{env_key, merge_env};
use crate::state::Ctx;
use berth_api::types::container::{ContainerConfig, ContainerJson, HostConfig, NetworkSettings};
use berth_api::types::image::GraphDriver;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The `PATH` a container gets when neither the image nor the request sets one.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The image's `config` (its `Config` in Docker's shape); `null` members take their
/// defaults, and a config of the wrong shape is refused (Docker would not have loaded it).
fn image_config(v: &Value) -> Result<ContainerConfig, ServiceError> {
    if v.is_null() {
        return Ok(ContainerConfig::default());
    }
    serde_json::from_value(v.clone())
        .or_else(|_| {
            let mut v = v.clone();
            crate::jsonv::drop_nulls(&mut v);
            serde_json::from_value(v)
        })
        .map_err(|e| ServiceError::bad_request(format!("the image's config cannot be used: {e}")))
}

/// `a` with the entries of `b` added (`b` wins); `None` when both are empty.
fn merged<V: Clone>(
    a: Option<BTreeMap<String, V>>,
    b: &Option<BTreeMap<String, V>>,
) -> Option<BTreeMap<String, V>> {
    let mut m = a.unwrap_or_default();
    m.extend(b.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
    (!m.is_empty()).then_some(m)
}

/// Completes the request's `Config` with the image's, as Docker does: the environment merged
/// by name (with a default `PATH`), the image's entrypoint and command unless the request
/// has an entrypoint, its working folder, user and stop signal where the request has none,
/// exposed ports, volumes and labels merged, its health check field by field.
pub fn merge_config(mut cfg: ContainerConfig, img: ContainerConfig) -> ContainerConfig {
    let mut env = merge_env(
        img.env.unwrap_or_default(),
        cfg.env.as_deref().unwrap_or_default(),
    );
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.insert(0, DEFAULT_PATH.into());
    }
    cfg.env = Some(env);
    let non_empty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|a| !a.is_empty());
    if !non_empty(&cfg.entrypoint) {
        cfg.entrypoint = img.entrypoint;
        if !non_empty(&cfg.cmd) {
            cfg.cmd = img.cmd;
        }
    }
    if cfg.working_dir.is_empty() {
        cfg.working_dir = img.working_dir;
    }
    if cfg.user.is_empty() {
        cfg.user = img.user;
    }
    if cfg.stop_signal.as_deref().unwrap_or("").is_empty()
        && img.stop_signal.as_deref().is_some_and(|s| !s.is_empty())
    {
        cfg.stop_signal = img.stop_signal;
    }
    cfg.exposed_ports = merged(img.exposed_ports, &cfg.exposed_ports);
    cfg.volumes = merged(img.volumes, &cfg.volumes);
    cfg.labels = Some(merged(img.labels, &cfg.labels).unwrap_or_default());
    match (&mut cfg.healthcheck, img.healthcheck) {
        (Some(mine), Some(image)) => mine.inherit(&image),
        (mine @ None, image) => *mine = image,
        _ => {}
    }
    cfg
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
pub async fn create(ctx: &Ctx, name: Option<&str>, body: Value) -> Result<String, ServiceError> {
    create_in(ctx, name, body, None).await
}

/// Creates a container that joins the namespaces of a CRI pod sandbox when `pod` is given.
pub async fn create_in(
    ctx: &Ctx,
    name: Option<&str>,
    mut body: Value,
    pod: Option<crate::model::container::PodNamespaces>,
) -> Result<String, ServiceError> {
    if !body.is_object() {
        return Err(ServiceError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    super::validate::normalise(&mut body);
    let (cfg, host_config, networking) = super::validate::check(&body)?;
    // The cgroup path is fixed at create: every later reader (stats, update, top, teardown)
    // takes it from the record.
    let cgroup_parent = super::cgroup_parent::check(&host_config.cgroup_parent)?;
    let rt = &host_config.runtime;
    if !rt.is_empty() && !ctx.runtimes.contains_key(rt) {
        return Err(ServiceError::bad_request(crate::runtimes::unknown(rt)));
    }
    let image_name = cfg.image.clone();
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
    let mut cfg = merge_config(cfg, image_config(&image.config["config"])?);
    let path_args: Vec<String> = [&cfg.entrypoint, &cfg.cmd]
        .into_iter()
        .flatten()
        .flatten()
        .cloned()
        .collect();
    if path_args.is_empty() {
        return Err(ServiceError::bad_request("no command specified"));
    }
    let id = random_id();
    // The name is reserved first, as dockerd does: a conflict answers before any work, and
    // two creates can never take one name. Dropped (freed) on every failure below.
    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) => {
            if !names::valid(n) {
                return Err(ServiceError::bad_request(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            names::Reserved::name(&ctx.containers, n.trim_start_matches('/'), &id)?
        }
        None => names::Reserved::generated(&ctx.containers, &id)?,
    };
    if cfg.hostname.is_empty() {
        cfg.hostname = id[..12].to_string();
    }
    let mut host_config = host_config_defaults(host_config);
    super::links::resolve(ctx, name.as_str(), &mut host_config)?;
    // Docker records the runtime a container runs on: the default one when none was asked for.
    if host_config.runtime.is_empty() {
        host_config.runtime = ctx.config.default_runtime.clone();
    }
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
            name: format!("/{}", name.as_str()),
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
        pod,
        cgroup: Some(format!("{cgroup_parent}/{id}")),
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
    ctx.containers.insert(Arc::clone(&c));
    name.keep();
    ctx.events
        .publish("container", "create", &id, super::exit::attrs(&c));
    super::prestart::begin(ctx, &c);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: Value) -> ContainerConfig {
        serde_json::from_value(v).expect("a Config")
    }

    #[test]
    fn the_request_completed_with_the_image_as_docker() {
        let img = image_config(&json!({"Env": ["PATH=/x", "A=1"], "Entrypoint": null,
            "Cmd": ["sh"], "WorkingDir": "/w", "User": null, "StopSignal": "SIGQUIT",
            "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "Labels": {"a": "1"}}))
        .expect("tolerates nulls");
        let req = config(json!({"Image": "i", "Env": ["A=2"], "Labels": {"b": "2"},
            "Volumes": {}, "MacAddress": "x"}));
        let c = merge_config(req, img.clone());
        assert_eq!(
            c.env.as_deref(),
            Some(&["PATH=/x".to_string(), "A=2".into()][..])
        );
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/w", ""));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(c.exposed_ports.is_some_and(|p| p.contains_key("80/tcp")));
        assert!(c.volumes.is_some_and(|v| v.contains_key("/data")));
        assert_eq!(c.labels.map(|l| l.len()), Some(2));
        assert_eq!(c.extra.get("MacAddress"), Some(&json!("x")));
        // An entrypoint in the request drops the image's command; a command keeps its own.
        let c = merge_config(config(json!({"Entrypoint": ["e"]})), img.clone());
        assert_eq!((c.entrypoint.is_some(), c.cmd), (true, None));
        let c = merge_config(config(json!({"Cmd": ["c"]})), img);
        assert_eq!(c.cmd.as_deref(), Some(&["c".to_string()][..]));
        // No image environment: a default PATH; nothing to merge: no ports or volumes.
        let c = merge_config(ContainerConfig::default(), ContainerConfig::default());
        assert_eq!(c.env.as_deref(), Some(&[DEFAULT_PATH.to_string()][..]));
        assert_eq!((c.exposed_ports, c.volumes), (None, None));
        assert_eq!(c.labels, Some(BTreeMap::new()));
    }

    #[test]
    fn an_image_config_of_the_wrong_shape_is_refused() {
        assert!(image_config(&json!({"Cmd": 5})).is_err());
        assert!(image_config(&Value::Null).is_ok());
    }
}
