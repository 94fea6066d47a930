//! A small router: method + path pattern → handler. Patterns use `{name}` for one segment and
//! `{name*}` for one or more segments (image names contain slashes), matched greedily from the
//! right so `/images/{name*}/push` takes `127.0.0.1:5000/team/app` as the name.

use super::http::{ApiResult, Query};
use crate::state::Ctx;
use futures_util::future::BoxFuture;
use hyper::body::Incoming;
use hyper::{Method, Request};
use std::collections::HashMap;
use std::sync::Arc;

/// What a handler receives.
pub struct Req {
    /// The request (body unread).
    pub inner: Request<Incoming>,
    /// Path parameters.
    pub params: HashMap<String, String>,
    /// Query parameters.
    pub query: Query,
    /// The negotiated API version (major, minor); some formats depend on it.
    pub version: (u32, u32),
}

impl Req {
    /// Path parameter `name` (empty when missing).
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }
    /// Takes the body out (leaving an empty request).
    pub fn into_body(self) -> Incoming {
        self.inner.into_body()
    }
}

/// A handler.
pub type Handler = Arc<dyn Fn(Ctx, Req) -> BoxFuture<'static, ApiResult> + Send + Sync>;

enum Seg {
    Lit(String),
    Param(String),
    Greedy(String),
}

/// The route table.
#[derive(Default)]
pub struct Router {
    routes: Vec<(Method, Vec<Seg>, Handler)>,
}

fn parse_pattern(p: &str) -> Vec<Seg> {
    p.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Some(n) = s.strip_prefix('{').and_then(|s| s.strip_suffix("*}")) {
                Seg::Greedy(n.to_string())
            } else if let Some(n) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Seg::Param(n.to_string())
            } else {
                Seg::Lit(s.to_string())
            }
        })
        .collect()
}

fn matches(pat: &[Seg], segs: &[&str], out: &mut HashMap<String, String>) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((Seg::Lit(l), rest)) => {
            segs.first().is_some_and(|s| s == l) && matches(rest, &segs[1..], out)
        }
        Some((Seg::Param(n), rest)) => {
            if segs.is_empty() {
                return false;
            }
            out.insert(n.clone(), segs[0].to_string());
            matches(rest, &segs[1..], out)
        }
        Some((Seg::Greedy(n), rest)) => {
            for take in (1..=segs.len()).rev() {
                let mut tmp = out.clone();
                if matches(rest, &segs[take..], &mut tmp) {
                    tmp.insert(n.clone(), segs[..take].join("/"));
                    *out = tmp;
                    return true;
                }
            }
            false
        }
    }
}

impl Router {
    /// Adds a route.
    pub fn add<F, Fut>(&mut self, method: Method, pattern: &str, f: F)
    where
        F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ApiResult> + Send + 'static,
    {
        let h: Handler = Arc::new(move |c, r| Box::pin(f(c, r)));
        self.routes.push((method, parse_pattern(pattern), h));
    }

    /// Finds the handler for `method` and `path` (version prefix already stripped).
    pub fn find(&self, method: &Method, path: &str) -> Option<(Handler, HashMap<String, String>)> {
        let segs: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        for (m, pat, h) in &self.routes {
            let method_ok = m == method
                || (*m == Method::GET && *method == Method::HEAD && !self.has_head(pat));
            if !method_ok {
                continue;
            }
            let mut params = HashMap::new();
            if matches(pat, &segs, &mut params) {
                let params = params
                    .into_iter()
                    .map(|(k, v)| {
                        let v = percent_encoding::percent_decode_str(&v)
                            .decode_utf8_lossy()
                            .into_owned();
                        (k, v)
                    })
                    .collect();
                return Some((h.clone(), params));
            }
        }
        None
    }

    fn has_head(&self, pat: &[Seg]) -> bool {
        let key = |p: &[Seg]| {
            p.iter()
                .map(|s| match s {
                    Seg::Lit(l) => l.clone(),
                    Seg::Param(_) => "{}".into(),
                    Seg::Greedy(_) => "*".into(),
                })
                .collect::<Vec<_>>()
        };
        let k = key(pat);
        self.routes
            .iter()
            .any(|(m, p, _)| *m == Method::HEAD && key(p) == k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_names() {
        let mut out = HashMap::new();
        assert!(matches(
            &parse_pattern("/images/{name*}/push"),
            &["images", "127.0.0.1:5000", "team", "app", "push"],
            &mut out
        ));
        assert_eq!(out["name"], "127.0.0.1:5000/team/app");
        let mut out = HashMap::new();
        assert!(matches(
            &parse_pattern("/images/{name*}"),
            &["images", "busybox"],
            &mut out
        ));
        assert!(!matches(
            &parse_pattern("/containers/{id}/json"),
            &["containers", "json"],
            &mut HashMap::new()
        ));
    }
}
