//! [`DistRegistry`]: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 for registry
//! tests — plain HTTP, TLS with htpasswd basic auth (a self-signed certificate for 127.0.0.1
//! made with openssl), or token auth against a token server the test runs. Its process is
//! stopped and its folder removed when dropped. Tests skip, with a message, when a tool is
//! missing.

use crate::daemon::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the registry authenticates clients.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    /// Anonymous, plain HTTP.
    None,
    /// TLS (self-signed for 127.0.0.1, `cert.pem`/`key.pem` in its folder) and htpasswd
    /// `alice:secret`.
    BasicTls,
    /// Plain HTTP with `auth: token`: bearer tokens from `realm`, signed by the key whose
    /// certificate is `root_cert` (the registry's `rootcertbundle`).
    Token {
        /// The token endpoint URL.
        realm: String,
        /// `service` (the JWT audience).
        service: String,
        /// `issuer` (the JWT `iss`).
        issuer: String,
        /// The PEM certificate that signs tokens.
        root_cert: PathBuf,
    },
}

/// A running `docker-registry serve`.
pub struct DistRegistry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Its private folder (config, data, certificates).
    pub dir: PathBuf,
}

impl Drop for DistRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `bin` is on PATH.
pub fn have(bin: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `cmd`, panicking unless it succeeds; returns its stdout.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().expect("spawn");
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Makes a self-signed RSA certificate for 127.0.0.1: (`<name>.key`, `<name>.crt`) in `dir`.
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, cert) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
    );
    run_ok(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()),
    );
    (key, cert)
}

/// A fresh private folder for a registry or token server.
pub fn scratch_dir(what: &str) -> PathBuf {
    let dir = PathBuf::from(format!(
        "/var/tmp/berth-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

impl DistRegistry {
    /// Starts a registry, or `None` (with a message) when a needed tool is missing.
    pub fn start(auth: RegistryAuth) -> Option<DistRegistry> {
        let mut tools = vec!["docker-registry"];
        if matches!(auth, RegistryAuth::BasicTls) {
            tools.extend(["openssl", "htpasswd"]);
        }
        if let Some(t) = tools.into_iter().find(|t| !have(t)) {
            eprintln!("skipped: {t} is not installed");
            return None;
        }
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let dir = scratch_dir("registry");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        );
        match &auth {
            RegistryAuth::None => {}
            RegistryAuth::BasicTls => {
                let (key, cert) = self_signed(&dir, "tls");
                let htpasswd = run_ok(Command::new("htpasswd").args(["-Bbn", "alice", "secret"]));
                std::fs::write(dir.join("htpasswd"), htpasswd).expect("htpasswd");
                cfg.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    cert.display(),
                    key.display(),
                    dir.join("htpasswd").display()
                ));
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                root_cert,
            } => cfg.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                root_cert.display()
            )),
        }
        std::fs::write(dir.join("config.yml"), cfg).expect("config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("registry");
        let reg = DistRegistry { child, addr, dir };
        // A hang guard, not a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&reg.addr).is_ok() {
                return Some(reg);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("registry did not start on {}: {}", reg.addr, reg.log());
    }

    /// The registry's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}
