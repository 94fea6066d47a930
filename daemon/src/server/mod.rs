//! The HTTP server: listeners (unix and tcp, TLS on tcp), API version prefixes, the headers every response
//! carries, and dispatch through the [`router::Router`].

mod fdlimit;
pub mod hijack;
pub mod http;
mod listen;
pub mod router;
pub mod tls;

pub use listen::{bind, serve, Listener};

use crate::state::Ctx;
use http::{ApiError, Resp};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use router::{Req, Router};
use std::sync::Arc;

/// The API version berthd advertises.
pub const API_VERSION: &str = "1.47";
/// The lowest version it accepts.
pub const MIN_API_VERSION: &str = "1.24";
const MAX: (u32, u32) = (1, 47);
const MIN: (u32, u32) = (1, 24);

/// Splits `/v1.NN/rest` into the version and `/rest`.
fn split_version(path: &str) -> Result<((u32, u32), &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((MAX, path));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some((maj, min)) = ver.split_once('.') else {
        return Ok((MAX, path));
    };
    let (Ok(maj), Ok(min)) = (maj.parse::<u32>(), min.parse::<u32>()) else {
        return Ok((MAX, path));
    };
    let v = (maj, min);
    if v < MIN {
        return Err(ApiError::bad_request(format!(
            "client version {maj}.{min} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if v > MAX {
        return Err(ApiError::bad_request(format!(
            "client version {maj}.{min} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok((v, tail))
}

pub(crate) async fn handle(ctx: Ctx, router: Arc<Router>, req: Request<Incoming>) -> Resp {
    crate::idle::request();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    tracing::debug!("{method} {}", req.uri());
    let mut resp = match split_version(&path) {
        Err(e) => e.into_response(),
        Ok((version, tail)) => match router.find(&method, tail) {
            None => ApiError::not_found("page not found").into_response(),
            Some((h, params)) => {
                let query = http::Query::parse(req.uri().query());
                let r = Req {
                    inner: req,
                    params,
                    query,
                    version,
                };
                match h(ctx.clone(), r).await {
                    Ok(r) => r,
                    Err(e) => {
                        if e.status.is_server_error() {
                            tracing::error!("{method} {path}: {}", e.message);
                        }
                        e.into_response()
                    }
                }
            }
        },
    };
    let head_ok = method == hyper::Method::HEAD && resp.status() == StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        "server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    h.insert("api-version", HeaderValue::from_static(API_VERSION));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    if head_ok && !h.contains_key("content-length") {
        h.insert("content-length", HeaderValue::from_static("0"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            split_version("/v1.41/info").ok().map(|x| x.1),
            Some("/info")
        );
        assert_eq!(split_version("/info").ok().map(|x| x.1), Some("/info"));
        assert!(split_version("/v1.12/info").is_err());
        assert!(split_version("/v1.99/info").is_err());
    }
}
