//! Registry endpoints: pull (`/images/create?fromImage=`), push (`/images/{name}/push`) and
//! login (`/auth`), streaming Docker's progress messages.

use crate::jsonv::strings;
use crate::server::http::{self, ok_json, read_json, ApiError, ApiResult, JsonSender};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use base64::Engine as _;
use berth_core::reference::Reference;
use berth_core::registry::Credentials;
use hyper::Method;
use serde_json::{json, Value};

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/images/{name*}/push", push);
    r.add(Method::POST, "/auth", auth);
}

/// Decodes `X-Registry-Auth` leniently (base64url or standard, padded or not; bad = anonymous).
pub fn decode_auth(h: Option<&str>) -> Credentials {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Credentials::default();
    };
    let trimmed = h.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed));
    let Ok(bytes) = bytes else {
        return Credentials::default();
    };
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Credentials {
        username: v["username"].as_str().unwrap_or("").into(),
        password: v["password"].as_str().unwrap_or("").into(),
        identity_token: v["identitytoken"].as_str().unwrap_or("").into(),
    }
}

fn host_platform() -> (&'static str, &'static str) {
    ("linux", berth_image::save::host_arch())
}

struct Pull {
    ctx: Ctx,
    tx: JsonSender,
    creds: Credentials,
}

impl Pull {
    fn msg(&self, v: Value) {
        self.tx.send_blocking(v);
    }

    fn run(&self, r: &Reference, platform: Option<(String, String)>) -> Result<(), String> {
        let reg = self.ctx.registry.clone();
        let shown_tag = r
            .tag
            .clone()
            .or_else(|| r.digest.clone())
            .unwrap_or_default();
        self.msg(json!({"status": format!("Pulling from {}", r.familiar_name()), "id": shown_tag}));
        let mut m = reg
            .fetch_manifest(r, &self.creds)
            .map_err(|e| e.to_string())?;
        let top_digest = m.digest.clone();
        let mut doc: Value =
            serde_json::from_slice(&m.bytes).map_err(|e| format!("invalid manifest: {e}"))?;
        if doc.get("manifests").is_some() {
            let (os, arch) = platform
                .clone()
                .unwrap_or_else(|| (host_platform().0.into(), host_platform().1.into()));
            let (want_arch, want_variant) = match arch.split_once('/') {
                Some((a, v)) => (a.to_string(), Some(v.to_string())),
                None => (arch.clone(), None),
            };
            let pick = doc["manifests"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .find(|d| {
                    d.pointer("/platform/os").and_then(Value::as_str) == Some(os.as_str())
                        && d.pointer("/platform/architecture").and_then(Value::as_str)
                            == Some(want_arch.as_str())
                        && want_variant.as_deref().is_none_or(|v| {
                            d.pointer("/platform/variant").and_then(Value::as_str) == Some(v)
                        })
                });
            let d = pick.ok_or_else(|| {
                format!("no matching manifest for {os}/{arch} in the manifest list entries")
            })?;
            let mut byd = r.clone();
            byd.tag = None;
            byd.digest = d["digest"].as_str().map(str::to_string);
            m = reg
                .fetch_manifest(&byd, &self.creds)
                .map_err(|e| e.to_string())?;
            doc = serde_json::from_slice(&m.bytes).map_err(|e| format!("invalid manifest: {e}"))?;
        }
        let cfg_digest = doc
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .ok_or("manifest has no config")?
            .to_string();
        let mut cfg_bytes = Vec::new();
        reg.fetch_blob(r, &cfg_digest, &self.creds, &mut cfg_bytes)
            .map_err(|e| e.to_string())?;
        let config: Value =
            serde_json::from_slice(&cfg_bytes).map_err(|e| format!("invalid image config: {e}"))?;
        let diff_ids = strings(config.pointer("/rootfs/diff_ids"));
        let layers = doc["layers"].as_array().cloned().unwrap_or_default();
        if layers.len() != diff_ids.len() {
            return Err("manifest and config disagree on the number of layers".into());
        }
        let id = berth_core::Digest::of(&cfg_bytes).to_string();
        let existed = self.ctx.images.get(&id).is_ok();
        let mut parent: Option<String> = None;
        let chains = berth_image::chain_ids(&diff_ids);
        for (i, l) in layers.iter().enumerate() {
            let digest = l["digest"].as_str().unwrap_or("").to_string();
            let short = digest
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>();
            if self.ctx.images.layer(&chains[i]).is_some() {
                self.msg(json!({"status": "Already exists", "progressDetail": {}, "id": short}));
                parent = Some(chains[i].clone());
                continue;
            }
            let size = l["size"].as_u64().unwrap_or(0);
            self.msg(json!({"status": "Pulling fs layer", "progressDetail": {}, "id": short}));
            let (pr, pw) = std::io::pipe().map_err(|e| e.to_string())?;
            let tx = self.tx.clone();
            let short2 = short.clone();
            let fetched = std::thread::scope(|s| {
                let h = s.spawn(|| {
                    let mut w = Progress {
                        inner: pw,
                        done: 0,
                        total: size,
                        tx,
                        id: short2,
                        last: std::time::Instant::now(),
                    };
                    let r = reg.fetch_blob(r, &digest, &self.creds, &mut w);
                    drop(w);
                    r
                });
                let mut reader = std::io::BufReader::with_capacity(1 << 20, pr);
                let applied =
                    self.ctx
                        .images
                        .apply_layer(parent.as_deref(), &diff_ids[i], &mut reader);
                drop(reader);
                let fetched = h
                    .join()
                    .map_err(|_| "download thread panicked".to_string())?;
                match (fetched, applied) {
                    (Err(e), _) => Err(e.to_string()),
                    (Ok(_), Err(e)) => Err(e.to_string()),
                    (Ok(_), Ok(c)) => Ok(c),
                }
            });
            let chain = fetched.inspect_err(|_| {
                self.ctx.images.gc_layers(std::slice::from_ref(&chains[i]));
            })?;
            self.msg(json!({"status": "Download complete", "progressDetail": {}, "id": short}));
            self.msg(json!({"status": "Pull complete", "progressDetail": {}, "id": short}));
            parent = Some(chain);
        }
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
            .add_repo_digest(&id, &format!("{}@{top_digest}", r.familiar_name()));
        self.msg(json!({"status": format!("Digest: {top_digest}")}));
        let what = r.familiar_string();
        self.msg(json!({"status": if existed { format!("Status: Image is up to date for {what}") } else { format!("Status: Downloaded newer image for {what}") }}));
        let mut a = std::collections::BTreeMap::new();
        a.insert("name".into(), what);
        self.ctx.events.publish("image", "pull", &id, a);
        Ok(())
    }
}

struct Progress {
    inner: std::io::PipeWriter,
    done: u64,
    total: u64,
    tx: JsonSender,
    id: String,
    last: std::time::Instant,
}

impl std::io::Write for Progress {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        if self.last.elapsed() > std::time::Duration::from_millis(100) {
            self.last = std::time::Instant::now();
            self.tx.send_blocking(json!({"status": "Downloading", "progressDetail": {"current": self.done, "total": self.total}, "id": self.id}));
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `POST /images/create?fromImage=...`.
pub async fn pull(ctx: Ctx, req: Req) -> ApiResult {
    let from = req.query.get("fromImage").unwrap_or("").to_string();
    let tag = req.query.get("tag").unwrap_or("").to_string();
    let full = if tag.is_empty() || from.contains('@') {
        from.clone()
    } else if tag.starts_with("sha256:") {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let r = Reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let platform = req
        .query
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut parts = p.splitn(2, '/');
            (
                parts.next().unwrap_or("linux").to_string(),
                parts.next().unwrap_or("").to_string(),
            )
        });
    let creds = decode_auth(req.header("x-registry-auth"));
    let (tx, resp) = http::json_stream();
    let p = Pull {
        ctx,
        tx: tx.clone(),
        creds,
    };
    tokio::task::spawn_blocking(move || {
        if let Err(e) = p.run(&r, platform) {
            tx.send_blocking(json!({"errorDetail": {"message": e}, "error": e}));
        }
    });
    Ok(resp)
}

async fn push(ctx: Ctx, req: Req) -> ApiResult {
    let name = req.param("name").to_string();
    let tag = req
        .query
        .get("tag")
        .filter(|t| !t.is_empty())
        .unwrap_or("latest")
        .to_string();
    let full = format!("{name}:{tag}");
    let r = Reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let img = ctx.images.resolve(&r.familiar_string()).map_err(|_| {
        ApiError::not_found(format!(
            "An image does not exist locally with the tag: {}",
            r.familiar_name()
        ))
    })?;
    let creds = decode_auth(req.header("x-registry-auth"));
    let (tx, resp) = http::json_stream();
    tokio::task::spawn_blocking(move || {
        let send = |v: Value| tx.send_blocking(v);
        let run = || -> Result<(), String> {
            let reg = ctx.registry.clone();
            send(json!({"status": format!("The push refers to repository [{}]", r.name())}));
            let chains = berth_image::chain_ids(&img.diff_ids);
            let mut descs = Vec::new();
            for (chain, diff) in chains.iter().zip(&img.diff_ids) {
                let short: String = diff
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                send(json!({"status": "Preparing", "progressDetail": {}, "id": short}));
                let path = ctx.images.layer_tar(chain);
                let size = std::fs::metadata(&path)
                    .map_err(|e| format!("layer {chain}: {e}"))?
                    .len();
                if reg
                    .blob_exists(&r, diff, &creds)
                    .map_err(|e| e.to_string())?
                {
                    send(
                        json!({"status": "Layer already exists", "progressDetail": {}, "id": short}),
                    );
                } else {
                    send(
                        json!({"status": "Pushing", "progressDetail": {"current": 0, "total": size}, "id": short}),
                    );
                    let mut f = std::io::BufReader::new(
                        std::fs::File::open(&path).map_err(|e| e.to_string())?,
                    );
                    reg.push_blob(&r, diff, size, &creds, &mut f)
                        .map_err(|e| e.to_string())?;
                    send(json!({"status": "Pushed", "progressDetail": {}, "id": short}));
                }
                descs.push(json!({"mediaType": berth_image::media::OCI_LAYER, "digest": diff, "size": size}));
            }
            let cfg = ctx
                .images
                .config_bytes(&img.id)
                .map_err(|e| e.to_string())?;
            if !reg
                .blob_exists(&r, &img.id, &creds)
                .map_err(|e| e.to_string())?
            {
                reg.push_blob(&r, &img.id, cfg.len() as u64, &creds, &mut cfg.as_slice())
                    .map_err(|e| e.to_string())?;
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": berth_image::media::OCI_MANIFEST,
                "config": {"mediaType": berth_image::media::OCI_CONFIG, "digest": img.id, "size": cfg.len()},
                "layers": descs,
            });
            let bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
            let digest = reg
                .push_manifest(&r, berth_image::media::OCI_MANIFEST, &bytes, &creds)
                .map_err(|e| e.to_string())?;
            let _ = ctx
                .images
                .add_repo_digest(&img.id, &format!("{}@{digest}", r.familiar_name()));
            send(json!({"status": format!("{tag}: digest: {digest} size: {}", bytes.len())}));
            send(
                json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": bytes.len()}}),
            );
            ctx.events
                .publish("image", "push", &img.id, Default::default());
            Ok(())
        };
        if let Err(e) = run() {
            tx.send_blocking(json!({"errorDetail": {"message": e}, "error": e}));
        }
    });
    Ok(resp)
}

async fn auth(ctx: Ctx, req: Req) -> ApiResult {
    let body: Value = read_json(req.into_body()).await?;
    let server = body["serveraddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("https://index.docker.io/v1/")
        .to_string();
    let creds = Credentials {
        username: body["username"].as_str().unwrap_or("").into(),
        password: body["password"].as_str().unwrap_or("").into(),
        identity_token: body["identitytoken"].as_str().unwrap_or("").into(),
    };
    let reg = ctx.registry.clone();
    let res = tokio::task::spawn_blocking(move || reg.login(&server, &creds)).await?;
    match res {
        Ok(()) => ok_json(&json!({"Status": "Login Succeeded", "IdentityToken": ""})),
        Err(berth_core::DriverError::Unauthorized(m)) => {
            Err(ApiError::new(hyper::StatusCode::UNAUTHORIZED, m))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}
