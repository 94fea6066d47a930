//! Request and response plumbing: the error type with Docker's status codes, JSON and stream
//! bodies, query-string parsing with moby's lenient booleans and both filter encodings.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The body type of every response.
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;
/// A response.
pub type Resp = Response<Body>;

/// An API error: a status and Docker's `{"message": ...}`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// Any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    /// 409.
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    /// 500.
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    /// 304 (no body).
    pub fn not_modified() -> Self {
        Self::new(StatusCode::NOT_MODIFIED, "")
    }
    /// The JSON response for this error.
    pub fn into_response(self) -> Resp {
        if self.status == StatusCode::NOT_MODIFIED {
            return empty(StatusCode::NOT_MODIFIED);
        }
        json(self.status, &serde_json::json!({"message": self.message}))
    }
}

impl From<berth_core::DriverError> for ApiError {
    fn from(e: berth_core::DriverError) -> Self {
        use berth_core::DriverError as D;
        let status = match &e {
            D::NotFound(_) => StatusCode::NOT_FOUND,
            D::AlreadyExists(_) | D::Conflict(_) => StatusCode::CONFLICT,
            // Docker: a task whose command cannot be executed is the caller's mistake (400).
            D::InvalidInput(_) | D::Exec { .. } => StatusCode::BAD_REQUEST,
            D::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            D::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            D::Io(_) | D::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<crate::error::ServiceError> for ApiError {
    fn from(e: crate::error::ServiceError) -> Self {
        use crate::error::ServiceError as S;
        match e {
            S::NotFound(m) => ApiError::not_found(m),
            S::Conflict(m) => ApiError::conflict(m),
            S::InvalidInput(m) => ApiError::bad_request(m),
            S::NotModified => ApiError::not_modified(),
            S::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            S::Driver(d) => ApiError::from(d),
            S::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("internal task failed: {e}"))
    }
}

/// Result of a handler.
pub type ApiResult = Result<Resp, ApiError>;

fn boxed(b: Full<Bytes>) -> Body {
    b.map_err(|never| match never {}).boxed()
}

/// A JSON response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, v: &T) -> Resp {
    let body = serde_json::to_vec(v)
        .unwrap_or_else(|e| format!("{{\"message\":\"encoding: {e}\"}}").into_bytes());
    let mut r = Response::new(boxed(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A 200 JSON response.
pub fn ok_json<T: Serialize + ?Sized>(v: &T) -> ApiResult {
    Ok(json(StatusCode::OK, v))
}

/// An empty response.
pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(boxed(Full::new(Bytes::new())));
    *r.status_mut() = status;
    r
}

/// A plain-text / raw bytes response.
pub fn bytes(status: StatusCode, content_type: &'static str, data: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(boxed(Full::new(data.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

/// A streamed response fed by a channel of chunks (flushed as they come).
pub fn stream(content_type: &'static str) -> (tokio::sync::mpsc::Sender<Bytes>, Resp) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(s)));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    (tx, r)
}

/// Marks a [`stream_abortable`] as failed: its body then ends with an error, so the
/// connection is cut without the final chunk and the client sees a broken transfer, never a
/// short body that looks whole.
#[derive(Clone, Default)]
pub struct Abort(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Abort {
    /// Fails the stream (takes effect when its sender is dropped).
    pub fn fail(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Like [`stream`], for bodies whose producer can fail after the status line went out
/// (`save`): see [`Abort`].
pub fn stream_abortable(
    content_type: &'static str,
) -> (tokio::sync::mpsc::Sender<Bytes>, Abort, Resp) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let abort = Abort::default();
    let flag = abort.clone();
    let s = futures_util::stream::unfold(Some(rx), move |rx| {
        let flag = flag.clone();
        async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(b) => Some((Ok(Frame::data(b)), Some(rx))),
                None if flag.0.load(std::sync::atomic::Ordering::SeqCst) => Some((
                    Err(std::io::Error::other(
                        "the stream failed; see the daemon log",
                    )),
                    None,
                )),
                None => None,
            }
        }
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(s)));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    (tx, abort, r)
}

/// A JSON message stream (pull, push, load, build): sender of JSON values.
pub fn json_stream() -> (JsonSender, Resp) {
    let (tx, r) = stream("application/json");
    (JsonSender(tx), r)
}

/// Sends JSON messages on a stream, one per line.
#[derive(Clone)]
pub struct JsonSender(pub tokio::sync::mpsc::Sender<Bytes>);

impl JsonSender {
    /// Sends one message; false when the client went away.
    pub async fn send(&self, v: serde_json::Value) -> bool {
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.extend_from_slice(b"\r\n");
        self.0.send(Bytes::from(b)).await.is_ok()
    }
    /// Blocking variant for use inside `spawn_blocking`.
    pub fn send_blocking(&self, v: serde_json::Value) -> bool {
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.extend_from_slice(b"\r\n");
        self.0.blocking_send(Bytes::from(b)).is_ok()
    }
    /// Sends an in-band error (after the 200 has gone out).
    #[allow(dead_code)] // for the streaming areas (pull, push, load, build)
    pub async fn error(&self, message: &str) -> bool {
        self.send(serde_json::json!({"errorDetail": {"message": message}, "error": message}))
            .await
    }
}

/// Query parameters.
#[derive(Debug, Default, Clone)]
pub struct Query {
    map: HashMap<String, Vec<String>>,
}

impl Query {
    /// Parses a query string.
    pub fn parse(q: Option<&str>) -> Query {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(q) = q {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.into_owned()).or_default().push(v.into_owned());
            }
        }
        Query { map }
    }
    /// The first value of `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).and_then(|v| v.first()).map(String::as_str)
    }
    /// Every value of `k`.
    pub fn all(&self, k: &str) -> Vec<String> {
        self.map.get(k).cloned().unwrap_or_default()
    }
    /// moby's lenient boolean: "", "0", "no", "false", "none" are false; absent is `default`.
    pub fn bool(&self, k: &str, default: bool) -> bool {
        match self.get(k) {
            None => default,
            Some(v) => !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }
    /// An integer parameter.
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v:?}"))),
        }
    }
    /// `filters`, accepting `{"k":{"v":true}}` and `{"k":["v"]}`.
    pub fn filters(&self) -> Result<Filters, ApiError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(Filters::default());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let mut out = BTreeMap::new();
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filter: not an object"))?;
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => return Err(ApiError::bad_request(format!("invalid filter {k}"))),
            };
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }
}

/// Parsed filters: name → values.
#[derive(Debug, Default, Clone)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Values of filter `k`.
    pub fn get(&self, k: &str) -> &[String] {
        self.0.get(k).map(Vec::as_slice).unwrap_or(&[])
    }
    /// Refuses filters not in `allowed`, as moby does.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }
}

/// Reads a whole (small) request body.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    Ok(collected.to_bytes())
}

/// Reads and parses a JSON body; an empty body parses as `null`.
pub async fn read_json<T: serde::de::DeserializeOwned>(body: Incoming) -> Result<T, ApiError> {
    let b = read_body(body, 16 << 20).await?;
    let b: &[u8] = if b.iter().all(|c| c.is_ascii_whitespace()) {
        b"null"
    } else {
        &b
    };
    serde_json::from_slice(b).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// How much of a request body is still read (and discarded) after its handler stopped reading.
const DRAIN_LIMIT: usize = 16 << 20;

/// A blocking `Read` over a request body, for streaming uploads into `spawn_blocking` work
/// (use it only there: reading blocks the thread). At most a few chunks are buffered.
pub struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl BodyReader {
    /// Starts pumping `body` (on the async runtime) into the reader.
    pub fn new(mut body: Incoming) -> BodyReader {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(16);
        tokio::spawn(async move {
            let mut draining = false;
            let mut discarded = 0usize;
            while let Some(frame) = body.frame().await {
                let item = match frame {
                    Ok(f) => match f.into_data() {
                        Ok(d) => Ok(d),
                        Err(_) => continue,
                    },
                    Err(e) => Err(e.to_string()),
                };
                let stop = item.is_err();
                if draining {
                    // The handler gave up early (an error): read on, as Go's server does, so
                    // the client finishes sending and sees the answer instead of a broken
                    // pipe; a large remainder closes the connection.
                    discarded += item.map_or(0, |d| d.len());
                    if stop || discarded > DRAIN_LIMIT {
                        return;
                    }
                    continue;
                }
                match tx.send(item).await {
                    Ok(()) if stop => return,
                    Ok(()) => {}
                    Err(_) => draining = true,
                }
            }
        });
        BodyReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!("reading request body: {e}")))
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}
