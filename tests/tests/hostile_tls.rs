//! Hostile network clients against berthd's TCP API (issue #15): with `--tlsverify` only a
//! client holding a certificate of the configured CA gets in (the docker CLI and berth's CLI,
//! by flags and by `DOCKER_CERT_PATH`/`DOCKER_TLS_VERIFY`); clients without a certificate, with
//! one from another CA, or speaking plain HTTP get nothing; and berthd refuses to start on a
//! non-loopback TCP address without `--tlsverify` unless `--tls=false` is given.

use berth_tests::{free_port, TestDaemon};
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A CA with a server certificate for 127.0.0.1 and a client certificate, made with the
/// openssl CLI in `dir`: `ca.pem`, `server-cert.pem`, `server-key.pem`, and the client's
/// `cert.pem`/`key.pem` (so `dir` works as a `DOCKER_CERT_PATH`).
fn make_pki(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir pki");
    let script = r#"set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca-key.pem
openssl req -x509 -new -key ca-key.pem -out ca.pem -days 2 -subj /CN=berth-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
key server-key.pem
openssl req -new -key server-key.pem -out server.csr -subj /CN=127.0.0.1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
  -extfile server.ext -out server-cert.pem 2>/dev/null
key key.pem
openssl req -new -key key.pem -out client.csr -subj /CN=client
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
  -extfile client.ext -out cert.pem 2>/dev/null
"#;
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "making certificates failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path, f: &str) -> String {
    p.join(f).display().to_string()
}

/// A command for `bin` with no inherited docker/berth host or TLS settings.
fn client(bin: &Path, config: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("DOCKER_CONFIG", config)
        .env("HOME", config)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_TLS")
        .stdin(Stdio::null());
    c
}

/// `bin --tlsverify ... version` against `host`: trusting the `ca.pem` of `trust`, presenting
/// the `cert.pem` and `key.pem` of `ident`.
fn verified_version(bin: &Path, config: &Path, trust: &Path, ident: &Path, host: &str) -> Output {
    client(bin, config)
        .args(["--tlsverify", "--tlscacert", &s(trust, "ca.pem")])
        .args(["--tlscert", &s(ident, "cert.pem")])
        .args(["--tlskey", &s(ident, "key.pem")])
        .args(["-H", host, "version"])
        .output()
        .expect("client")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `version` reached the daemon (the Server part is there).
fn reached(o: &Output) -> bool {
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Server")
}

#[test]
fn tlsverify_admits_only_clients_of_the_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ca, other, empty) = (
        tmp.path().join("ca"),
        tmp.path().join("other"),
        tmp.path().join("empty"),
    );
    make_pki(&ca);
    make_pki(&other);
    std::fs::create_dir_all(&empty).expect("mkdir");
    let d = TestDaemon::builder()
        .storage_driver("vfs")
        .tcp()
        .config_json(json!({
            "tlsverify": true,
            "tlscacert": ca.join("ca.pem"),
            "tlscert": ca.join("server-cert.pem"),
            "tlskey": ca.join("server-key.pem"),
            "header-read-timeout": 5,
        }))
        .start();
    let host = d.tcp_host().expect("tcp host");
    let docker = PathBuf::from("/usr/local/bin/docker");
    let berth = TestDaemon::berth_bin();

    // The right client certificate, by flags.
    for bin in [&docker, &berth] {
        let o = verified_version(bin, &empty, &ca, &ca, &host);
        assert!(reached(&o), "{} with flags: {}", bin.display(), show(&o));
    }
    // ... and by DOCKER_CERT_PATH + DOCKER_TLS_VERIFY.
    for bin in [&docker, &berth] {
        let o = client(bin, &empty)
            .env("DOCKER_CERT_PATH", &ca)
            .env("DOCKER_TLS_VERIFY", "1")
            .args(["-H", &host, "version"])
            .output()
            .expect("client");
        assert!(reached(&o), "{} with env: {}", bin.display(), show(&o));
    }
    // A real request through the TLS transport of berth's CLI: import and run.
    let tar = d.busybox_tar();
    let o = client(&berth, &empty)
        .env("DOCKER_CERT_PATH", &ca)
        .env("DOCKER_TLS_VERIFY", "1")
        .args(["-H", &host, "import", &tar.display().to_string(), "busybox"])
        .output()
        .expect("berth import");
    assert!(o.status.success(), "berth import over TLS: {}", show(&o));
    let o = client(&berth, &empty)
        .env("DOCKER_CERT_PATH", &ca)
        .env("DOCKER_TLS_VERIFY", "1")
        .args(["-H", &host, "run", "--rm", "--network", "none", "busybox"])
        .args(["echo", "over-tls"])
        .output()
        .expect("berth run");
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("over-tls"),
        "berth run over TLS: {}",
        show(&o)
    );

    // A large download through the transport (the image as a tar).
    let saved = tmp.path().join("saved.tar");
    let o = client(&berth, &empty)
        .env("DOCKER_CERT_PATH", &ca)
        .env("DOCKER_TLS_VERIFY", "1")
        .args([
            "-H",
            &host,
            "save",
            "-o",
            &saved.display().to_string(),
            "busybox",
        ])
        .output()
        .expect("berth save");
    let size = std::fs::metadata(&saved).map(|m| m.len()).unwrap_or(0);
    let want = std::fs::metadata(&tar).map(|m| m.len()).unwrap_or(0) / 2;
    assert!(
        o.status.success() && size > want,
        "berth save over TLS ({size} bytes): {}",
        show(&o)
    );

    // stdin through the hijacked stream, half-closed (TLS close_notify) at its end.
    for bin in [&docker, &berth] {
        let mut child = client(bin, &empty)
            .env("DOCKER_CERT_PATH", &ca)
            .env("DOCKER_TLS_VERIFY", "1")
            .args([
                "-H",
                &host,
                "run",
                "--rm",
                "-i",
                "--network",
                "none",
                "busybox",
                "cat",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run -i");
        if let Some(mut w) = child.stdin.take() {
            w.write_all(b"through-stdin\n").expect("stdin");
        }
        let o = child.wait_with_output().expect("run -i");
        assert!(
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("through-stdin"),
            "{} run -i over TLS: {}",
            bin.display(),
            show(&o)
        );
    }

    // No client certificate (an empty cert dir): refused.
    for bin in [&docker, &berth] {
        let o = client(bin, &empty)
            .env("DOCKER_CERT_PATH", &empty)
            .args(["--tlsverify", "--tlscacert", &s(&ca, "ca.pem")])
            .args(["-H", &host, "version"])
            .output()
            .expect("client");
        assert!(
            !reached(&o),
            "{} without a cert got in: {}",
            bin.display(),
            show(&o)
        );
        eprintln!("{} without a certificate: {}", bin.display(), show(&o));
    }
    // A certificate from another CA: refused.
    for bin in [&docker, &berth] {
        let o = verified_version(bin, &empty, &ca, &other, &host);
        assert!(
            !reached(&o),
            "{} with a foreign cert got in: {}",
            bin.display(),
            show(&o)
        );
        eprintln!("{} with a foreign certificate: {}", bin.display(), show(&o));
    }
    // A daemon certificate the client does not trust: the client refuses it.
    let o = verified_version(&docker, &empty, &other, &ca, &host);
    assert!(!reached(&o), "untrusted daemon accepted: {}", show(&o));
    // Plain HTTP to the TLS port: no API answer.
    let port = host.rsplit(':').next().unwrap_or_default();
    let mut sock = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    sock.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let _ = sock.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains("HTTP/1.1 200") && !text.contains("OK"),
        "plain HTTP got an answer: {text:?}"
    );
    let o = client(&docker, &empty)
        .args(["-H", &host, "version"])
        .output()
        .expect("client");
    assert!(!reached(&o), "plain docker client got in: {}", show(&o));

    // A client that never starts its handshake is closed after the header-read timeout.
    let mut silent = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let t = Instant::now();
    let r = silent.read(&mut buf);
    assert!(
        matches!(r, Ok(0) | Err(_)) && t.elapsed() < Duration::from_secs(55),
        "a silent TLS client was kept: {r:?} after {:?}",
        t.elapsed()
    );

    // berthd is still fine.
    d.docker(&["version"]).ok();
    assert_eq!(d.request("GET", "/_ping", None).0, 200);
}

/// Kills a berthd started by hand when the test ends, however it ends.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) on the child this test spawned; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tcp_ping(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    got.starts_with("HTTP/1.1 200")
}

#[test]
fn unencrypted_public_tcp_needs_explicit_tls_false() {
    let port = free_port();
    let public = format!("tcp://0.0.0.0:{port}");
    let d = TestDaemon::builder()
        .storage_driver("vfs")
        .config_json(json!({ "hosts": [public] }))
        .prepare();
    let o = d.berthd_command().output().expect("berthd");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("'--tls=false'") && err.contains("without --tlsverify"),
        "{err}"
    );
    // Encrypted but unauthenticated (`--tls` alone) is refused as well.
    let o = d.berthd_command().arg("--tls").output().expect("berthd");
    assert_eq!(o.status.code(), Some(1), "--tls alone: {}", show(&o));
    // Nothing was bound and nothing written.
    assert!(!tcp_ping(port), "something answers on {public}");
    assert!(!d.data_root().exists(), "the data root was created");
    assert!(!d.exec_root().exists(), "the exec root was created");

    // `--tls=false` accepts the risk: berthd starts (with a warning) and serves.
    let log_path = d.dir().join("tls-false.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut cmd = d.berthd_command();
    cmd.arg("--tls=false")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log);
    let mut child = Kill(cmd.spawn().expect("berthd --tls=false"));
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !tcp_ping(port) {
        if let Ok(Some(st)) = child.0.try_wait() {
            panic!("berthd --tls=false exited with {st}: {}", log());
        }
        assert!(Instant::now() < deadline, "no answer: {}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        log().contains("without --tlsverify"),
        "no warning: {}",
        log()
    );
    drop(child);
}
