//! The berth CLI's system commands against a real berthd: `version`, `info`, `events`,
//! `completion`, host selection (`-H` over `BERTH_HOST` over `DOCKER_HOST`), daemon errors
//! and the docker-like exit codes.

use berth_tests::{Output, TestDaemon};
use std::process::Command;

/// A berth command with no host flag and no host variables set.
fn bare_berth(d: &TestDaemon) -> Command {
    let mut c = Command::new(TestDaemon::berth_bin());
    c.env("DOCKER_CONFIG", d.dir().join("docker-config"))
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST");
    c
}

/// Runs `c` with no stdin and collects what it printed.
fn run(mut c: Command) -> Output {
    let out = c
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn berth");
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A unix socket path inside the daemon's folder that nothing listens on.
fn dead_host(d: &TestDaemon) -> String {
    format!("unix://{}", d.dir().join("nobody.sock").display())
}

#[test]
fn version_prints_client_and_server_sections() {
    let d = TestDaemon::start();
    let out = d.berth(&["version"]);
    let text = out.ok();
    let client = text.find("Client:").expect("Client: section");
    let server = text.find("Server:").expect("Server: section");
    assert!(client < server, "{text}");
    assert!(text.contains(" API version:"), "{text}");
    // The server half agrees with what the stock docker CLI reads from the same daemon.
    let docker_ver = d.docker(&["version", "--format", "{{.Server.Version}}"]);
    let berth_ver = d.berth(&["version", "--format", "{{.Server.Version}}"]);
    assert_eq!(berth_ver.ok().trim(), docker_ver.ok().trim());
    assert!(!berth_ver.stdout.trim().is_empty());
}

#[test]
fn info_has_dockers_layout() {
    let d = TestDaemon::start();
    let out = d.berth(&["info"]);
    let text = out.ok();
    for line in [
        "Client:",
        "Server:",
        " Containers:",
        "  Running:",
        "  Paused:",
        "  Stopped:",
        " Images:",
        " Server Version:",
        " Storage Driver:",
        " Logging Driver:",
        " Cgroup Driver:",
        " Kernel Version:",
        " Operating System:",
        " OSType:",
        " Architecture:",
        " CPUs:",
        " Total Memory:",
        " Name:",
        " ID:",
        " Docker Root Dir:",
        " Debug Mode:",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // The root dir shown is the daemon's own data root.
    let root = d.berth(&["info", "--format", "{{.DockerRootDir}}"]);
    let docker_root = d.docker(&["info", "--format", "{{.DockerRootDir}}"]);
    assert_eq!(root.ok().trim(), docker_root.ok().trim());
    // Counts agree with docker's reading of the same daemon.
    let images = d.berth(&["info", "--format", "{{.Images}} {{.Containers}}"]);
    let docker_images = d.docker(&["info", "--format", "{{.Images}} {{.Containers}}"]);
    assert_eq!(images.ok().trim(), docker_images.ok().trim());
}

#[test]
fn host_flag_wins_over_berth_host_over_docker_host() {
    let d = TestDaemon::start();
    let fmt = ["version", "--format", "{{.Server.Version}}"];

    // -H beats both variables (which point nowhere).
    let mut c = bare_berth(&d);
    c.arg("-H").arg(d.host()).args(fmt);
    c.env("BERTH_HOST", dead_host(&d))
        .env("DOCKER_HOST", dead_host(&d));
    run(c).ok();

    // BERTH_HOST beats DOCKER_HOST.
    let mut c = bare_berth(&d);
    c.args(fmt)
        .env("BERTH_HOST", d.host())
        .env("DOCKER_HOST", dead_host(&d));
    run(c).ok();

    // A dead BERTH_HOST is not rescued by a good DOCKER_HOST.
    let mut c = bare_berth(&d);
    c.args(fmt)
        .env("BERTH_HOST", dead_host(&d))
        .env("DOCKER_HOST", d.host());
    let out = run(c);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("Cannot connect"), "{out:?}");

    // DOCKER_HOST alone is used.
    let mut c = bare_berth(&d);
    c.args(fmt).env("DOCKER_HOST", d.host());
    run(c).ok();
}

#[test]
fn tcp_hosts_work() {
    let d = TestDaemon::builder().tcp().start();
    let Some(tcp) = d.tcp_host() else {
        panic!("tcp() daemon without a tcp host");
    };
    let mut c = bare_berth(&d);
    c.arg("-H").arg(&tcp).arg("info");
    let text = run(c).ok().to_string();
    assert!(text.contains(" Server Version:"), "{text}");
    let http = tcp.replacen("tcp://", "http://", 1);
    let mut c = bare_berth(&d);
    c.args(["-H", &http, "version", "--format", "{{.Server.APIVersion}}"]);
    let out = run(c);
    assert!(out.ok().trim().starts_with("1."), "{out:?}");
}

#[test]
fn unreachable_daemon_and_daemon_errors_exit_like_docker() {
    let d = TestDaemon::start();
    let mut c = bare_berth(&d);
    c.args(["-H", &dead_host(&d), "info"]);
    let out = run(c);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stderr.contains("Cannot connect"), "{out:?}");

    // A daemon error: docker prints "Error response from daemon: ..." and exits 1.
    let out = d.berth(&["inspect", "no-such-thing-here"]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stderr.contains("no-such-thing-here"), "{out:?}");

    // Usage errors exit 125 for run, like docker.
    let out = d.berth(&["run", "--no-such-flag", "busybox"]);
    assert_eq!(out.status, 125, "{out:?}");
}

#[test]
fn completion_scripts_are_generated() {
    let d = TestDaemon::start();
    let out = d.berth(&["completion", "bash"]);
    let script = out.ok();
    assert!(script.contains("berth"), "{script}");
    assert!(script.contains("complete"), "{script}");
    // bash accepts the script.
    let path = d.dir().join("berth.bash");
    std::fs::write(&path, script).expect("write script");
    let st = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .expect("bash -n");
    assert!(st.success());
    for shell in ["zsh", "fish"] {
        let out = d.berth(&["completion", shell]);
        assert!(!out.ok().is_empty(), "{shell}");
    }
    let out = d.berth(&["completion", "tcsh"]);
    assert!(!out.success());
}

#[test]
fn events_show_container_lifecycle_in_dockers_format() {
    let d = TestDaemon::start();
    d.import_busybox();
    let start = unix_now(-1);
    let id = d.berth(&["create", "--name", "evt", "busybox", "true"]);
    let id = id.ok().trim().to_string();
    d.berth(&["rm", "evt"]).ok();
    let until = unix_now(1);
    let out = d.berth(&["events", "--since", &start, "--until", &until]);
    let text = out.ok();
    let create = text
        .lines()
        .find(|l| l.contains(" container create "))
        .unwrap_or_else(|| panic!("no create event in:\n{text}"));
    assert!(create.contains(&id), "{create}");
    assert!(create.contains("name=evt"), "{create}");
    // 2026-11-28T06:00:00.000000000Z container create <id> (...)
    let ts = create.split(' ').next().unwrap_or_default();
    assert!(ts.ends_with('Z') && ts.contains('T'), "{create}");
    let out = d.berth(&[
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--filter",
        "event=destroy",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(out.ok().trim(), "destroy evt");
}

/// Unix seconds from now, shifted by `delta` (what `--since`/`--until` accept).
fn unix_now(delta: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (now as i64 + delta).to_string()
}
