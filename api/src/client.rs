//! A blocking Docker Engine API client over unix or TCP sockets (TCP optionally with TLS,
//! see [`crate::tls`]).

use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not reach the daemon.
    #[error("Cannot connect to the berth daemon at {host}. Is the daemon running?")]
    Connect {
        /// The host string.
        host: String,
    },
    /// The daemon answered with an error.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// Transport problems.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Bad host string.
    #[error("invalid host {0:?}")]
    Host(String),
    /// TLS set-up or handshake failed.
    #[error("{0}")]
    Tls(String),
}

/// A connection (unix or TCP).
pub enum Conn {
    /// unix socket.
    Unix(UnixStream),
    /// TCP.
    Tcp(TcpStream),
    /// TLS over TCP: the local end of a socket pair that [`crate::tls`] pumps, and where the
    /// pump records why the connection failed.
    Tls(UnixStream, crate::tls::TlsFailure),
}

impl Read for Conn {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) | Conn::Tls(s, _) => s.read(b),
            Conn::Tcp(s) => s.read(b),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) | Conn::Tls(s, _) => s.write(b),
            Conn::Tcp(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Conn {
    /// Half-closes the write side.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) | Conn::Tls(s, _) => s.shutdown(std::net::Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }
    /// Closes both directions (ends a blocked read on another handle).
    pub fn shutdown(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) | Conn::Tls(s, _) => s.shutdown(std::net::Shutdown::Both),
            Conn::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        }
    }
    /// A second handle to the same socket.
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Tls(s, f) => Conn::Tls(s.try_clone()?, f.clone()),
        })
    }
}

/// A response whose body is read on demand.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    body: Box<dyn Read>,
    /// The raw connection, for hijacked responses (101).
    pub conn: Option<Conn>,
}

impl Response {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body as a reader.
    pub fn reader(&mut self) -> &mut dyn Read {
        &mut self.body
    }
    /// The whole body.
    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.body.read_to_end(&mut v)?;
        Ok(v)
    }
    /// The body as JSON.
    pub fn json(self) -> Result<Value, ClientError> {
        let b = self.bytes()?;
        if b.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&b)
            .map_err(|e| ClientError::Io(io::Error::other(format!("bad JSON from daemon: {e}"))))
    }
    /// Calls `f` for each JSON message of a stream.
    pub fn messages(
        mut self,
        mut f: impl FnMut(Value) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        let r = BufReader::new(&mut self.body);
        let stream = serde_json::Deserializer::from_reader(r).into_iter::<Value>();
        for v in stream {
            let v = v.map_err(|e| {
                ClientError::Io(io::Error::other(format!("bad message from daemon: {e}")))
            })?;
            f(v)?;
        }
        Ok(())
    }
}

struct Chunked<R> {
    r: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.r.read_line(&mut line)?;
            if line.trim().is_empty() {
                line.clear();
                self.r.read_line(&mut line)?;
            }
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let n = buf.len().min(self.left);
        let got = self.r.read(&mut buf[..n])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-chunk",
            ));
        }
        self.left -= got;
        Ok(got)
    }
}

/// The API client.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    version: Option<String>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// The default daemon address.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Client {
    /// A client for `host` (`unix:///path`, `tcp://h:p`, `http://h:p`).
    pub fn new(host: &str) -> Client {
        Client {
            host: host.to_string(),
            version: None,
            tls: None,
        }
    }

    /// The same client speaking TLS to TCP hosts (`tcp://`, `https://`).
    pub fn with_tls(mut self, opts: &crate::TlsOptions) -> Result<Client, ClientError> {
        self.tls = Some(opts.client_config()?);
        Ok(self)
    }

    /// The host from `-H`, `BERTH_HOST`, `DOCKER_HOST`, or the default.
    pub fn from_env(flag: Option<&str>) -> Client {
        let h = flag
            .map(str::to_string)
            .or_else(|| std::env::var("BERTH_HOST").ok().filter(|s| !s.is_empty()))
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.into());
        Client::new(&h)
    }

    /// The host string.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn connect(&self) -> Result<Conn, ClientError> {
        let err = || ClientError::Connect {
            host: self.host.clone(),
        };
        if let Some(p) = self.host.strip_prefix("unix://") {
            return UnixStream::connect(p).map(Conn::Unix).map_err(|_| err());
        }
        let a = self
            .host
            .strip_prefix("tcp://")
            .or_else(|| self.host.strip_prefix("http://"))
            .or_else(|| self.host.strip_prefix("https://"))
            .ok_or_else(|| ClientError::Host(self.host.clone()))?
            .trim_end_matches('/');
        // No port: docker's defaults, 2376 with TLS and 2375 without.
        let has_port = match a.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => a.contains(':'),
        };
        let with_port;
        let a = if has_port {
            a
        } else {
            with_port = format!("{a}:{}", if self.tls.is_some() { 2376 } else { 2375 });
            with_port.as_str()
        };
        let s = TcpStream::connect(a).map_err(|_| err())?;
        let _ = s.set_nodelay(true);
        match &self.tls {
            Some(config) => {
                let name = a.rsplit_once(':').map_or(a, |(h, _)| h);
                crate::tls::connect(config.clone(), name, s).map(|(s, f)| Conn::Tls(s, f))
            }
            None => Ok(Conn::Tcp(s)),
        }
    }

    /// Negotiates the API version (HEAD /_ping), once.
    pub fn negotiate(&mut self) -> Result<(), ClientError> {
        if self.version.is_some() {
            return Ok(());
        }
        let r = self.raw("HEAD", "/_ping", &[], None, false)?;
        let v = r.header("api-version").unwrap_or("1.24").to_string();
        let (maj, min) = v
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .unwrap_or((1, 24));
        let ours = (1, 47);
        let use_v = if (maj, min) < ours {
            format!("{maj}.{min}")
        } else {
            "1.47".into()
        };
        self.version = Some(use_v);
        Ok(())
    }

    /// The negotiated version.
    pub fn version(&self) -> &str {
        self.version.as_deref().unwrap_or("1.47")
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&mut dyn Read>,
        upgrade: bool,
    ) -> Result<Response, ClientError> {
        let mut conn = self.connect()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-cli/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if upgrade {
            head.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
        }
        match &body {
            Some(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
            None if method == "POST" || method == "PUT" => head.push_str("Content-Length: 0\r\n"),
            None => {}
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes())?;
        if let Some(b) = body {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = b.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                conn.write_all(format!("{n:x}\r\n").as_bytes())?;
                conn.write_all(&buf[..n])?;
                conn.write_all(b"\r\n")?;
            }
            conn.write_all(b"0\r\n\r\n")?;
        }
        let read_conn = conn.try_clone()?;
        let mut r = BufReader::new(read_conn);
        let mut status_line = String::new();
        r.read_line(&mut status_line)?;
        if let (true, Conn::Tls(_, f)) = (status_line.is_empty(), &conn) {
            // The daemon refused us after the handshake (TLS 1.3 checks the client's
            // certificate then): say why rather than "bad response".
            if let Some(e) = crate::tls::failure(f) {
                return Err(ClientError::Tls(format!("error during connect: {e}")));
            }
        }
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad response {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l)?;
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if status == 101 {
            return Ok(Response {
                status,
                headers,
                body: Box::new(r),
                conn: Some(conn),
            });
        }
        let body: Box<dyn Read> = if method == "HEAD" || status == 204 || status == 304 {
            Box::new(io::empty())
        } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            Box::new(Chunked {
                r,
                left: 0,
                done: false,
            })
        } else if let Some(len) = get("content-length").and_then(|l| l.parse::<u64>().ok()) {
            Box::new(r.take(len))
        } else {
            Box::new(r)
        };
        Ok(Response {
            status,
            headers,
            body,
            conn: Some(conn),
        })
    }

    /// Sends a request to the versioned `path` (with query string); errors become
    /// `ClientError::Daemon`.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&mut dyn Read>,
    ) -> Result<Response, ClientError> {
        self.negotiate()?;
        let full = format!("/v{}{path}", self.version());
        let r = self.raw(method, &full, headers, body, false)?;
        check(r)
    }

    /// A JSON request (body serialised) returning the response.
    pub fn json(
        &mut self,
        method: &str,
        path: &str,
        body: &Value,
    ) -> Result<Response, ClientError> {
        let b = serde_json::to_vec(body).map_err(|e| io::Error::other(e.to_string()))?;
        self.request(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(&mut b.as_slice()),
        )
    }

    /// GET returning JSON.
    pub fn get(&mut self, path: &str) -> Result<Value, ClientError> {
        self.request("GET", path, &[], None)?.json()
    }

    /// A hijacked request (attach, exec start): returns the raw connection after 101.
    pub fn hijack(&mut self, path: &str, body: Option<&Value>) -> Result<Response, ClientError> {
        self.negotiate()?;
        let full = format!("/v{}{path}", self.version());
        let b = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let mut slice = b.as_deref();
        let r = self.raw(
            "POST",
            &full,
            &[("Content-Type", "application/json")],
            slice.as_mut().map(|s| s as &mut dyn Read),
            true,
        )?;
        check(r)
    }
}

fn check(r: Response) -> Result<Response, ClientError> {
    if r.status < 400 {
        return Ok(r);
    }
    let status = r.status;
    let b = r.bytes().unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&b)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&b).trim().to_string());
    Err(ClientError::Daemon { status, message })
}
