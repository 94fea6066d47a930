//! Answering registry auth challenges: `WWW-Authenticate: Basic ...` and
//! `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` (the token flow Docker Hub
//! and distribution use), with tokens cached per host and scope.

use crate::error::RegistryError;
use base64::Engine as _;
use berth_core::registry::Credentials;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic auth.
    Basic,
    /// Token auth.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter.
        service: Option<String>,
        /// `scope` parameter proposed by the registry.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let mut map = HashMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (val, after) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_string(), &q[end + 1..]),
                None => (q.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].to_string(), &after[end..]),
                None => (after.to_string(), ""),
            }
        };
        map.insert(key, val);
        rest = after.trim_start_matches([',', ' ']);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: map.remove("realm")?,
            service: map.remove("service"),
            scope: map.remove("scope"),
        }),
        _ => None,
    }
}

/// The `Authorization` value for basic auth.
pub fn basic(creds: &Credentials) -> String {
    let raw = format!("{}:{}", creds.username, creds.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(Debug, Clone)]
struct Cached {
    header: String,
    expires: Instant,
}

/// Authorization headers remembered per (host, scope, user).
#[derive(Debug, Default)]
pub struct TokenCache {
    map: Mutex<HashMap<String, Cached>>,
}

impl TokenCache {
    fn key(host: &str, scope: &str, creds: &Credentials) -> String {
        format!("{host}|{scope}|{}", creds.username)
    }

    /// A cached header still valid, if any.
    pub fn get(&self, host: &str, scope: &str, creds: &Credentials) -> Option<String> {
        let map = self.map.lock().ok()?;
        map.get(&Self::key(host, scope, creds))
            .filter(|c| c.expires > Instant::now())
            .map(|c| c.header.clone())
    }

    /// Remembers a header for `ttl`.
    pub fn put(&self, host: &str, scope: &str, creds: &Credentials, header: String, ttl: Duration) {
        if let Ok(mut map) = self.map.lock() {
            map.insert(
                Self::key(host, scope, creds),
                Cached {
                    header,
                    expires: Instant::now() + ttl,
                },
            );
        }
    }
}

#[derive(serde::Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Fetches a bearer token from `realm` for `scope`; returns the header and its lifetime.
pub fn fetch_token(
    http: &reqwest::blocking::Client,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    creds: &Credentials,
) -> Result<(String, Duration), RegistryError> {
    let mut url = url::Url::parse(realm)
        .map_err(|e| RegistryError::Transport(format!("bad token realm {realm:?}: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        if !scope.is_empty() {
            q.append_pair("scope", scope);
        }
    }
    let mut req = http.get(url.clone());
    if !creds.username.is_empty() {
        req = req.header("Authorization", basic(creds));
    } else if !creds.identity_token.is_empty() {
        req = req.header("Authorization", format!("Bearer {}", creds.identity_token));
    }
    let mut resp = req
        .send()
        .map_err(|e| RegistryError::Transport(format!("fetching token from {url}: {e}")))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(RegistryError::Unauthorized(
            "incorrect username or password".into(),
        ));
    }
    if !status.is_success() {
        return Err(RegistryError::Status {
            method: "GET",
            url: url.to_string(),
            status: status.to_string(),
        });
    }
    let announced = resp.content_length();
    let raw = crate::limits::read_capped(
        &mut resp,
        announced,
        crate::limits::MAX_TOKEN_REPLY,
        "token reply",
    )?;
    let body: TokenReply = serde_json::from_slice(&raw)
        .map_err(|e| RegistryError::Transport(format!("bad token reply from {url}: {e}")))?;
    let token = if body.token.is_empty() {
        body.access_token
    } else {
        body.token
    };
    if token.is_empty() {
        return Err(RegistryError::Transport(format!(
            "token reply from {url} has no token"
        )));
    }
    let ttl = Duration::from_secs(
        body.expires_in
            .unwrap_or(60)
            .clamp(10, 3600)
            .saturating_sub(5),
    );
    Ok((format!("Bearer {token}"), ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
