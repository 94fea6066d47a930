//! The docker CLI's own share of `docker run --rm busybox true`: a stub Engine API on a unix
//! socket that answers the five requests `run` makes (`_ping`, `create`, `attach`, `wait`,
//! `start`) at once, as if the container started and exited in no time. What the CLI takes
//! against it is the floor under any daemon's `run` row on this machine.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

/// The stub: its socket; it stops serving when dropped (the socket file is removed).
pub struct Stub {
    socket: PathBuf,
}

impl Stub {
    /// Serves the stub on `socket` from a background thread.
    pub fn start(socket: &Path) -> Result<Stub> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).context("binding the CLI-floor stub")?;
        let waiting: Arc<Mutex<Vec<Sender<()>>>> = Arc::default();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let waiting = waiting.clone();
                std::thread::spawn(move || serve(conn, &waiting));
            }
        });
        Ok(Stub {
            socket: socket.to_path_buf(),
        })
    }

    /// `unix://...` for the CLI's `-H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

const HEAD: &str = "Api-Version: 1.47\r\nOstype: linux\r\nServer: stub\r\n";

/// One connection: requests until the client hangs up (or the connection is hijacked).
fn serve(conn: UnixStream, waiting: &Mutex<Vec<Sender<()>>>) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if !matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if !matches!(r.read_line(&mut h), Ok(n) if n > 0) {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("");
        let ok = if path.contains("/_ping") {
            // The CLI pings with HEAD first: no body then, or it would prefix the next answer.
            let body = if line.starts_with("HEAD") { "" } else { "OK" };
            out.write_all(
                format!("HTTP/1.1 200 OK\r\n{HEAD}Content-Length: 2\r\n\r\n{body}").as_bytes(),
            )
        } else if path.contains("/containers/create") {
            let b = format!("{{\"Id\":\"{}\",\"Warnings\":[]}}", "a".repeat(64));
            out.write_all(
                format!(
                    "HTTP/1.1 201 Created\r\n{HEAD}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                    b.len()
                )
                .as_bytes(),
            )
        } else if path.contains("/attach") {
            // Hijacked: the stream ends (no output) once the container "exited" at start.
            let (tx, rx) = channel();
            if let Ok(mut w) = waiting.lock() {
                w.push(tx);
            }
            let _ = out.write_all(
                b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            );
            let _ = rx.recv();
            let _ = out.shutdown(std::net::Shutdown::Both);
            return;
        } else if path.contains("/wait") {
            let (tx, rx) = channel();
            if let Ok(mut w) = waiting.lock() {
                w.push(tx);
            }
            let _ = out.write_all(
                format!("HTTP/1.1 200 OK\r\n{HEAD}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
            );
            let _ = rx.recv();
            let b = "{\"StatusCode\":0,\"Error\":null}\n";
            out.write_all(format!("{:x}\r\n{b}\r\n0\r\n\r\n", b.len()).as_bytes())
        } else if path.contains("/start") {
            let r = out.write_all(format!("HTTP/1.1 204 No Content\r\n{HEAD}\r\n").as_bytes());
            if let Ok(mut w) = waiting.lock() {
                for tx in w.drain(..) {
                    let _ = tx.send(());
                }
            }
            r
        } else {
            out.write_all(
                format!("HTTP/1.1 404 Not Found\r\n{HEAD}Content-Length: 0\r\n\r\n").as_bytes(),
            )
        };
        if ok.is_err() {
            return;
        }
    }
}
