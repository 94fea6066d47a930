//! docker-compose against berthd (issue 16's acceptance): Debian's docker-compose 1.29 (on
//! /usr/bin/python3 with Debian's python3-docker) brings up a two-service project whose
//! `web` waits for `db` to be healthy (`depends_on: {db: {condition: service_healthy}}`):
//! `up -d` starts web only after db's `health_status: healthy`, nothing is pulled (the image
//! is local), and `down -v` leaves no container, network or volume behind. Skipped, with a
//! message, without docker-compose.

use berth_tests::TestDaemon;
use std::process::Command;

const COMPOSE: &str = "/usr/bin/docker-compose";

/// `db` turns healthy about a second after it starts; `web` depends on that.
const PROJECT: &str = r#"version: "2.4"
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "sleep 1; touch /ready; exec sleep 300"]
    healthcheck:
      test: ["CMD", "test", "-e", "/ready"]
      interval: 200ms
      timeout: 5s
      retries: 30
    volumes:
      - data:/data
    stop_grace_period: 1s
  web:
    image: busybox:latest
    command: ["sleep", "300"]
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_healthy
volumes:
  data: {}
"#;

/// Runs docker-compose on the project in `dir` against `d`; (success, stdout + stderr).
fn compose(d: &TestDaemon, dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = Command::new("timeout")
        .arg("180")
        .arg(COMPOSE)
        .args(["-p", "hc", "-f"])
        .arg(dir.join("docker-compose.yml"))
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("docker-compose");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// Lines `docker <args>` prints on `d`.
fn lines(d: &TestDaemon, args: &[&str]) -> Vec<String> {
    d.docker(args).ok().lines().map(String::from).collect()
}

#[test]
fn compose_waits_for_a_healthy_service_and_down_leaves_nothing() {
    if !std::path::Path::new(COMPOSE).exists() {
        eprintln!("SKIP: docker-compose is not installed (apt-get install -y docker-compose)");
        return;
    }
    let d = TestDaemon::start();
    d.import_busybox();
    let dir = d.dir().join("compose");
    std::fs::create_dir_all(&dir).expect("project folder");
    std::fs::write(dir.join("docker-compose.yml"), PROJECT).expect("compose file");
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    let (ok, out) = compose(&d, &dir, &["up", "-d"]);
    assert!(ok, "compose up: {out}\n{}", d.log());
    // In order: web started only once db was healthy.
    let until = (t0 + 3600).to_string();
    let fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";
    let ev = d.docker_lines(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &until,
        "--format",
        fmt,
    ]);
    let mut seen = Vec::new();
    while let Some(l) = ev.next(std::time::Duration::from_secs(10)) {
        let done = l == "container start hc_web_1";
        seen.push(l);
        if done {
            break;
        }
    }
    drop(ev);
    let at = |s: &str| seen.iter().position(|l| l == s);
    let healthy = at("container health_status: healthy hc_db_1");
    let web = at("container start hc_web_1");
    assert!(
        healthy.is_some() && web.is_some() && healthy < web,
        "{seen:#?}"
    );
    assert!(at("container start hc_db_1") < healthy, "{seen:#?}");
    assert!(
        !seen.iter().any(|l| l.starts_with("image pull")),
        "{seen:#?}"
    );
    let running = lines(&d, &["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(
        running
            .iter()
            .any(|l| l.starts_with("hc_db_1 Up") && l.ends_with("(healthy)")),
        "{running:?}"
    );
    let (ok, out) = compose(&d, &dir, &["ps"]);
    assert!(ok && out.contains("hc_web_1"), "compose ps: {out}");
    let (ok, out) = compose(&d, &dir, &["down", "-v"]);
    assert!(ok, "compose down: {out}\n{}", d.log());
    assert_eq!(lines(&d, &["ps", "-aq"]), Vec::<String>::new());
    let mut nets = lines(&d, &["network", "ls", "--format", "{{.Name}}"]);
    nets.sort();
    assert_eq!(nets, ["bridge", "host", "none"]);
    assert_eq!(lines(&d, &["volume", "ls", "-q"]), Vec::<String>::new());
}
