//! Legacy container links (`--link name:alias`, `HostConfig.Links`), as dockerd has them.
//!
//! On the default bridge a link is recorded in the linking ("parent") container's
//! `HostConfig.Links` in dockerd's shape, `/target:/parent/alias`, checked at create (the
//! target must exist and must not share the host's network). At start the parent gets the
//! target's `ALIAS_NAME`, `ALIAS_ENV_*`, `ALIAS_PORT*` variables ([`env`]) and an `/etc/hosts`
//! line `ip alias hostname [name]` ([`hosts_lines`]); a target that starts again with a new
//! address rewrites the running parents' `/etc/hosts` ([`refresh_parents`]). `docker rm
//! --link /parent/alias` forgets one ([`remove_link`]). Links are held by name, as dockerd's
//! link graph is rebuilt by name: renames rewrite them ([`renamed`]).
//!
//! On a user network links are aliases instead: `EndpointSettings.Links` (`target:alias`),
//! which the embedded DNS answers for the linking container only ([`dns_target`]), and
//! `HostConfig.Links` is not kept (dockerd does not register them).

use super::{Container, ContainerRecord, Containers};
use crate::error::ServiceError;
use crate::jsonv::merge_env;
use crate::state::Ctx;
use berth_api::types::container::HostConfig;
use std::collections::HashMap;
use std::sync::Arc;

/// `name[:alias]` as dockerd's `ParseLink` reads it: (target name, alias). A stored link
/// (`/target:/parent/alias`) reads as (target, alias) too.
pub fn parse(link: &str) -> Result<(String, String), ServiceError> {
    if link.is_empty() {
        return Err(ServiceError::internal("empty string specified for links"));
    }
    let parts: Vec<&str> = link.split(':').collect();
    match parts.as_slice() {
        [one] => Ok((one.to_string(), last(one).to_string())),
        [name, alias] if name.starts_with('/') => Ok((name[1..].to_string(), last(alias).into())),
        [name, alias] => Ok((name.to_string(), alias.to_string())),
        _ => Err(ServiceError::internal(format!(
            "bad format for links: {link}"
        ))),
    }
}

/// The last component of a `/`-separated path.
fn last(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Whether a network mode names a user network (not `bridge`, `host`, `none`, `container:`).
fn user_defined(mode: &str) -> bool {
    !matches!(mode, "" | "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

/// dockerd's refusal of links with a shared network namespace.
fn conflict(kind: &str) -> ServiceError {
    ServiceError::bad_request(format!(
        "conflicting options: {kind} can't be used with links. This would result in undefined behavior"
    ))
}

/// Checks and normalises the links of a container being created as `parent` (its name,
/// without the slash): each target must exist (one sharing another container's network is
/// followed to it) and must not be on the host's network. On a user network they are
/// dropped (they live in `EndpointSettings.Links`).
pub fn resolve(ctx: &Ctx, parent: &str, hc: &mut HostConfig) -> Result<(), ServiceError> {
    let Some(links) = hc.links.take().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let mode = hc.network_mode.as_str();
    if user_defined(mode) {
        return Ok(());
    }
    if mode == "host" {
        return Err(conflict("host type networking"));
    }
    if mode.starts_with("container:") {
        return Err(conflict("container type network"));
    }
    let mut out = Vec::with_capacity(links.len());
    for l in &links {
        let (name, alias) = parse(l)?;
        let target = lookup(ctx, &name)?;
        // A target sharing another container's network is reached through that one.
        let mut net = target.clone();
        for _ in 0..16 {
            let shared = net.view(|r| {
                let m = &r.host_config.network_mode;
                m.strip_prefix("container:").map(str::to_string)
            });
            let Some(other) = shared else { break };
            net = lookup(ctx, &other)?;
        }
        if net.view(|r| r.host_config.network_mode == "host") {
            return Err(conflict("host type networking"));
        }
        out.push(format!("/{}:/{parent}/{alias}", target.name()));
    }
    hc.links = Some(out);
    Ok(())
}

/// A link target by name or id, with dockerd's create-time error.
fn lookup(ctx: &Ctx, name: &str) -> Result<Arc<Container>, ServiceError> {
    if name.is_empty() {
        return Err(ServiceError::bad_request(
            "could not get container for : invalid name or ID supplied: \"\"",
        ));
    }
    ctx.containers
        .get(name)
        .map_err(|e| ServiceError::bad_request(format!("could not get container for {name}: {e}")))
}

/// One stored link of a parent: the target's name (no slash), the link's full name
/// (`/parent/alias`) and its alias.
struct Stored {
    target: String,
    full: String,
    alias: String,
}

/// The links `rec` holds (on the default bridge only).
fn stored(rec: &ContainerRecord) -> Vec<Stored> {
    if rec.host_config.network_mode != "bridge" {
        return Vec::new();
    }
    rec.host_config
        .links
        .iter()
        .flatten()
        .filter_map(|l| {
            let (target, alias) = parse(l).ok()?;
            // A record written before links were normalised holds them as sent.
            let full = match l.split_once(':') {
                Some((t, full)) if t.starts_with('/') => full.to_string(),
                _ => format!("/{}/{alias}", rec.short_name()),
            };
            Some(Stored {
                target,
                full,
                alias,
            })
        })
        .collect()
}

/// A target's address on the default bridge (empty when it has none).
fn bridge_ip(rec: &ContainerRecord) -> String {
    rec.network_settings
        .networks
        .get("bridge")
        .map(|ep| ep.ip_address.clone())
        .unwrap_or_default()
}

/// The variables a link gives (dockerd's `Link.ToEnv`): `ALIAS_PORT` (the lowest exposed
/// port, TCP first), `ALIAS_PORT_<port>_<PROTO>[_ADDR|_PORT|_PROTO]` for each exposed port
/// with `_START`/`_END` for runs of consecutive ports, `ALIAS_NAME`, and `ALIAS_ENV_*` for
/// the target's environment but `HOME` and `PATH`.
fn link_env(full: &str, ip: &str, target: &ContainerRecord) -> Vec<String> {
    let alias = last(full).to_uppercase().replace('-', "_");
    let mut ports: Vec<(u32, String)> = target
        .config
        .exposed_ports
        .iter()
        .flatten()
        .filter_map(|(k, _)| {
            let (n, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((n.parse().ok()?, proto.to_lowercase()))
        })
        .collect();
    let mut env = Vec::new();
    // The default port: the lowest, TCP before another protocol of the same number.
    if let Some((n, proto)) = ports.iter().min_by_key(|(n, p)| (*n, p != "tcp")) {
        env.push(format!("{alias}_PORT={proto}://{ip}:{n}"));
    }
    // TCP ports first, by number; then the other protocols by name and number.
    ports.sort_by(|(a, pa), (b, pb)| (pa != "tcp", pa, a).cmp(&(pb != "tcp", pb, b)));
    let mut i = 0;
    while i < ports.len() {
        let (start, proto) = (ports[i].0, ports[i].1.clone());
        let mut j = i + 1;
        while j < ports.len() && ports[j].1 == proto && ports[j].0 == start + (j - i) as u32 {
            j += 1;
        }
        let up = proto.to_uppercase();
        if j > i + 1 {
            let end = ports[j - 1].0;
            let prefix = format!("{alias}_PORT_{start}_{up}");
            env.push(format!("{prefix}_START={proto}://{ip}:{start}"));
            env.push(format!("{prefix}_ADDR={ip}"));
            env.push(format!("{prefix}_PROTO={proto}"));
            env.push(format!("{prefix}_PORT_START={start}"));
            env.push(format!("{prefix}_END={proto}://{ip}:{end}"));
            env.push(format!("{prefix}_PORT_END={end}"));
        }
        for (n, _) in &ports[i..j] {
            let prefix = format!("{alias}_PORT_{n}_{up}");
            env.push(format!("{prefix}={proto}://{ip}:{n}"));
            env.push(format!("{prefix}_ADDR={ip}"));
            env.push(format!("{prefix}_PORT={n}"));
            env.push(format!("{prefix}_PROTO={proto}"));
        }
        i = j;
    }
    env.push(format!("{alias}_NAME={full}"));
    for e in target.config.env.iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            if k != "HOME" && k != "PATH" {
                env.push(format!("{alias}_ENV_{k}={v}"));
            }
        }
    }
    // A variable set twice (a run's `_ADDR`) keeps one entry.
    merge_env(Vec::new(), &env)
}

/// The link variables of `rec` (a parent on the default bridge). With `strict` (a start), a
/// target that is not running is dockerd's error; otherwise (an exec) it is left out.
pub fn env(ctx: &Ctx, rec: &ContainerRecord, strict: bool) -> Result<Vec<String>, ServiceError> {
    let mut out = Vec::new();
    for l in stored(rec) {
        let target = ctx.containers.get(&l.target).ok().filter(|t| t.running());
        let Some(target) = target else {
            if !strict {
                continue;
            }
            return Err(ServiceError::internal(format!(
                "Cannot link to a non running container: /{} AS {}",
                l.target, l.full
            )));
        };
        let vars = target.view(|t| {
            let ip = bridge_ip(t);
            (!ip.is_empty()).then(|| link_env(&l.full, &ip, t))
        });
        match vars {
            Some(v) => out.extend(v),
            None if strict => {
                return Err(ServiceError::internal(format!(
                    "container {} not attached to default bridge network",
                    target.id
                )))
            }
            None => {}
        }
    }
    Ok(out)
}

/// The `/etc/hosts` lines of `rec`'s links, as dockerd writes them: `ip\talias hostname`,
/// then the target's name unless the alias is that name. Targets without an address are
/// left out.
pub fn hosts_lines(ctx: &Ctx, rec: &ContainerRecord) -> Vec<String> {
    let mut out = Vec::new();
    for l in stored(rec) {
        let Ok(target) = ctx.containers.get(&l.target) else {
            continue;
        };
        let line = target.view(|t| {
            let ip = bridge_ip(t);
            // A stopped target has no address (a starting one has its new one already).
            if ip.is_empty() {
                return None;
            }
            let mut names = format!("{}\t{} {}", ip, l.alias, t.config.hostname);
            if l.alias != t.short_name() {
                names.push(' ');
                names.push_str(t.short_name());
            }
            Some(names)
        });
        out.extend(line);
    }
    out
}

/// Rewrites the `/etc/hosts` of running container `c` from its record and links.
fn rewrite_hosts(ctx: &Ctx, c: &Container) {
    if !c.running() {
        return;
    }
    let rec = c.record();
    if rec.host_config.network_mode == "host" {
        return;
    }
    let ip = bridge_ip(&rec);
    let text = super::start::hosts_text(
        &rec,
        Some(ip.as_str()).filter(|s| !s.is_empty()),
        &hosts_lines(ctx, &rec),
    );
    let path = ctx.containers.dir(&c.id).join("hosts");
    // In place (the container has the file bind-mounted).
    if let Err(e) = std::fs::write(&path, text) {
        tracing::warn!("rewriting {}: {e}", path.display());
    }
}

/// The running containers linking to `child`, whose `/etc/hosts` names its address again
/// (it started with a new one).
pub fn refresh_parents(ctx: &Ctx, child: &Container) {
    let name = child.name();
    for p in ctx.containers.all() {
        if p.id != child.id && p.view(|r| stored(r).iter().any(|l| l.target == name)) {
            rewrite_hosts(ctx, &p);
        }
    }
}

/// `docker rm --link`: forgets the link `name` (`parent/alias`, slashes around it allowed)
/// of its parent, whose `/etc/hosts` loses the line at once. dockerd's errors: a name
/// without a parent is the container's own name; an unknown link is a 404.
pub fn remove_link(ctx: &Ctx, name: &str) -> Result<(), ServiceError> {
    let name = name.trim_matches('/');
    let Some((parent, _alias)) = name.rsplit_once('/') else {
        return Err(ServiceError::internal(
            "Conflict, cannot remove the default link name of the container",
        ));
    };
    let missing = || ServiceError::not_found(format!("No such container: {name}"));
    let p = ctx.containers.get(parent).map_err(|_| missing())?;
    let full = format!("/{name}");
    let removed = p.update(|r| {
        let links = r.host_config.links.as_mut()?;
        let before = links.len();
        links.retain(|l| l.split_once(':').map(|(_, f)| f) != Some(full.as_str()));
        let gone = links.len() != before;
        if links.is_empty() {
            r.host_config.links = None;
        }
        gone.then_some(())
    });
    if removed.is_none() {
        return Err(missing());
    }
    ctx.containers.save(&p)?;
    rewrite_hosts(ctx, &p);
    Ok(())
}

/// After container `c` was renamed from `old` to `new` (names without the slash): its own
/// links carry the new parent name, and the links of others to it name the new target.
pub fn renamed(ctx: &Ctx, c: &Container, old: &str, new: &str) {
    let old_parent = format!(":/{old}/");
    let old_target = format!("/{old}:");
    for p in ctx.containers.all() {
        let changed = p.update(|r| {
            let mut changed = false;
            for l in r.host_config.links.iter_mut().flatten() {
                if p.id == c.id && l.contains(&old_parent) {
                    *l = l.replacen(&old_parent, &format!(":/{new}/"), 1);
                    changed = true;
                }
                if l.starts_with(&old_target) {
                    *l = format!("/{new}:{}", &l[old_target.len()..]);
                    changed = true;
                }
            }
            changed
        });
        if changed {
            let _ = ctx.containers.save(&p);
        }
    }
}

/// How long a container started with berthd waits for its link targets to run.
const TARGETS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(15);

/// Waits (a while at most) until the link targets of `c` that berthd starts as well are
/// running: at berthd's start, containers whose restart policy starts them again come up in
/// their links' order, as with dockerd.
pub async fn await_targets(ctx: &Ctx, c: &Container) {
    let targets: Vec<String> = c.view(|r| stored(r).into_iter().map(|l| l.target).collect());
    let deadline = tokio::time::Instant::now() + TARGETS_PATIENCE;
    for t in targets {
        while let Ok(t) = ctx.containers.get(&t) {
            let coming = t.view(super::exit::starts_with_daemon);
            if t.running() || !coming || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// The links' names (`/parent/alias`) of every link target, by the target's name.
pub fn names_by_target(ctx: &Ctx) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for p in ctx.containers.all() {
        for l in p.view(stored) {
            out.entry(l.target).or_default().push(l.full);
        }
    }
    out
}

/// The target of the link named `name` (`parent/alias`, slashes around it allowed), which
/// dockerd resolves like a container name.
/// Only the parent (found through the container index) can hold it: no scan of every
/// container.
pub fn target_of(containers: &Containers, name: &str) -> Option<String> {
    let name = name.trim_matches('/');
    let (parent, _) = name.rsplit_once('/')?;
    let full = format!("/{name}");
    containers
        .get(parent)
        .ok()?
        .view(stored)
        .into_iter()
        .find(|l| l.full == full)
        .map(|l| l.target)
}

/// The name an embedded DNS query of container `rec` for `name` stands for: a user
/// network's link `target:alias` makes `alias` the target's name for this container alone.
pub fn dns_target(rec: &ContainerRecord, name: &str) -> Option<String> {
    rec.network_settings
        .networks
        .values()
        .flat_map(|ep| ep.links.iter().flatten())
        .filter_map(|l| parse(l).ok())
        .find(|(_, alias)| alias.eq_ignore_ascii_case(name))
        .map(|(target, _)| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_dockerd() {
        let p = |s: &str| parse(s).map_err(|e| e.to_string());
        assert_eq!(p("web"), Ok(("web".into(), "web".into())));
        assert_eq!(p("web:db"), Ok(("web".into(), "db".into())));
        assert_eq!(p("/web:/app/db"), Ok(("web".into(), "db".into())));
        assert!(p("").is_err_and(|e| e.contains("empty string")));
        assert!(p("a:b:c").is_err_and(|e| e.contains("bad format for links: a:b:c")));
    }

    #[test]
    fn stored_links_read_normalised_or_as_sent() {
        let mut r = ContainerRecord {
            inspect: berth_api::types::container::ContainerJson {
                name: "/app".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        r.host_config.network_mode = "bridge".into();
        r.host_config.links = Some(vec!["/web:/app/db".into(), "cache".into(), "q:x".into()]);
        let got: Vec<(String, String, String)> = stored(&r)
            .into_iter()
            .map(|l| (l.target, l.full, l.alias))
            .collect();
        let want = [
            ("web", "/app/db", "db"),
            ("cache", "/app/cache", "cache"),
            ("q", "/app/x", "x"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
        r.host_config.network_mode = "none".into();
        assert!(stored(&r).is_empty());
    }

    #[test]
    fn env_has_ports_runs_name_and_environment() {
        let mut t = ContainerRecord::default();
        let ports = ["80/tcp", "443/udp", "8000/tcp", "8001/tcp", "80/udp"];
        t.config.exposed_ports = Some(
            ports
                .iter()
                .map(|p| (p.to_string(), serde_json::json!({})))
                .collect(),
        );
        t.config.env = Some(vec!["PATH=/bin".into(), "FOO=bar".into(), "HOME=/".into()]);
        let env = link_env("/app/my-db", "10.0.0.2", &t);
        let has = |s: &str| env.iter().any(|e| e == s);
        assert!(has("MY_DB_PORT=tcp://10.0.0.2:80"), "{env:?}");
        assert!(has("MY_DB_PORT_80_TCP=tcp://10.0.0.2:80"));
        assert!(has("MY_DB_PORT_80_UDP_PROTO=udp"));
        assert!(has("MY_DB_PORT_443_UDP_ADDR=10.0.0.2"));
        assert!(has("MY_DB_PORT_8000_TCP_START=tcp://10.0.0.2:8000"));
        assert!(has("MY_DB_PORT_8000_TCP_PORT_END=8001"));
        assert!(has("MY_DB_PORT_8001_TCP_PORT=8001"));
        assert!(has("MY_DB_NAME=/app/my-db"));
        assert!(has("MY_DB_ENV_FOO=bar"));
        assert!(!env
            .iter()
            .any(|e| e.contains("ENV_PATH") || e.contains("ENV_HOME")));
        // 80/udp and 443/udp are not a run; 80 and 8000 are not either.
        assert!(!env
            .iter()
            .any(|e| e.contains("_80_UDP_START") || e.contains("_80_TCP_START")));
    }
}
