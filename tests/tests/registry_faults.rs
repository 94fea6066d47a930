//! Registry edge cases (issue 5) against a small fake registry served by the test on
//! 127.0.0.1: a manifest list with amd64 and arm64 entries (platform selection), and faulty
//! answers — a blob with the wrong digest, a truncated blob, an unknown manifest media type, a
//! 500 on a blob — each a clear error with nothing half-pulled visible, then a good pull.

use berth_tests::TestDaemon;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

struct Content {
    blobs: HashMap<String, Vec<u8>>,
    manifest: Vec<u8>,
    arm_manifest: Vec<u8>,
    index: Vec<u8>,
}

/// The busybox image as blobs: berthd's own `save` gives us config and layer tars.
fn content(d: &TestDaemon) -> Content {
    let tar_path = d.dir().join("bb.tar");
    d.docker(&[
        "save",
        "-o",
        &tar_path.display().to_string(),
        "busybox:latest",
    ])
    .ok();
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(&tar_path).expect("open"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        let mut v = Vec::new();
        e.read_to_end(&mut v).expect("read");
        files.insert(name, v);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    let cfg = files[manifest[0]["Config"].as_str().expect("config")].clone();
    let layers: Vec<Vec<u8>> = manifest[0]["Layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| files[l.as_str().expect("l")].clone())
        .collect();
    let mut blobs = HashMap::new();
    let mut cfg_arm: serde_json::Value = serde_json::from_slice(&cfg).expect("cfg");
    cfg_arm["architecture"] = serde_json::json!("arm64");
    let cfg_arm = serde_json::to_vec(&cfg_arm).expect("json");
    let layer_descs: Vec<serde_json::Value> = layers.iter().map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(l), "size": l.len()})).collect();
    let mk = |c: &[u8]| {
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(c), "size": c.len()}, "layers": layer_descs})).expect("json")
    };
    let m = mk(&cfg);
    let arm = mk(&cfg_arm);
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&m), "size": m.len(), "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&arm), "size": arm.len(), "platform": {"architecture": "arm64", "os": "linux"}},
    ]})).expect("json");
    for b in [cfg, cfg_arm, m.clone(), arm.clone()]
        .into_iter()
        .chain(layers)
    {
        blobs.insert(sha(&b), b);
    }
    Content {
        blobs,
        manifest: m,
        arm_manifest: arm,
        index,
    }
}

fn respond(s: &mut TcpStream, status: &str, ctype: &str, body: &[u8], claimed_len: Option<usize>) {
    let len = claimed_len.unwrap_or(body.len());
    let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\nDocker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(body);
}

fn serve(c: Arc<Content>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let c = c.clone();
            std::thread::spawn(move || handle(conn, &c));
        }
    });
    addr
}

fn handle(mut s: TcpStream, c: &Content) {
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut line = String::new();
    if r.read_line(&mut line).is_err() || !line.starts_with(['G', 'H']) {
        return; // a TLS hello or garbage: hang up, the client falls back to plain HTTP
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let head = line.starts_with("HEAD");
    if path == "/v2/" {
        return respond(&mut s, "200 OK", "application/json", b"{}", None);
    }
    let parts: Vec<&str> = path.trim_start_matches("/v2/").split('/').collect();
    let (scenario, kind, reference) = (
        parts[0],
        parts.get(2).copied().unwrap_or(""),
        parts.get(3).copied().unwrap_or(""),
    );
    let oci = "application/vnd.oci.image.manifest.v1+json";
    if kind == "manifests" {
        let (ct, body) = match (scenario, reference) {
            ("multi", r) if !r.starts_with("sha256:") => {
                ("application/vnd.oci.image.index.v1+json", c.index.clone())
            }
            ("badtype", _) => (
                "application/vnd.example.unknown+json",
                br#"{"schemaVersion":2,"mediaType":"application/vnd.example.unknown+json"}"#
                    .to_vec(),
            ),
            (_, r) if r.starts_with("sha256:") => (
                oci,
                if sha(&c.arm_manifest) == r {
                    c.arm_manifest.clone()
                } else {
                    c.manifest.clone()
                },
            ),
            _ => (oci, c.manifest.clone()),
        };
        return respond(
            &mut s,
            "200 OK",
            ct,
            if head { b"" } else { &body },
            head.then_some(body.len()),
        );
    }
    let Some(blob) = c.blobs.get(reference) else {
        return respond(
            &mut s,
            "404 Not Found",
            "application/json",
            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
            None,
        );
    };
    let is_layer = blob.len() > 4096;
    match scenario {
        "wrongdigest" if is_layer => {
            let mut bad = blob.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0xff;
            respond(&mut s, "200 OK", "application/octet-stream", &bad, None)
        }
        "truncated" if is_layer => respond(
            &mut s,
            "200 OK",
            "application/octet-stream",
            &blob[..blob.len() / 2],
            Some(blob.len()),
        ),
        "err500" if is_layer => respond(
            &mut s,
            "500 Internal Server Error",
            "application/json",
            br#"{"errors":[{"code":"UNKNOWN","message":"storage backend exploded"}]}"#,
            None,
        ),
        _ => respond(&mut s, "200 OK", "application/octet-stream", blob, None),
    }
}

#[test]
fn manifest_lists_pick_the_platform_and_faults_are_clear_errors() {
    let src = TestDaemon::start();
    src.import_busybox();
    let content = Arc::new(content(&src));
    let addr = serve(content.clone());
    let d = TestDaemon::start();
    for (scenario, want) in [
        ("wrongdigest", "digest"),
        ("truncated", ""),
        ("badtype", "unsupported"),
        ("err500", "500"),
    ] {
        let out = d.docker(&["pull", &format!("{addr}/{scenario}/img:1")]);
        assert_ne!(out.status, 0, "{scenario} must fail: {out:?}");
        assert!(
            out.stderr.to_lowercase().contains(want),
            "{scenario}: want {want:?} in {}",
            out.stderr
        );
        assert!(
            d.docker(&["images", "-q"]).ok().trim().is_empty(),
            "{scenario}: nothing half-pulled is visible"
        );
    }
    // A retry against a good registry succeeds.
    d.docker(&["pull", &format!("{addr}/good/img:1")]).ok();
    assert_eq!(
        d.docker(&["run", "--rm", &format!("{addr}/good/img:1"), "echo", "ok"])
            .ok(),
        "ok\n"
    );
    // Manifest list: the host's platform by default, arm64 on request.
    d.docker(&["pull", &format!("{addr}/multi/img:1")]).ok();
    let arch = d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}",
        &format!("{addr}/multi/img:1"),
    ]);
    assert_eq!(arch.ok().trim(), "amd64");
    d.docker(&[
        "pull",
        "--platform",
        "linux/arm64",
        &format!("{addr}/multi/img:2"),
    ])
    .ok();
    let arch = d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}",
        &format!("{addr}/multi/img:2"),
    ]);
    assert_eq!(arch.ok().trim(), "arm64");
}
