//! berthd's own surface, driven by the real docker CLI and the Python SDK: version and info
//! over unix and TCP sockets, API version prefixes, unknown and swarm endpoints, bad
//! configuration (one line, exit 1, nothing written), one daemon per data root, and the
//! storage driver shown by `docker info`.
//!
//! Needs the binaries: `cargo build --workspace` first.

use berth_tests::{Output, TestDaemon};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn docker_version_and_info_over_unix_and_tcp() {
    let d = TestDaemon::builder().storage_driver("vfs").tcp().start();
    let v = d.docker(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(
        v.ok().trim(),
        format!("{} 1.47 linux", env!("CARGO_PKG_VERSION"))
    );
    let info = d.docker(&[
        "info",
        "--format",
        "{{.Driver}}|{{.OSType}}|{{.DockerRootDir}}|{{.CgroupDriver}}",
    ]);
    assert_eq!(
        info.ok().trim(),
        format!("vfs|linux|{}|cgroupfs", d.data_root().display())
    );
    let tcp = d.tcp_host().expect("tcp host");
    let out = Command::new("/usr/local/bin/docker")
        .args([
            "-H",
            &tcp,
            "version",
            "--format",
            "{{.Server.Platform.Name}}",
        ])
        .env("DOCKER_CONFIG", d.dir().join("docker-config"))
        .env_remove("DOCKER_HOST")
        .output()
        .expect("docker");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "berth");
    // The plain `docker info` renders without errors and names the driver.
    let text = d.docker(&["info"]);
    assert!(text.ok().contains("Storage Driver: vfs"), "{}", text.stdout);
    assert!(!text.stderr.contains("error"), "{}", text.stderr);
    // berth's plugins show as daemon labels, the storage plugin under the driver too.
    assert!(
        text.stdout
            .contains("berth.plugin.storage.vfs=berth-storage-vfs"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(" Plugin: berth-storage-vfs"),
        "{}",
        text.stdout
    );
    let (_, _, body) = d.request("GET", "/v1.47/info", None);
    let info = parse(&body);
    let plugins = info["BerthPlugins"].as_array().cloned().unwrap_or_default();
    assert!(
        plugins
            .iter()
            .any(|p| p["Kind"] == "storage" && p["Driver"] == "vfs"),
        "{body}"
    );
}

#[test]
fn python_sdk_version_info_ping() {
    let d = TestDaemon::builder().storage_driver("vfs").start();
    let out = d.python(
        "v = c.version()\nprint(v['ApiVersion'], v['Os'])\ni = c.info()\nprint(i['Driver'], i['Swarm']['LocalNodeState'], i['Containers'])\nprint(c.ping())",
    );
    assert_eq!(out.ok(), "1.47 linux\nvfs inactive 0\nTrue\n");
}

#[test]
fn raw_api_versions_unknown_paths_and_swarm() {
    let d = TestDaemon::builder().storage_driver("vfs").start();
    let (status, head, body) = d.request("GET", "/_ping", None);
    assert_eq!((status, body.as_str()), (200, "OK"));
    let lower = head.to_ascii_lowercase();
    for h in [
        "api-version: 1.47",
        "ostype: linux",
        "docker-experimental: false",
        "server: berth/",
    ] {
        assert!(lower.contains(h), "missing {h} in {head}");
    }
    let (status, _, body) = d.request("GET", "/v1.23/version", None);
    assert_eq!(status, 400);
    assert_eq!(
        parse(&body)["message"],
        "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
    let (status, _, body) = d.request("GET", "/v1.99/version", None);
    assert_eq!(status, 400);
    assert_eq!(
        parse(&body)["message"],
        "client version 1.99 is too new. Maximum supported API version is 1.47"
    );
    let (status, _, body) = d.request("GET", "/v1.24/version", None);
    assert_eq!(
        (status, parse(&body)["ApiVersion"].clone()),
        (200, json!("1.47"))
    );
    let (status, _, body) = d.request("GET", "/v1.47/no/such/thing", None);
    assert_eq!(
        (status, parse(&body)),
        (404, json!({"message": "page not found"}))
    );
    let (status, _, body) = d.request("GET", "/v1.47/swarm", None);
    assert_eq!(status, 503);
    assert!(
        parse(&body)["message"]
            .as_str()
            .unwrap_or("")
            .contains("swarm"),
        "{body}"
    );
    let (status, _, body) = d.request("POST", "/v1.47/services/create", Some("{}"));
    assert_eq!(status, 503, "{body}");
}

/// Runs berthd by hand with `args` and returns (exit code, stderr).
fn berthd(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(TestDaemon::berthd_bin())
        .args(args)
        .output()
        .expect("running berthd");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn one_line_exit_1(r: (Option<i32>, String), expect: &str) {
    let (code, stderr) = r;
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.contains(expect), "{expect:?} not in {stderr}");
}

#[test]
fn bad_configuration_is_one_line_and_touches_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let exec = tmp.path().join("exec");
    let sock = format!("unix://{}/s.sock", tmp.path().display());
    let file = tmp.path().join("daemon.json");
    let common =
        |file: &Path| -> Vec<String> { vec!["--config-file".into(), file.display().to_string()] };
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"foo": 1}),
            "the following directives don't match any configuration option: foo",
        ),
        (json!({"log-level": "loud"}), "loud"),
        (json!({"hosts": ["bogus://x"]}), "bogus://x"),
        (json!({"bip": "10.1.2.3/99"}), "10.1.2.3/99"),
        (json!({"data-root": "relative/dir"}), "relative/dir"),
        (
            json!({"storage-driver": "gone", "plugins": {"drivers": {"gone": "/nonexistent/libgone.so"}}}),
            "failed to load plugin \"gone\": library /nonexistent/libgone.so does not exist",
        ),
        (json!({"log-driver": "syslog"}), "syslog"),
    ];
    for (cfg, expect) in cases {
        let mut cfg = cfg;
        let m = cfg.as_object_mut().expect("object");
        m.entry("data-root").or_insert(json!(root));
        m.insert("exec-root".into(), json!(exec));
        m.entry("hosts").or_insert(json!([sock]));
        std::fs::write(&file, cfg.to_string()).expect("write");
        let args = common(&file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        one_line_exit_1(berthd(&args), expect);
        assert!(
            !root.exists() && !exec.exists(),
            "{cfg}: something was created"
        );
    }
    // Flag and file naming the same setting.
    std::fs::write(&file, json!({"data-root": root}).to_string()).expect("write");
    let r = berthd(&[
        "--config-file",
        &file.display().to_string(),
        "--data-root",
        "/elsewhere",
    ]);
    one_line_exit_1(r, "the following directives are specified both as a flag and in the configuration file: data-root");
    // An explicitly named config file must exist.
    let missing = tmp.path().join("missing.json");
    one_line_exit_1(
        berthd(&["--config-file", &missing.display().to_string()]),
        "missing.json",
    );
    // A bad -H flag.
    let r = berthd(&["--config-file", &file.display().to_string(), "-H", "nope"]);
    one_line_exit_1(r, "nope");
    assert!(!root.exists() && !exec.exists());
}

#[test]
fn second_daemon_on_the_same_data_root_is_refused() {
    let d = TestDaemon::builder().storage_driver("vfs").start();
    let other_sock = format!("unix://{}/other.sock", d.dir().display());
    let pid = d.pid().expect("pid");
    let empty = d.dir().join("empty.json");
    std::fs::write(&empty, "{}").expect("write");
    let r = berthd(&[
        "--config-file",
        &empty.display().to_string(),
        "--storage-driver",
        "vfs",
        "--data-root",
        &d.data_root().display().to_string(),
        "--exec-root",
        &d.dir().join("exec2").display().to_string(),
        "-H",
        &other_sock,
        "--bridge",
        d.bridge(),
    ]);
    one_line_exit_1(
        r,
        &format!(
            "another berthd is running on data root {} (pid {pid})",
            d.data_root().display()
        ),
    );
    // The first one is unharmed.
    assert_eq!(d.request("GET", "/_ping", None).0, 200);
}

fn driver_of(d: &TestDaemon) -> Output {
    d.docker(&["info", "--format", "{{.Driver}}"])
}

#[test]
fn storage_driver_vfs_and_overlay2_show_in_info() {
    let d = TestDaemon::builder().storage_driver("vfs").start();
    assert_eq!(driver_of(&d).ok().trim(), "vfs");
    drop(d);
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    assert_eq!(driver_of(&d).ok().trim(), "overlay2");
    let info = d.docker(&["info"]);
    assert!(
        info.ok().contains("Storage Driver: overlay2"),
        "{}",
        info.stdout
    );
}

#[test]
fn events_replay_with_since_and_until() {
    let d = TestDaemon::builder().storage_driver("vfs").start();
    // Tagging an imported image publishes image events; replay them with since/until.
    d.import_busybox();
    d.docker(&["tag", "busybox:latest", "bb:x"]).ok();
    let out = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|t| t.as_secs() + 1)
                .unwrap_or(0)
        ),
        "--filter",
        "type=image",
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    assert!(out.ok().lines().any(|l| l == "image tag"), "{}", out.stdout);
}

/// Polls `cond` for up to a minute (a hang guard, not a timing assertion).
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_the_log_level_and_sigterm_cleans_up() {
    let mut d = TestDaemon::builder()
        .storage_driver("vfs")
        .config_json(json!({"log-level": "info"}))
        .start();
    assert_eq!(d.request("GET", "/v1.47/version", None).0, 200);
    assert!(!d.log().contains("DEBUG"), "{}", d.log());
    let mut cfg = d.config().clone();
    cfg["log-level"] = json!("debug");
    std::fs::write(d.dir().join("daemon.json"), cfg.to_string()).expect("rewrite config");
    let pid = d.pid().expect("pid") as i32;
    // SAFETY: kill(2) on the daemon this test started.
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
    eventually("the reload", || d.log().contains("log level set to debug"));
    assert_eq!(d.request("GET", "/v1.47/version", None).0, 200);
    eventually("a debug line", || d.log().contains("DEBUG"));
    // The reload is an event too.
    let out = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &(now() + 1).to_string(),
        "--filter",
        "type=daemon",
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    assert_eq!(out.ok().trim(), "daemon reload");
    // SIGTERM: exit 0, socket and pidfile removed, data root reusable at once.
    assert_eq!(d.stop(), Some(0), "{}", d.log());
    assert!(!d.socket().exists(), "socket left behind");
    assert!(!d.dir().join("berthd.pid").exists(), "pidfile left behind");
    d.restart();
    assert_eq!(d.request("GET", "/_ping", None).0, 200);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs())
        .unwrap_or(0)
}
