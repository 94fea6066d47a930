//! `ADD <url>`: the download, bounded in size and time, written into the staging tree
//! through a [`Root`] so neither the URL's file name nor the destination can leave it.
//!
//! Docker sets no limit; berth refuses a body larger than [`MAX_DOWNLOAD`] (announced by
//! `Content-Length` or counted while reading) and a download that takes longer than
//! [`DOWNLOAD_TIMEOUT`] in all, so a hostile server can neither fill the disk nor hold a
//! build (and its staging folder) open forever.

use super::copy::CopyError;
use berth_confine::Root;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Largest `ADD <url>` body accepted: 8 GiB.
pub const MAX_DOWNLOAD: u64 = 8 << 30;
/// Longest an `ADD <url>` download may take, connection included.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest wait for the connection and for each read.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

fn fail(url: &str, why: impl std::fmt::Display) -> CopyError {
    CopyError::Io(format!("failed to fetch {url}: {why}"))
}

/// The file name an `ADD <url>` gets in a destination folder: the URL path's last
/// component when it is a plain name, else `download`.
pub fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    if berth_confine::is_plain_name(std::ffi::OsStr::new(last)) && !last.contains(':') {
        last.to_string()
    } else {
        "download".to_string()
    }
}

/// Fetches `url` into `rel` inside `staging` (parents made there) with `mode`.
pub fn download(url: &str, staging: &Root, rel: &Path, mode: u32) -> Result<(), CopyError> {
    download_limited(url, staging, rel, mode, MAX_DOWNLOAD, DOWNLOAD_TIMEOUT)
}

fn download_limited(
    url: &str,
    staging: &Root,
    rel: &Path,
    mode: u32,
    max: u64,
    total: Duration,
) -> Result<(), CopyError> {
    let start = Instant::now();
    let resp = reqwest::blocking::Client::builder()
        .connect_timeout(IO_TIMEOUT)
        .timeout(total)
        .build()
        .and_then(|c| c.get(url).send())
        .map_err(|e| fail(url, e))?;
    if !resp.status().is_success() {
        return Err(fail(url, resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(fail(url, format!("larger than {max} bytes")));
    }
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        staging.mkdir_all(parent, 0o755)?;
    }
    let mut out = staging.create(rel, 0o600)?;
    let mut body = resp;
    let mut buf = vec![0u8; 1 << 16];
    let mut got: u64 = 0;
    loop {
        if start.elapsed() > total {
            return Err(fail(url, format!("took longer than {}s", total.as_secs())));
        }
        let n = body.read(&mut buf).map_err(|e| fail(url, e))?;
        if n == 0 {
            break;
        }
        got += n as u64;
        if got > max {
            return Err(fail(url, format!("larger than {max} bytes")));
        }
        out.write_all(&buf[..n]).map_err(|e| fail(url, e))?;
    }
    drop(out);
    staging.chmod(rel, mode)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpListener, TcpStream};

    #[test]
    fn names_are_plain() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("http://h/a/.."), "download");
        assert_eq!(file_name("http://h/"), "download");
    }

    /// A server that announces nothing and sends more than the cap: refused, nothing left
    /// larger than the cap.
    /// A loopback server that takes one connection, reads its request and answers with
    /// `answer`; its address.
    fn serve_once(answer: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req);
                answer(s);
            }
        });
        addr
    }

    #[test]
    fn a_body_over_the_cap_is_refused() {
        let addr = serve_once(|mut s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = [b'x'; 4096];
            for _ in 0..64 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let t = tempfile::tempdir().expect("tmp");
        let root = Root::open(t.path()).expect("root");
        let url = format!("http://{addr}/big");
        let r = download_limited(
            &url,
            &root,
            Path::new("o/big"),
            0o644,
            10_000,
            Duration::from_secs(30),
        );
        assert!(
            matches!(&r, Err(CopyError::Io(m)) if m.contains("larger than")),
            "{r:?}"
        );
    }

    /// A server that never finishes: the download gives up after its time.
    #[test]
    fn a_stalled_body_times_out() {
        let addr = serve_once(|mut s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab");
            std::thread::sleep(Duration::from_secs(20));
        });
        let t = tempfile::tempdir().expect("tmp");
        let root = Root::open(t.path()).expect("root");
        let start = Instant::now();
        let r = download_limited(
            &format!("http://{addr}/slow"),
            &root,
            Path::new("slow"),
            0o644,
            1000,
            Duration::from_secs(2),
        );
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(15));
    }
}
