//! The pull service, shared by the Docker API's `POST /images/create?fromImage=` and the CRI's
//! `PullImage`: [`resolve`] fetches the manifest first (a list or index to the host's platform
//! or `--platform`), so that errors before any progress — no such image, access denied,
//! unreachable registry — reach the front end as typed errors with Docker's texts; then
//! [`Pull::run`] reports Docker's progress messages to its sink while each missing layer flows
//! from the registry plugin through digest check, decompression and unpack into the storage
//! driver (`pull_layers`, several at once).

use super::pull_layers::Layer;
use crate::error::ServiceError;
use crate::jsonv::strings;
use crate::state::Ctx;
use berth_core::reference::Reference;
use berth_core::registry::Credentials;
use berth_core::{DriverError, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

/// The largest image config read into memory from a registry, MiB (a hostile registry's
/// endless config blob fails the pull instead of filling berthd's memory).
const MAX_CONFIG_MIB: u64 = 8;
const MAX_CONFIG: u64 = MAX_CONFIG_MIB << 20;

/// The config blob as the registry plugin writes it, refusing bytes past [`MAX_CONFIG`].
#[derive(Default)]
struct CappedConfig {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for CappedConfig {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.bytes.len() + buf.len()) as u64 > MAX_CONFIG {
            self.over = true;
            return Err(std::io::Error::other("image config too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The image manifest a reference resolved to.
pub struct Resolved {
    /// Where it was found: the reference itself, or the same on a mirror.
    source: Reference,
    /// The digest the reference named (the list's, for a manifest list).
    top_digest: String,
    /// The platform's image manifest.
    doc: Value,
}

/// Docker's text for a pull the registry refused (moby's `notFoundError`).
fn access_denied(r: &Reference) -> String {
    format!(
        "pull access denied for {}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
        r.familiar_name()
    )
}

fn pull_error(r: &Reference, e: DriverError) -> ServiceError {
    match e {
        DriverError::Unauthorized(_) => ServiceError::not_found(access_denied(r)),
        DriverError::NotFound(m) => ServiceError::not_found(m),
        other => ServiceError::internal(other.to_string()),
    }
}

/// Fetches the manifest `r` names from the first of `sources` (its mirrors, then itself:
/// [`super::mirrors::sources`]) that has it and, for a list or index, the one for `platform`
/// (`(os, arch[/variant])`, default the host's). The last source's error is the answer.
pub fn resolve(
    reg: &dyn Registry,
    r: &Reference,
    sources: &[Reference],
    platform: Option<(String, String)>,
    creds: &Credentials,
) -> Result<Resolved, ServiceError> {
    let mut last = None;
    for s in sources {
        match resolve_at(reg, r, s, platform.clone(), creds) {
            Ok(m) => return Ok(m),
            Err(e) => {
                if s != r {
                    tracing::debug!("mirror {} has no {}: {e}", s.domain, r);
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| ServiceError::internal("no registry to pull from")))
}

/// [`resolve`] at one source.
fn resolve_at(
    reg: &dyn Registry,
    r: &Reference,
    source: &Reference,
    platform: Option<(String, String)>,
    creds: &Credentials,
) -> Result<Resolved, ServiceError> {
    let m = reg
        .fetch_manifest(source, creds)
        .map_err(|e| pull_error(r, e))?;
    let invalid = |e: serde_json::Error| ServiceError::internal(format!("invalid manifest: {e}"));
    let doc: Value = serde_json::from_slice(&m.bytes).map_err(invalid)?;
    let Some(entries) = doc.get("manifests").and_then(Value::as_array) else {
        return Ok(Resolved {
            source: source.clone(),
            top_digest: m.digest,
            doc,
        });
    };
    let (os, arch) =
        platform.unwrap_or_else(|| ("linux".into(), berth_image::save::host_arch().to_string()));
    let (want_arch, want_variant) = match arch.split_once('/') {
        Some((a, v)) => (a, Some(v)),
        None => (arch.as_str(), None),
    };
    fn field<'a>(d: &'a Value, f: &str) -> Option<&'a str> {
        d.pointer(&format!("/platform/{f}")).and_then(Value::as_str)
    }
    let pick = entries.iter().find(|d| {
        field(d, "os") == Some(os.as_str())
            && field(d, "architecture") == Some(want_arch)
            && want_variant.is_none_or(|v| field(d, "variant") == Some(v))
    });
    let d = pick.ok_or_else(|| {
        ServiceError::not_found(format!(
            "no matching manifest for {os}/{arch} in the manifest list entries"
        ))
    })?;
    let mut by_digest = source.clone();
    by_digest.tag = None;
    by_digest.digest = d["digest"].as_str().map(str::to_string);
    let one = reg
        .fetch_manifest(&by_digest, creds)
        .map_err(|e| pull_error(r, e))?;
    Ok(Resolved {
        source: source.clone(),
        top_digest: m.digest,
        doc: serde_json::from_slice(&one.bytes).map_err(invalid)?,
    })
}

/// Where a pull's progress messages (Docker's JSON stream objects) go.
pub type Report = Box<dyn Fn(Value) + Send + Sync>;

/// One pull in progress: where its messages go, its credentials and registry.
pub struct Pull {
    pub(super) ctx: Ctx,
    report: Report,
    pub(super) creds: Credentials,
    pub(super) reg: Arc<dyn Registry>,
}

impl Pull {
    /// A pull through the daemon's registry client with `creds`, reporting to `report`.
    pub fn new(ctx: Ctx, creds: Credentials, report: Report) -> Self {
        Pull {
            reg: ctx.registry.clone(),
            ctx,
            report,
            creds,
        }
    }

    pub(super) fn msg(&self, v: Value) {
        (self.report)(v);
    }

    pub(super) fn status(&self, status: &str, id: &str) {
        self.msg(json!({"status": status, "progressDetail": {}, "id": id}));
    }

    /// Fetches what `m` (resolved from `r`) lacks and records the image, tagged `r`'s tag;
    /// answers its ID. Blocking: run it off the async runtime.
    pub fn run(&self, r: &Reference, m: Resolved) -> Result<String, String> {
        let shown_tag = r
            .tag
            .clone()
            .or_else(|| r.digest.clone())
            .unwrap_or_default();
        self.msg(json!({"status": format!("Pulling from {}", r.familiar_name()), "id": shown_tag}));
        let cfg_digest = m
            .doc
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .ok_or("manifest has no config")?
            .to_string();
        let too_large = || {
            format!("image config is larger than the limit of {MAX_CONFIG_MIB} MiB: refusing it")
        };
        if m.doc.pointer("/config/size").and_then(Value::as_u64) > Some(MAX_CONFIG) {
            return Err(too_large());
        }
        let mut cfg = CappedConfig::default();
        let fetched = self
            .reg
            .fetch_blob(&m.source, &cfg_digest, &self.creds, &mut cfg);
        if cfg.over {
            return Err(too_large());
        }
        fetched.map_err(|e| e.to_string())?;
        let cfg_bytes = cfg.bytes;
        let config: Value =
            serde_json::from_slice(&cfg_bytes).map_err(|e| format!("invalid image config: {e}"))?;
        let diff_ids = strings(config.pointer("/rootfs/diff_ids"));
        let descs = m.doc["layers"].as_array().cloned().unwrap_or_default();
        if descs.len() != diff_ids.len() {
            return Err("manifest and config disagree on the number of layers".into());
        }
        let id = berth_core::Digest::of(&cfg_bytes).to_string();
        let existed = self.ctx.images.get(&id).is_ok();
        let chains = berth_image::chain_ids(&diff_ids);
        let layers: Vec<Layer> = descs
            .iter()
            .zip(diff_ids.iter().zip(&chains))
            .map(|(l, (diff_id, chain))| {
                let digest = l["digest"].as_str().unwrap_or("").to_string();
                Layer {
                    short: digest
                        .trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect(),
                    size: l["size"].as_u64().unwrap_or(0),
                    digest,
                    diff_id: diff_id.clone(),
                    chain: chain.clone(),
                }
            })
            .collect();
        let present: Vec<bool> = layers
            .iter()
            .map(|l| self.ctx.images.layer(&l.chain).is_some())
            .collect();
        for (l, have) in layers.iter().zip(&present) {
            self.status(
                if *have {
                    "Already exists"
                } else {
                    "Pulling fs layer"
                },
                &l.short,
            );
        }
        self.fetch_layers(&m.source, &layers, &present)?;
        let tags: Vec<String> = r
            .tag
            .iter()
            .map(|t| format!("{}:{t}", r.familiar_name()))
            .collect();
        let id = self
            .ctx
            .images
            .add_image(&cfg_bytes, &tags, None)
            .map_err(|e| e.to_string())?;
        let _ = self
            .ctx
            .images
            .add_repo_digest(&id, &format!("{}@{}", r.familiar_name(), m.top_digest));
        self.msg(json!({"status": format!("Digest: {}", m.top_digest)}));
        let what = r.familiar_string();
        self.msg(json!({"status": if existed { format!("Status: Image is up to date for {what}") } else { format!("Status: Downloaded newer image for {what}") }}));
        let mut a = std::collections::BTreeMap::new();
        a.insert("name".into(), what);
        self.ctx.events.publish("image", "pull", &id, a);
        Ok(id)
    }
}
