//! Bearer-token auth (issue 5): `docker-registry` with `auth: token` whose realm is a small
//! token server this test runs on 127.0.0.1. The server issues real JWTs (RS256, signed with
//! `openssl dgst` by a key whose self-signed certificate is the registry's `rootcertbundle`
//! and rides in the token's `x5c` header); `alice:secret` gets what she asks for, anonymous
//! callers get tokens granting nothing, a wrong password is a 401 with Docker Hub's body.
//! Checks: login, push and pull with the right credentials; a wrong password and an anonymous
//! pull fail with the real engine's error texts (compared live when dockerd is installed);
//! tokens are cached per scope (the server counts its requests).

use base64::Engine as _;
use berth_tests::{
    have, scratch_dir, self_signed, DistRegistry, RealEngine, RegistryAuth, TestDaemon,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const SERVICE: &str = "berth-test-registry";
const ISSUER: &str = "berth-test-issuer";

/// The token server's key, certificate (DER, for `x5c`) and request counts per scope.
struct TokenServer {
    key: PathBuf,
    cert_der_b64: String,
    /// Token requests by `scope` ("" for none), with the user ("" for anonymous).
    requests: Mutex<HashMap<String, usize>>,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let v = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?');
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenServer {
    /// A signed JWT granting `access` to `sub`.
    fn token(&self, sub: &str, access: &[serde_json::Value]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.cert_der_b64]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": sub, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", rand_jti()), "access": access,
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-binary", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("sign input");
        let sig = child.wait_with_output().expect("openssl sign");
        assert!(sig.status.success(), "openssl dgst -sign failed");
        format!("{input}.{}", b64url(&sig.stdout))
    }

    fn handle(&self, mut s: TcpStream) {
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut line = String::new();
        if r.read_line(&mut line).is_err() {
            return;
        }
        let mut authz = String::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") {
                    authz = v.trim().to_string();
                }
            }
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/");
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let scopes: Vec<String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == "scope")
            .map(|(_, v)| percent_decode(v))
            .collect();
        let user = authz
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if let Ok(mut m) = self.requests.lock() {
            let who = user
                .as_deref()
                .and_then(|u| u.split(':').next())
                .unwrap_or("");
            *m.entry(format!("{who}|{}", scopes.join(" "))).or_default() += 1;
        }
        let reply = |s: &mut TcpStream, status: &str, body: &str| {
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        };
        let (sub, access) = match user.as_deref() {
            Some("alice:secret") => (
                "alice",
                scopes
                    .iter()
                    .filter_map(|sc| {
                        let mut p = sc.splitn(3, ':');
                        let (t, n, a) = (p.next()?, p.next()?, p.next()?);
                        Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
                    })
                    .collect::<Vec<_>>(),
            ),
            Some(_) => {
                return reply(
                    &mut s,
                    "401 Unauthorized",
                    r#"{"details":"incorrect username or password"}"#,
                )
            }
            None => ("", Vec::new()),
        };
        let token = self.token(sub, &access);
        reply(
            &mut s,
            "200 OK",
            &serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                .to_string(),
        );
    }

    /// Token requests so far for `user` and `scope`.
    fn count(&self, user: &str, scope: &str) -> usize {
        self.requests
            .lock()
            .map(|m| m.get(&format!("{user}|{scope}")).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

fn rand_jti() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

/// Starts the token server; returns it and its realm URL.
fn start_token_server(dir: &std::path::Path) -> (Arc<TokenServer>, String, PathBuf) {
    let (key, cert) = self_signed(dir, "token");
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl x509");
    assert!(der.status.success());
    let server = Arc::new(TokenServer {
        key,
        cert_der_b64: base64::engine::general_purpose::STANDARD.encode(&der.stdout),
        requests: Mutex::new(HashMap::new()),
    });
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let realm = format!("http://{}/token", l.local_addr().expect("addr"));
    let s = server.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || s.handle(conn));
        }
    });
    (server, realm, cert)
}

/// The error line of a failed docker command, without the "Error response from daemon: "
/// prefix and the CLI's own decoration.
fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("WARNING"))
        .unwrap_or("")
        .trim()
        .to_string()
}

#[test]
fn token_auth_login_push_pull_and_caching() {
    if !have("openssl") {
        eprintln!("skipped: openssl is missing");
        return;
    }
    let dir = Scratch(scratch_dir("token"));
    let (tokens, realm, cert) = start_token_server(&dir.0);
    let Some(reg) = DistRegistry::start(RegistryAuth::Token {
        realm,
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        root_cert: cert,
    }) else {
        return;
    };
    let d = TestDaemon::start();
    d.import_busybox();
    let target = format!("{}/private/bb:1", reg.addr);
    d.docker(&["tag", "busybox:latest", &target]).ok();

    // Anonymous: tokens granting nothing, so push and pull are refused.
    let anon_push = d.docker(&["push", &target]);
    assert_ne!(anon_push.status, 0, "{anon_push:?}");
    let bad = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"wrong\n",
    );
    assert_ne!(bad.status, 0);
    assert!(
        bad.stderr
            .contains("unauthorized: incorrect username or password"),
        "{}",
        bad.stderr
    );
    let good = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"secret\n",
    );
    assert!(good.ok().contains("Login Succeeded"));
    let pushed = d.docker(&["push", &target]).ok().to_string();
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    let push_scope = "repository:private/bb:pull,push";
    assert_eq!(
        tokens.count("alice", push_scope),
        1,
        "one token for the whole push: {:?}",
        tokens.requests.lock().map(|m| m.clone())
    );
    let id = d
        .docker(&["image", "inspect", "--format", "{{.Id}}", &target])
        .ok()
        .trim()
        .to_string();

    // Pull into a fresh daemon with the credentials, twice: one token for the pull scope.
    let p = TestDaemon::start();
    p.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"secret\n",
    )
    .ok();
    p.docker(&["pull", &target]).ok();
    let got = p.docker(&["image", "inspect", "--format", "{{.Id}}", &target]);
    assert_eq!(got.ok().trim(), id);
    p.docker(&["rmi", &target]).ok();
    p.docker(&["pull", &target]).ok();
    assert_eq!(
        tokens.count("alice", "repository:private/bb:pull"),
        1,
        "tokens are cached per scope: {:?}",
        tokens.requests.lock().map(|m| m.clone())
    );
    assert_eq!(
        p.docker(&["run", "--rm", &target, "echo", "token"]).ok(),
        "token\n"
    );

    // Anonymous pull is refused, and nothing is left behind.
    let anon = TestDaemon::start();
    let refused = anon.docker(&["pull", &target]);
    assert_ne!(refused.status, 0, "{refused:?}");
    assert!(anon.docker(&["images", "-q"]).ok().trim().is_empty());

    // The texts are the real engine's.
    if let Some(real) = RealEngine::start() {
        let (ok, _, real_anon) = real.docker(&["pull", &target]);
        assert!(!ok);
        assert_eq!(error_line(&refused.stderr), error_line(&real_anon));
        let login = Command::new("/usr/local/bin/docker")
            .arg("-H")
            .arg(format!("unix://{}", real.path("docker.sock").display()))
            .args(["login", "-u", "alice", "--password-stdin", &reg.addr])
            .env("DOCKER_CONFIG", real.path("docker-config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().expect("stdin").write_all(b"wrong\n")?;
                c.wait_with_output()
            })
            .expect("real docker login");
        assert!(!login.status.success());
        assert_eq!(
            error_line(&bad.stderr),
            error_line(&String::from_utf8_lossy(&login.stderr))
        );
    }
    drop(reg);
}

/// The test's scratch folder (keys, certificates), removed when the test ends, failed or not.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
