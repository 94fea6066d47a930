//! Registry tests (issue 5): a real Debian `docker-registry` on 127.0.0.1 — plain HTTP, and
//! TLS with htpasswd basic auth — with push from one berthd, pull into a fresh one, run;
//! login with good and bad credentials; interop with skopeo. Traffic stays on loopback.

use berth_tests::{free_port, TestDaemon};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Registry {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("spawn");
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Starts a registry; with `auth`, TLS (self-signed for 127.0.0.1) and htpasswd `alice:secret`.
fn start_registry(auth: bool) -> Option<Registry> {
    if !have("docker-registry") {
        eprintln!("skipped: docker-registry is not installed (apt-get install docker-registry)");
        return None;
    }
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = PathBuf::from(format!(
        "/var/tmp/berth-registry-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut cfg = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
        dir.join("data").display()
    );
    if auth {
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem")));
        let htpasswd = run(Command::new("htpasswd").args(["-Bbn", "alice", "secret"]));
        std::fs::write(dir.join("htpasswd"), htpasswd).expect("htpasswd");
        cfg.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display(),
            dir.join("htpasswd").display()
        ));
    }
    std::fs::write(dir.join("config.yml"), cfg).expect("config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("registry");
    let reg = Registry { child, addr, dir };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&reg.addr).is_ok() {
            return Some(reg);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("registry did not start on {}", reg.addr);
}

fn image_id(d: &TestDaemon, name: &str) -> String {
    d.docker(&["image", "inspect", "--format", "{{.Id}}", name])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn push_then_pull_into_a_fresh_daemon_and_run() {
    let Some(reg) = start_registry(false) else {
        return;
    };
    let a = TestDaemon::start();
    a.import_busybox();
    let target = format!("{}/bb:1", reg.addr);
    a.docker(&["tag", "busybox:latest", &target]).ok();
    let pushed = a.docker(&["push", &target]);
    let out = pushed.ok();
    assert!(out.contains("digest: sha256:"), "{out}");
    let id = image_id(&a, &target);

    let b = TestDaemon::start();
    let pulled = b.docker(&["pull", &target]);
    pulled.ok();
    assert_eq!(
        image_id(&b, &target),
        id,
        "the same image ID after push and pull"
    );
    let hello = b.docker(&["run", "--rm", &target, "echo", "pulled"]);
    assert_eq!(hello.ok().trim(), "pulled");
    // A second pull says it is up to date.
    let again = b.docker(&["pull", &target]);
    assert!(
        again.ok().contains("up to date") || again.stdout.contains(&target),
        "{}",
        again.stdout
    );
    if have("skopeo") {
        let inspect = run(Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{target}")));
        assert!(inspect.contains("\"Digest\": \"sha256:"), "{inspect}");
    }
}

#[test]
fn missing_image_on_unreachable_registry_is_a_docker_error() {
    let d = TestDaemon::start();
    let out = d.docker(&["run", "--rm", "127.0.0.1:1/nope", "true"]);
    assert_eq!(out.status, 125, "{out:?}");
    assert!(out.stderr.contains("127.0.0.1:1"), "{}", out.stderr);
    assert!(d.docker(&["images", "-q"]).ok().trim().is_empty());
}

#[test]
fn login_and_authenticated_push_pull() {
    if !have("htpasswd") || !have("openssl") {
        eprintln!("skipped: htpasswd (apache2-utils) or openssl missing");
        return;
    }
    let Some(reg) = start_registry(true) else {
        return;
    };
    let d = TestDaemon::start();
    d.import_busybox();
    let target = format!("{}/private/bb:1", reg.addr);
    d.docker(&["tag", "busybox:latest", &target]).ok();
    let denied = d.docker(&["push", &target]);
    assert_ne!(denied.status, 0, "push without login must fail: {denied:?}");
    let bad = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"wrong\n",
    );
    assert_ne!(bad.status, 0);
    assert!(
        bad.stderr.to_lowercase().contains("unauthorized") || bad.stderr.contains("401"),
        "{}",
        bad.stderr
    );
    let good = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"secret\n",
    );
    assert!(good.ok().contains("Login Succeeded"));
    d.docker(&["push", &target]).ok();
    let id = image_id(&d, &target);
    d.docker(&["rmi", &target]).ok();
    d.docker(&["pull", &target]).ok();
    assert_eq!(image_id(&d, &target), id);
    let _ = Path::new(&reg.dir);
}

#[test]
fn an_image_pushed_by_skopeo_pulls_with_the_same_id() {
    if !have("skopeo") {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let Some(reg) = start_registry(false) else {
        return;
    };
    let src = TestDaemon::start();
    src.import_busybox();
    let archive = src.dir().join("bb.tar");
    src.docker(&[
        "save",
        "-o",
        &archive.display().to_string(),
        "busybox:latest",
    ])
    .ok();
    let id = image_id(&src, "busybox:latest");
    let target = format!("{}/sk:1", reg.addr);
    // skopeo recompresses the layers with gzip: the pull must decompress and verify diff_ids.
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("docker://{target}")));
    let d = TestDaemon::start();
    d.docker(&["pull", &target]).ok();
    assert_eq!(image_id(&d, &target), id);
    assert_eq!(
        d.docker(&["run", "--rm", &target, "echo", "from skopeo"])
            .ok()
            .trim(),
        "from skopeo"
    );
}
