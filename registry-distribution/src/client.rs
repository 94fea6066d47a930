//! The registry client: `core::Registry` over the OCI distribution HTTP API.

use crate::auth::{self, Challenge, TokenCache};
use crate::blob::BlobReader;
use crate::endpoint::{self, Insecure};
use crate::error::RegistryError;
use crate::limits;
use berth_core::reference::Reference;
use berth_core::registry::{Credentials, FetchedManifest};
use berth_core::{DriverResult, Registry};
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How the client is set up (from the daemon's configuration).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientConfig {
    /// `insecure-registries`: hosts or CIDRs.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors` for Docker Hub.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// Folders holding `<host:port>/ca.crt` files (as `/etc/docker/certs.d`).
    #[serde(default)]
    pub certs_dirs: Vec<PathBuf>,
    /// Per-request timeout for non-streaming requests, seconds.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// Bytes uploaded per PATCH for chunked uploads; smaller blobs go up in one PUT.
const CHUNK: usize = 32 << 20;
/// Attempts for idempotent requests.
const ATTEMPTS: u32 = 3;

/// The OCI distribution client.
pub struct Client {
    insecure: Vec<Insecure>,
    mirrors: Vec<String>,
    certs_dirs: Vec<PathBuf>,
    timeout: Duration,
    /// Per domain: the client for downloads and small requests, and the one for uploads.
    http: Mutex<HashMap<String, (Http, Http)>>,
    bases: Mutex<HashMap<String, (String, Option<Challenge>)>>,
    tokens: TokenCache,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("insecure", &self.insecure)
            .field("mirrors", &self.mirrors)
            .finish()
    }
}

fn transport(url: &str, host: &str, e: reqwest::Error) -> RegistryError {
    let text = format!("{e:?}");
    if text.contains("certificate")
        || text.contains("InvalidCertificate")
        || text.contains("UnknownIssuer")
    {
        RegistryError::Tls {
            url: url.to_string(),
            detail: "x509: certificate signed by unknown authority".into(),
        }
    } else if e.is_connect() {
        RegistryError::Unreachable {
            url: url.to_string(),
            host: host.to_string(),
        }
    } else if e.is_timeout() {
        RegistryError::Transport(format!("Get \"{url}\": timeout"))
    } else {
        RegistryError::Transport(format!("{url}: {e}"))
    }
}

impl Client {
    /// Makes a client.
    pub fn new(cfg: ClientConfig) -> Result<Client, RegistryError> {
        Ok(Client {
            insecure: cfg
                .insecure_registries
                .iter()
                .map(|s| Insecure::parse(s))
                .collect(),
            mirrors: cfg.registry_mirrors,
            certs_dirs: cfg.certs_dirs,
            timeout: Duration::from_secs(cfg.timeout_secs.unwrap_or(30)),
            http: Mutex::new(HashMap::new()),
            bases: Mutex::new(HashMap::new()),
            tokens: TokenCache::default(),
        })
    }

    /// The HTTP client for `domain` (insecure: no verification; else extra CAs from certs.d):
    /// every read waits at most [`limits::READ_IDLE`] for data.
    fn http_for(&self, domain: &str) -> Result<Http, RegistryError> {
        Ok(self.clients_for(domain)?.0)
    }

    /// The client for requests carrying a body (uploads), with the longer
    /// [`limits::UPLOAD_READ_IDLE`]: its wait for the answer also covers sending the body.
    fn upload_http_for(&self, domain: &str) -> Result<Http, RegistryError> {
        Ok(self.clients_for(domain)?.1)
    }

    fn clients_for(&self, domain: &str) -> Result<(Http, Http), RegistryError> {
        let mut map = self
            .http
            .lock()
            .map_err(|_| RegistryError::Config("client lock poisoned".into()))?;
        if let Some(c) = map.get(domain) {
            return Ok(c.clone());
        }
        let made = (
            self.build_http(domain, limits::READ_IDLE)?,
            self.build_http(domain, limits::UPLOAD_READ_IDLE)?,
        );
        map.insert(domain.to_string(), made.clone());
        Ok(made)
    }

    fn build_http(&self, domain: &str, read_idle: Duration) -> Result<Http, RegistryError> {
        // The blocking client's timeout bounds the wait for the answer's headers and then
        // each `read` of its body on its own: a per-read idle bound, not a total one (bodies
        // are only ever read through `Read`, never with `bytes()`, whose wait is total).
        let mut b = Http::builder()
            .connect_timeout(limits::CONNECT_TIMEOUT)
            .timeout(read_idle)
            .pool_max_idle_per_host(8)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        if endpoint::is_insecure(domain, &self.insecure) {
            b = b.danger_accept_invalid_certs(true);
        }
        for dir in &self.certs_dirs {
            let ca = dir.join(domain).join("ca.crt");
            if let Ok(pem) = std::fs::read(&ca) {
                let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                    RegistryError::Config(format!("bad CA certificate {}: {e}", ca.display()))
                })?;
                b = b.add_root_certificate(cert);
            }
        }
        b.build()
            .map_err(|e| RegistryError::Config(format!("building HTTP client: {e}")))
    }

    /// Finds the working API base of `domain` (probing `/v2/`) and its auth challenge.
    fn base(&self, domain: &str) -> Result<(String, Option<Challenge>), RegistryError> {
        if let Some(b) = self.bases.lock().ok().and_then(|m| m.get(domain).cloned()) {
            return Ok(b);
        }
        let http = self.http_for(domain)?;
        let mut last = None;
        for base in endpoint::bases(domain, &self.insecure, &self.mirrors) {
            let url = format!("{base}/v2/");
            match http.get(&url).timeout(self.timeout).send() {
                Ok(resp) => {
                    let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
                        resp.headers()
                            .get("www-authenticate")
                            .and_then(|v| v.to_str().ok())
                            .and_then(auth::parse_challenge)
                    } else {
                        None
                    };
                    let found = (base.clone(), challenge);
                    if let Ok(mut m) = self.bases.lock() {
                        m.insert(domain.to_string(), found.clone());
                    }
                    return Ok(found);
                }
                Err(e) => last = Some(transport(&url, domain, e)),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Config(format!("no endpoint for {domain}"))))
    }

    /// The Authorization header for `scope`, answering the domain's challenge.
    fn authorization(
        &self,
        domain: &str,
        challenge: &Option<Challenge>,
        scope: &str,
        creds: &Credentials,
    ) -> Result<Option<String>, RegistryError> {
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => {
                if creds.username.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(auth::basic(creds)))
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(h) = self.tokens.get(domain, scope, creds) {
                    return Ok(Some(h));
                }
                let http = self.http_for(domain)?;
                let (header, ttl) =
                    auth::fetch_token(&http, realm, service.as_deref(), scope, creds)?;
                self.tokens.put(domain, scope, creds, header.clone(), ttl);
                Ok(Some(header))
            }
        }
    }

    /// Sends a request to `path` (starting `/v2/`) or to an absolute URL, authenticated for
    /// `scope`, retrying idempotent requests on transport errors and 5xx answers.
    fn send(
        &self,
        method: Method,
        domain: &str,
        path_or_url: &str,
        scope: &str,
        creds: &Credentials,
        build: &dyn Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let (base, challenge) = self.base(domain)?;
        let idempotent = matches!(method, Method::GET | Method::HEAD);
        let http = if idempotent {
            self.http_for(domain)?
        } else {
            self.upload_http_for(domain)?
        };
        let url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{base}{path_or_url}")
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = http.request(method.clone(), &url);
            if let Some(h) = self.authorization(domain, &challenge, scope, creds)? {
                req = req.header("Authorization", h);
            }
            let result = build(req).send();
            let retry = match &result {
                Err(e) => idempotent && !e.is_builder(),
                Ok(r) => idempotent && r.status().is_server_error(),
            };
            if retry && attempt < ATTEMPTS {
                std::thread::sleep(Duration::from_millis(200 << attempt));
                continue;
            }
            let resp = result.map_err(|e| transport(&url, domain, e))?;
            return match resp.status() {
                StatusCode::UNAUTHORIZED => Err(RegistryError::Unauthorized(registry_message(
                    resp,
                    "authentication required",
                ))),
                StatusCode::FORBIDDEN => Err(RegistryError::Denied(registry_message(
                    resp,
                    "requested access to the resource is denied",
                ))),
                _ => Ok(resp),
            };
        }
    }

    /// Starts reading blob `digest`: the answer's body, verified as it is read.
    fn blob(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
    ) -> Result<BlobReader, RegistryError> {
        let path = format!("/v2/{}/blobs/{digest}", reference.path);
        let resp = self.send(
            Method::GET,
            &reference.domain,
            &path,
            &Self::scope(reference, false),
            creds,
            &|r| r,
        )?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound(format!(
                "blob {digest} not found: blob unknown to registry"
            )));
        }
        if !resp.status().is_success() {
            return Err(status_error("GET", &resp));
        }
        Ok(BlobReader::new(resp, digest))
    }

    fn scope(reference: &Reference, push: bool) -> String {
        format!(
            "repository:{}:{}",
            reference.path,
            if push { "pull,push" } else { "pull" }
        )
    }
}

/// The first error message of a registry's JSON error body (its first
/// [`limits::MAX_ERROR_BODY`] bytes), or `default`.
fn registry_message(mut resp: Response, default: &str) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        message: String,
    }
    let body = limits::read_prefix(&mut resp, limits::MAX_ERROR_BODY);
    serde_json::from_slice::<Errors>(&body)
        .ok()
        .and_then(|e| {
            e.errors
                .into_iter()
                .map(|e| e.message)
                .find(|m| !m.is_empty())
        })
        .unwrap_or_else(|| default.to_string())
}

fn status_error(method: &'static str, resp: &Response) -> RegistryError {
    RegistryError::Status {
        method,
        url: resp.url().to_string(),
        status: resp.status().to_string(),
    }
}

pub(crate) fn hex_digest(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

impl Registry for Client {
    fn name(&self) -> String {
        "distribution".into()
    }

    fn login(&self, server: &str, creds: &Credentials) -> DriverResult<()> {
        let domain = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or(server);
        let domain = if domain == "index.docker.io" || domain.is_empty() {
            "docker.io"
        } else {
            domain
        };
        let (base, challenge) = self.base(domain)?;
        let url = format!("{base}/v2/");
        let http = self.http_for(domain)?;
        let header = match &challenge {
            None => return Ok(()),
            Some(Challenge::Basic) => auth::basic(creds),
            Some(Challenge::Bearer { realm, service, .. }) => {
                // Docker names the registry's URL in front of the token server's refusal.
                auth::fetch_token(&http, realm, service.as_deref(), "", creds)
                    .map_err(|e| match e {
                        RegistryError::Unauthorized(m) => berth_core::DriverError::Unauthorized(
                            format!("Get \"{url}\": unauthorized: {m}"),
                        ),
                        other => other.into(),
                    })?
                    .0
            }
        };
        let resp = http
            .get(&url)
            .header("Authorization", header)
            .send()
            .map_err(|e| transport(&url, domain, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let s = resp.status();
            Err(berth_core::DriverError::Unauthorized(format!(
                "login attempt to {url} failed with status: {} {}",
                s.as_u16(),
                s.canonical_reason().unwrap_or("")
            )))
        }
    }

    fn fetch_manifest(
        &self,
        reference: &Reference,
        creds: &Credentials,
    ) -> DriverResult<FetchedManifest> {
        let target = reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let path = format!("/v2/{}/manifests/{target}", reference.path);
        let accept = crate::media::ALL.join(", ");
        let resp = self.send(
            Method::GET,
            &reference.domain,
            &path,
            &Self::scope(reference, false),
            creds,
            &|r| r.header("Accept", accept.clone()),
        )?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound(format!(
                "manifest for {} not found: manifest unknown: manifest unknown",
                reference.familiar_string()
            ))
            .into());
        }
        if !resp.status().is_success() {
            return Err(status_error("GET", &resp).into());
        }
        let header_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let mut resp = resp;
        let announced = resp.content_length();
        let bytes = limits::read_capped(&mut resp, announced, limits::MAX_MANIFEST, "manifest")?;
        let digest = berth_core::Digest::of(&bytes).to_string();
        if let Some(want) = &reference.digest {
            if want != &digest {
                return Err(RegistryError::DigestMismatch {
                    expected: want.clone(),
                    actual: digest,
                }
                .into());
            }
        }
        let body_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        let media_type = body_type.or(header_type).unwrap_or_default();
        if !crate::media::ALL.contains(&media_type.as_str()) {
            return Err(RegistryError::UnsupportedMediaType(media_type).into());
        }
        Ok(FetchedManifest {
            media_type,
            digest,
            bytes,
        })
    }

    fn fetch_blob(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
        out: &mut dyn Write,
    ) -> DriverResult<u64> {
        let mut blob = self.blob(reference, digest, creds)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match blob.read(&mut buf) {
                Ok(0) => return Ok(blob.got),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BlobReader::unwrap_error(e).into()),
            };
            out.write_all(&buf[..n]).map_err(RegistryError::Io)?;
        }
    }

    fn open_blob(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
    ) -> DriverResult<Box<dyn Read + Send>> {
        Ok(Box::new(self.blob(reference, digest, creds)?))
    }

    fn blob_exists(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
    ) -> DriverResult<bool> {
        let path = format!("/v2/{}/blobs/{digest}", reference.path);
        let resp = self.send(
            Method::HEAD,
            &reference.domain,
            &path,
            &Self::scope(reference, true),
            creds,
            &|r| r,
        )?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error("HEAD", &resp).into()),
        }
    }

    fn push_blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        creds: &Credentials,
        data: &mut dyn Read,
    ) -> DriverResult<()> {
        let scope = Self::scope(reference, true);
        let domain = &reference.domain;
        let start = format!("/v2/{}/blobs/uploads/", reference.path);
        let resp = self.send(Method::POST, domain, &start, &scope, creds, &|r| {
            r.header("Content-Length", "0")
        })?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error("POST", &resp).into());
        }
        let mut location = location(&resp, &self.base(domain)?.0)?;
        let mut offset = 0u64;
        let mut buf = vec![0u8; (size as usize).clamp(1, CHUNK)];
        let mut hasher = Sha256::new();
        let last_chunk = loop {
            let n = read_full(data, &mut buf).map_err(RegistryError::Io)?;
            hasher.update(&buf[..n]);
            if offset + n as u64 >= size || n < buf.len() {
                break buf[..n].to_vec();
            }
            let chunk = buf[..n].to_vec();
            let range = format!("{}-{}", offset, offset + n as u64 - 1);
            let resp = self.send(Method::PATCH, domain, &location, &scope, creds, &|r| {
                r.header("Content-Type", "application/octet-stream")
                    .header("Content-Range", range.clone())
                    .body(chunk.clone())
            })?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(status_error("PATCH", &resp).into());
            }
            location = self::location(&resp, &self.base(domain)?.0)?;
            offset += n as u64;
        };
        let actual = hex_digest(hasher);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                expected: digest.to_string(),
                actual,
            }
            .into());
        }
        let mut url = url::Url::parse(&location)
            .map_err(|e| RegistryError::Transport(format!("bad upload location: {e}")))?;
        url.query_pairs_mut().append_pair("digest", digest);
        let resp = self.send(Method::PUT, domain, url.as_str(), &scope, creds, &|r| {
            r.header("Content-Type", "application/octet-stream")
                .body(last_chunk.clone())
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error("PUT", &resp).into());
        }
        Ok(())
    }

    fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
        creds: &Credentials,
    ) -> DriverResult<String> {
        let target = reference
            .tag
            .clone()
            .or_else(|| reference.digest.clone())
            .unwrap_or_else(|| "latest".into());
        let path = format!("/v2/{}/manifests/{target}", reference.path);
        let body = bytes.to_vec();
        let mt = media_type.to_string();
        let resp = self.send(
            Method::PUT,
            &reference.domain,
            &path,
            &Self::scope(reference, true),
            creds,
            &|r| r.header("Content-Type", mt.clone()).body(body.clone()),
        )?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error("PUT", &resp).into());
        }
        Ok(berth_core::Digest::of(bytes).to_string())
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn location(resp: &Response, base: &str) -> Result<String, RegistryError> {
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Transport("upload answer has no Location".into()))?;
    if loc.starts_with("http://") || loc.starts_with("https://") {
        Ok(loc.to_string())
    } else {
        Ok(format!("{base}{loc}"))
    }
}
