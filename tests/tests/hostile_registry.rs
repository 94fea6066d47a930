//! A hostile registry (issue #15): a tiny HTTP server on 127.0.0.1 played by the test answers
//! `/v2/` and then misbehaves on the manifest or config — an endless manifest, a 100 MB one,
//! a connection that stalls after its headers, a 100 MB error page, an endless image config,
//! an endless layer blob.
//! Each `docker pull` fails with a clear error within a bounded time, berthd's memory stays
//! small, nothing is stored, and berthd still answers.

use berth_tests::TestDaemon;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
/// A config digest that no bytes hash to (the config never ends anyway).
const FAKE_CONFIG: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

/// The config of the `endlesslayer` image: one layer.
fn layer_config() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [FAKE_CONFIG]}}))
    .expect("json")
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn serve() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || handle(conn));
        }
    });
    addr
}

fn head(s: &mut TcpStream, status: &str, ctype: &str, len: Option<u64>) -> std::io::Result<()> {
    let len = len
        .map(|n| format!("Content-Length: {n}\r\n"))
        .unwrap_or_default();
    write!(s, "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n{len}Docker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n")
}

/// Writes `total` bytes of `fill` (or without end) until the client hangs up.
fn flood(s: &mut TcpStream, fill: u8, total: Option<u64>) {
    let chunk = vec![fill; 64 << 10];
    let mut sent = 0u64;
    while total.is_none_or(|t| sent < t) {
        if s.write_all(&chunk).is_err() {
            return;
        }
        sent += chunk.len() as u64;
    }
}

fn handle(mut s: TcpStream) {
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    // A TLS hello (0x16): hang up at once, the client falls back to plain HTTP.
    if r.fill_buf().map_or(true, |b| b.first() == Some(&0x16)) {
        return;
    }
    let mut line = String::new();
    if r.read_line(&mut line).is_err() || !line.starts_with(['G', 'H']) {
        return; // a TLS hello: hang up, the client falls back to plain HTTP
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    if path == "/v2/" {
        let _ = head(&mut s, "200 OK", "application/json", Some(2));
        let _ = s.write_all(b"{}");
        return;
    }
    let parts: Vec<&str> = path.trim_start_matches("/v2/").split('/').collect();
    let (scenario, kind) = (parts[0], parts.get(2).copied().unwrap_or(""));
    match (scenario, kind) {
        ("endless", "manifests") => {
            if head(&mut s, "200 OK", OCI, None).is_ok() {
                flood(&mut s, b' ', None);
            }
        }
        ("huge", "manifests") => {
            if head(&mut s, "200 OK", OCI, Some(100 << 20)).is_ok() {
                flood(&mut s, b' ', Some(100 << 20));
            }
        }
        ("stall", "manifests") => {
            if head(&mut s, "200 OK", OCI, Some(1000)).is_ok() && s.write_all(b"{\"schema").is_ok()
            {
                // Nothing more, ever (until the test process ends).
                std::thread::sleep(Duration::from_secs(600));
            }
        }
        ("errpage", "manifests") => {
            if head(
                &mut s,
                "401 Unauthorized",
                "application/json",
                Some(100 << 20),
            )
            .is_ok()
            {
                let _ = s.write_all(br#"{"errors":[{"message":""#);
                flood(&mut s, b'e', Some(100 << 20));
            }
        }
        ("bigconfig", "manifests") => {
            let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": FAKE_CONFIG, "size": 100},
                "layers": []});
            let body = serde_json::to_vec(&m).expect("json");
            if head(&mut s, "200 OK", OCI, Some(body.len() as u64)).is_ok() {
                let _ = s.write_all(&body);
            }
        }
        ("endlesslayer", "manifests") => {
            let cfg = layer_config();
            let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&cfg), "size": cfg.len()},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": FAKE_CONFIG, "size": 1 << 20}]});
            let body = serde_json::to_vec(&m).expect("json");
            if head(&mut s, "200 OK", OCI, Some(body.len() as u64)).is_ok() {
                let _ = s.write_all(&body);
            }
        }
        ("endlesslayer", "blobs") if path.ends_with(&sha(&layer_config())) => {
            let cfg = layer_config();
            if head(
                &mut s,
                "200 OK",
                "application/octet-stream",
                Some(cfg.len() as u64),
            )
            .is_ok()
            {
                let _ = s.write_all(&cfg);
            }
        }
        ("endlesslayer", "blobs") => {
            if head(&mut s, "200 OK", "application/octet-stream", None).is_ok() {
                flood(&mut s, 0, None);
            }
        }
        ("bigconfig", "blobs") => {
            if head(&mut s, "200 OK", "application/octet-stream", None).is_ok() {
                flood(&mut s, b'{', None);
            }
        }
        _ => {
            let _ = head(&mut s, "404 Not Found", "application/json", Some(2));
            let _ = s.write_all(b"{}");
        }
    }
}

/// berthd's resident memory, KiB.
fn rss_kib(d: &TestDaemon) -> u64 {
    let pid = d.pid().expect("berthd pid");
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn hostile_registry_answers_fail_pulls_with_bounded_time_and_memory() {
    let addr = serve();
    let d = TestDaemon::start();
    let before = rss_kib(&d);
    for (scenario, want, patience) in [
        ("endless", "larger than the limit of 4 MiB", 30),
        ("huge", "larger than the limit of 4 MiB", 30),
        ("errpage", "pull access denied", 30),
        (
            "bigconfig",
            "image config is larger than the limit of 8 MiB",
            30,
        ),
        (
            "endlesslayer",
            "is larger than the 1048576 bytes its manifest gives",
            30,
        ),
        ("stall", "the registry sent nothing for 30 s", 75),
    ] {
        let t = Instant::now();
        let out = d.docker(&["pull", &format!("{addr}/{scenario}/img:1")]);
        let took = t.elapsed();
        assert_ne!(out.status, 0, "{scenario} must fail: {out:?}");
        assert!(
            out.stderr.contains(want) || out.stdout.contains(want),
            "{scenario}: wanted {want:?} in {out:?}"
        );
        assert!(
            took < Duration::from_secs(patience),
            "{scenario} took {took:?}"
        );
        let rss = rss_kib(&d);
        eprintln!("{scenario}: failed in {took:?}, berthd RSS {before} -> {rss} KiB");
        assert!(
            rss < 100 * 1024,
            "{scenario}: berthd grew from {before} KiB to {rss} KiB"
        );
        d.docker(&["version"]).ok();
    }
    let images = d.docker(&["images", "-q"]);
    assert_eq!(images.ok().trim(), "", "nothing half-pulled is visible");
    let (status, _, _) = d.request("GET", "/_ping", None);
    assert_eq!(status, 200);
}
