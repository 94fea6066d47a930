//! Registry tests (issue 5): a real Debian `docker-registry` on 127.0.0.1 — plain HTTP, and
//! TLS with htpasswd basic auth — with push from one berthd, pull into a fresh one, run;
//! login with good and bad credentials; interop with skopeo; the client is loaded as the
//! default registry plugin. Traffic stays on loopback.

use berth_tests::{have, run_ok as run, DistRegistry, RegistryAuth, TestDaemon};
use std::process::Command;

fn start_registry(auth: bool) -> Option<DistRegistry> {
    DistRegistry::start(if auth {
        RegistryAuth::BasicTls
    } else {
        RegistryAuth::None
    })
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
    // The registry client is the default registry plugin, loaded from its library.
    let (_, _, info) = b.request("GET", "/info", None);
    let info: serde_json::Value = serde_json::from_str(&info).expect("info JSON");
    let plugins = info["BerthPlugins"].as_array().cloned().unwrap_or_default();
    assert!(
        plugins.iter().any(|p| p["Kind"] == "registry"
            && p["Driver"] == "distribution"
            && p["Library"]
                .as_str()
                .is_some_and(|l| l.ends_with("libberth_registry_distribution.so"))),
        "{plugins:?}"
    );
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
