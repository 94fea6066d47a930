//! Health checks against a private real dockerd (issue 16): the same docker CLI and API calls
//! on both engines, their answers compared — a healthy, an unhealthy and a timing-out probe
//! (`State.Health`: status, failing streak, the log's shape and texts), an image's
//! `HEALTHCHECK` inherited field by field, `--no-healthcheck` over it, `HEALTHCHECK NONE`,
//! pause and stop (dockerd leaves the status `unhealthy`), the `health_status` and probe exec
//! events, `ps` STATUS and `--filter health=`, and the create-time refusals. berth alone: a
//! berthd restart keeps `State.Health` and the probes go on; berth's `--health-*` flags make
//! the docker CLI's body; docker-py's `containers.run(healthcheck=…)` reaches `healthy`.
//! Without dockerd the berth side is still checked against the values dockerd gives.

use berth_tests::{RealEngine, TestDaemon};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// A hang guard for probes that run in the background, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

/// The docker CLI against one engine: (success, stdout, stderr).
type DockerCli<'a> = &'a dyn Fn(&[&str]) -> (bool, String, String);

/// One engine as the scenario drives it: the docker CLI and its API socket.
struct Engine<'a> {
    docker: DockerCli<'a>,
    socket: String,
}

impl Engine<'_> {
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = (self.docker)(args);
        assert!(ok, "docker {args:?}: {err}\n{out}");
        out.trim().to_string()
    }

    fn inspect(&self, name: &str, fmt: &str) -> Value {
        let out = self.ok(&["inspect", "-f", fmt, name]);
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    fn health_status(&self, name: &str) -> String {
        let s = self.inspect(name, "{{json .State.Health}}");
        s["Status"].as_str().unwrap_or("none").to_string()
    }

    /// Waits until `name`'s health status is `want`.
    #[track_caller]
    fn wait_status(&self, name: &str, want: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.health_status(name) != want {
            assert!(
                Instant::now() < deadline,
                "{name} never became {want}: {}",
                self.inspect(name, "{{json .State.Health}}")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `POST /containers/create` with `body`: (status, message).
    fn create(&self, body: &Value) -> (u16, String) {
        let o = Command::new("curl")
            .args([
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "--unix-socket",
                &self.socket,
            ])
            .args([
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ])
            .arg("http://x/v1.41/containers/create")
            .output()
            .expect("curl");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", ""));
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        (
            code.trim().parse().unwrap_or(0),
            v["message"].as_str().unwrap_or("").to_string(),
        )
    }
}

/// The probes' images: busybox with a `HEALTHCHECK CMD` (`hc:1`) and with `NONE`
/// (`hcnone:1`), imported from the same rootfs on both engines.
fn images(e: &Engine, tar: &str) {
    let hc = r#"HEALTHCHECK --interval=200ms --retries=2 CMD ["sh","-c","echo img; exit 0"]"#;
    e.ok(&["import", "-c", "CMD [\"sh\"]", "-c", hc, tar, "hc:1"]);
    e.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "HEALTHCHECK NONE",
        tar,
        "hcnone:1",
    ]);
    e.ok(&["import", "-c", "CMD [\"sh\"]", tar, "busybox:latest"]);
    let missing = r#"HEALTHCHECK --interval=200ms --retries=1 CMD ["nosuch", "x"]"#;
    e.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        missing,
        tar,
        "hcmissing:1",
    ]);
}

/// The containers of the scenario: name → `run` flags and image.
const RUNS: &[(&str, &[&str])] = &[
    (
        "healthy",
        &[
            "--health-cmd",
            "echo hi; exit 0",
            "--health-interval",
            "200ms",
            "busybox",
        ],
    ),
    (
        "sick",
        &[
            "--health-cmd",
            "echo bad >&2; exit 1",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "busybox",
        ],
    ),
    (
        "slow",
        &[
            "--health-cmd",
            "sleep 5",
            "--health-interval",
            "200ms",
            "--health-timeout",
            "300ms",
            "--health-retries",
            "1",
            "busybox",
        ],
    ),
    ("img", &["--health-timeout", "2s", "hc:1"]),
    ("nohc", &["--no-healthcheck", "hc:1"]),
    ("none", &["hcnone:1"]),
    ("missing", &["hcmissing:1"]),
    (
        "chatty",
        &[
            "--health-cmd",
            "yes x | head -c 5000",
            "--health-interval",
            "200ms",
            "busybox",
        ],
    ),
];

/// A health log entry's shape: its keys, exit code and output (times are checked to be
/// RFC 3339 and ordered).
fn entry_shape(e: &Value) -> Value {
    let keys: Vec<&String> = e
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    let t = |k: &str| rfc3339_key(e[k].as_str().unwrap_or(""));
    let ordered = matches!((t("Start"), t("End")), (Some(s), Some(f)) if s <= f);
    json!({"keys": keys, "ExitCode": e["ExitCode"], "Output": e["Output"], "ordered": ordered})
}

/// A UTC RFC 3339 time (`2026-01-01T00:00:00.5Z`, fraction of any length) as a key that
/// sorts in time order, or `None` if it is not one.
fn rfc3339_key(t: &str) -> Option<String> {
    let t = t.strip_suffix('Z')?;
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let ok = whole.len() == 19 && whole.as_bytes()[10] == b'T' && frac.len() <= 9;
    ok.then(|| format!("{whole}.{frac:0<9}"))
}

/// What `State.Health` looks like, with the streak counted from the log only where it is
/// deterministic.
fn health_shape(h: &Value) -> Value {
    if h.is_null() {
        return Value::Null;
    }
    let log = h["Log"].as_array().cloned().unwrap_or_default();
    let mut shapes: Vec<Value> = log.iter().map(entry_shape).collect();
    shapes.dedup();
    json!({
        "keys": h.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        "Status": h["Status"],
        "streak_positive": h["FailingStreak"].as_i64().unwrap_or(0) > 0,
        "log_len_ok": (1..=5).contains(&log.len()),
        "entries": shapes,
    })
}

/// `ps` STATUS without its "Up N seconds" (the health suffix, `(Paused)`, or nothing).
fn suffixes(e: &Engine) -> BTreeMap<String, String> {
    e.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"])
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(n, s)| {
            let suffix = s.find('(').map(|i| &s[i..]).unwrap_or("");
            let suffix = if s.starts_with("Created") {
                "Created"
            } else {
                suffix
            };
            (n.to_string(), suffix.to_string())
        })
        .collect()
}

/// Runs the scenario on one engine; everything that should be equal between engines.
fn scenario(e: &Engine, tar: &str) -> Value {
    images(e, tar);
    let log = Events::follow(e);
    let mut out = json!({});
    for (name, flags) in RUNS {
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        args.extend_from_slice(flags);
        args.extend(["sleep", "120"]);
        e.ok(&args);
    }
    e.ok(&[
        "create",
        "--name",
        "created",
        "--health-cmd",
        "true",
        "busybox",
        "sleep",
        "1",
    ]);
    e.wait_status("healthy", "healthy");
    e.wait_status("sick", "unhealthy");
    e.wait_status("slow", "unhealthy");
    e.wait_status("img", "healthy");
    e.wait_status("missing", "unhealthy");
    e.wait_status("chatty", "healthy");
    let names = [
        "healthy", "sick", "slow", "img", "nohc", "none", "created", "missing", "chatty",
    ];
    for name in names {
        out[name] = json!({
            "config": e.inspect(name, "{{json .Config.Healthcheck}}"),
            "health": health_shape(&e.inspect(name, "{{json .State.Health}}")),
        });
    }
    out["ps"] = json!(suffixes(e));
    for f in ["starting", "healthy", "unhealthy", "none"] {
        let filter = format!("health={f}");
        let mut names: Vec<String> = e
            .ok(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
            .lines()
            .map(String::from)
            .collect();
        names.sort();
        out["filter"][f] = json!(names);
    }
    // A pause stops the probes and leaves the status unhealthy; they resume after it.
    e.ok(&["pause", "img"]);
    out["paused"] = json!([e.health_status("img"), suffixes(e)["img"]]);
    e.ok(&["unpause", "img"]);
    e.wait_status("img", "healthy");
    // So does an exit.
    e.ok(&["stop", "-t", "1", "healthy"]);
    out["stopped"] = json!(e.health_status("healthy"));
    e.ok(&["start", "healthy"]);
    out["restarted"] = json!(e.health_status("healthy"));
    e.wait_status("healthy", "healthy");
    out["events"] = events(&log.stop());
    // How often each status was announced: only on a change (dockerd's own count races with
    // a probe that ends during a stop, so it is checked on berth alone).
    out["_counts"] = out["events"]["_counts"].take();
    if let Some(ev) = out["events"].as_object_mut() {
        ev.remove("_counts");
    }
    for (i, body) in [
        json!({"Image": "busybox", "Healthcheck": {"Interval": 5}}),
        json!({"Image": "busybox", "Healthcheck": {"Timeout": 5, "Retries": -1}}),
        json!({"Image": "busybox", "Healthcheck": {"Retries": -1, "StartPeriod": 3}}),
        json!({"Image": "busybox", "Healthcheck": {"StartPeriod": 999_999}}),
        json!({"Image": "busybox", "Healthcheck": {"Interval": 1_000_000, "Test": ["NONE"]}}),
    ]
    .iter()
    .enumerate()
    {
        let (code, msg) = e.create(body);
        out["refusals"][i.to_string()] = json!([code, msg]);
    }
    let mut rm = vec!["rm", "-f"];
    rm.extend(names);
    e.ok(&rm);
    out
}

/// `docker events` followed into a file from the scenario's start (dockerd replays only its
/// last 1,024 events for `--since`, fewer than the probes make).
struct Events {
    child: std::process::Child,
    file: tempfile::NamedTempFile,
}

impl Events {
    fn follow(e: &Engine) -> Events {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let fmt = "{{.Action}}|{{.Actor.Attributes.name}}|{{.Actor.Attributes.execID}}";
        let child = Command::new("/usr/local/bin/docker")
            .args([
                "-H",
                &format!("unix://{}", e.socket),
                "events",
                "--format",
                fmt,
            ])
            .stdout(file.reopen().expect("reopen"))
            .spawn()
            .expect("docker events");
        // The stream is open once the CLI has connected; a hang guard for that.
        std::thread::sleep(Duration::from_millis(500));
        Events { child, file }
    }

    /// Everything seen so far.
    fn stop(mut self) -> String {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(self.file.path()).unwrap_or_default()
    }
}

/// The container events in `raw`: for each container, its distinct health and exec
/// actions in order of first appearance, and how many `health_status` events it had.
fn events(raw: &str) -> Value {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut exec_ids_ok = true;
    for l in raw.lines() {
        // From the right: a probe's command (in the action) may hold a `|`.
        let mut p = l.rsplitn(3, '|');
        let (exec, name, action) = (p.next(), p.next().unwrap_or(""), p.next().unwrap_or(""));
        if action.starts_with("exec_") {
            exec_ids_ok &= exec.is_some_and(|x| x.len() == 64);
        }
        if !(action.starts_with("exec_") || action.starts_with("health_status")) {
            continue;
        }
        if action.starts_with("health_status") {
            *counts.entry(format!("{name} {action}")).or_default() += 1;
        }
        let list = out.entry(name.to_string()).or_default();
        if !list.iter().any(|a| a == action) {
            list.push(action.to_string());
        }
    }
    // dockerd records a timed-out probe and ends its process concurrently: the order of its
    // `exec_die` and `health_status` varies, so each container's actions are compared sorted.
    for list in out.values_mut() {
        list.sort();
    }
    json!({"actions": out, "exec_ids": exec_ids_ok, "_counts": counts})
}

/// Checks on berth alone of what dockerd 20.10 gives (so they hold without dockerd too).
fn check_berth(b: &Value) {
    let h = &b["sick"]["health"];
    assert_eq!(h["Status"], "unhealthy", "{b:#}");
    assert_eq!(h["streak_positive"], true, "{b:#}");
    let entry = json!({"keys": ["End", "ExitCode", "Output", "Start"], "ExitCode": 1,
        "Output": "bad\n", "ordered": true});
    assert_eq!(h["entries"], json!([entry]), "{b:#}");
    let slow = &b["slow"]["health"]["entries"][0];
    assert_eq!(slow["ExitCode"], -1, "{b:#}");
    assert_eq!(slow["Output"], "Health check exceeded timeout (300ms)");
    assert_eq!(
        b["nohc"]["config"],
        json!({"Test": ["NONE"], "Interval": 200_000_000, "Retries": 2})
    );
    let chatty = b["chatty"]["health"]["entries"][0]["Output"]
        .as_str()
        .unwrap_or("");
    assert_eq!(chatty.len(), 4096 + 3, "{chatty}");
    assert!(
        chatty.starts_with("x\nx\n") && chatty.ends_with("..."),
        "{chatty}"
    );
    let missing = &b["missing"]["health"]["entries"][0];
    assert_eq!(missing["ExitCode"], -1, "{b:#}");
    let text = missing["Output"].as_str().unwrap_or("");
    assert!(
        text.starts_with("OCI runtime exec failed: exec failed: "),
        "{text}"
    );
    assert!(!b["events"]["actions"]["missing"]
        .to_string()
        .contains("exec_die"));
    assert_eq!(b["none"]["health"], Value::Null);
    assert_eq!(b["created"]["health"], Value::Null);
    assert_eq!(b["ps"]["healthy"], "(healthy)");
    assert_eq!(b["ps"]["sick"], "(unhealthy)");
    assert_eq!(b["ps"]["none"], "");
    assert_eq!(b["filter"]["none"], json!(["created", "nohc", "none"]));
    assert_eq!(b["filter"]["healthy"], json!(["chatty", "healthy", "img"]));
    assert_eq!(b["paused"], json!(["unhealthy", "(Paused)"]));
    assert_eq!(
        (&b["stopped"], &b["restarted"]),
        (&json!("unhealthy"), &json!("starting"))
    );
    let ev = &b["events"];
    let counts = &b["_counts"];
    assert_eq!(counts["healthy health_status: healthy"], 2, "{counts:#}");
    assert_eq!(counts["sick health_status: unhealthy"], 1, "{counts:#}");
    assert_eq!(
        ev["actions"]["healthy"],
        json!([
            "exec_create: /bin/sh -c echo hi; exit 0",
            "exec_die",
            "exec_start: /bin/sh -c echo hi; exit 0",
            "health_status: healthy"
        ]),
        "{ev:#}"
    );
    assert_eq!(ev["exec_ids"], true);
    assert_eq!(
        b["refusals"]["0"],
        json!([400, "Interval in Healthcheck cannot be less than 1ms"])
    );
    assert_eq!(b["refusals"]["4"][0], 201);
}

#[test]
fn health_checks_as_dockerd() {
    let d = TestDaemon::start();
    let tar = d.busybox_tar().display().to_string();
    let berth_docker = |a: &[&str]| {
        let o = d.docker(a);
        (o.success(), o.stdout.clone(), o.stderr.clone())
    };
    let berth = Engine {
        docker: &berth_docker,
        socket: d.socket().display().to_string(),
    };
    let b = scenario(&berth, &tar);
    check_berth(&b);
    let Some(real) = RealEngine::start() else {
        return;
    };
    let real_docker = |a: &[&str]| real.docker(a);
    let r = scenario(
        &Engine {
            docker: &real_docker,
            socket: real.path("docker.sock").display().to_string(),
        },
        &tar,
    );
    let keys = r.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    let differ: Vec<String> = keys
        .unwrap_or_default()
        .into_iter()
        .filter(|k| !k.starts_with('_') && b[k] != r[k])
        .map(|k| format!("{k}:\n  berth   {}\n  dockerd {}", b[&k], r[&k]))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// The health check of a container as berthd recorded it.
fn config_of(d: &TestDaemon, name: &str) -> Value {
    let out = d.docker(&["inspect", "-f", "{{json .Config.Healthcheck}}", name]);
    serde_json::from_str(out.ok().trim()).unwrap_or(Value::Null)
}

#[test]
fn health_survives_berthd_restart_and_speaks_berth_cli_and_docker_py() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    // berth's flags make the docker CLI's body.
    let flags = [
        "--health-cmd",
        "exit 0",
        "--health-interval",
        "300ms",
        "--health-timeout",
        "1m30s",
        "--health-retries",
        "4",
        "--health-start-period",
        "2s",
        "--health-start-interval",
        "100ms",
    ];
    let create = |cli: &dyn Fn(&[&str]) -> berth_tests::Output, name: &str| {
        let mut a = vec!["create", "--name", name, "--network", "none"];
        a.extend(flags);
        a.extend(["busybox", "sleep", "120"]);
        cli(&a).ok();
    };
    create(&|a| d.docker(a), "viadocker");
    create(&|a| d.berth(a), "viaberth");
    let want = json!({"Test": ["CMD-SHELL", "exit 0"], "Interval": 300_000_000_i64,
        "Timeout": 90_000_000_000_i64, "StartPeriod": 2_000_000_000_i64,
        "StartInterval": 100_000_000_i64, "Retries": 4});
    assert_eq!(config_of(&d, "viadocker"), want);
    assert_eq!(config_of(&d, "viaberth"), want);
    let bad = d.berth(&[
        "run",
        "--no-healthcheck",
        "--health-retries",
        "1",
        "busybox",
        "true",
    ]);
    assert!(
        bad.stderr
            .contains("--no-healthcheck conflicts with --health-* options"),
        "{bad:?}"
    );
    let neg = d.berth(&["run", "--health-interval", "-1s", "busybox", "true"]);
    assert!(
        neg.stderr.contains("--health-interval cannot be negative"),
        "{neg:?}"
    );
    // A restart of berthd keeps State.Health, and the probes go on.
    d.berth(&["start", "viaberth"]).ok();
    let status = |d: &TestDaemon| {
        let out = d.docker(&["inspect", "-f", "{{json .State.Health}}", "viaberth"]);
        serde_json::from_str::<Value>(out.ok().trim()).unwrap_or(Value::Null)
    };
    let deadline = Instant::now() + PATIENCE;
    while status(&d)["Status"] != "healthy" {
        assert!(Instant::now() < deadline, "never healthy: {}", status(&d));
        std::thread::sleep(Duration::from_millis(100));
    }
    let ps = d.berth(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.ok().contains("(healthy)"), "{ps:?}");
    d.restart();
    let before = status(&d);
    assert_eq!(before["Status"], "healthy", "{before}");
    let last = |h: &Value| {
        h["Log"]
            .as_array()
            .and_then(|l| l.last())
            .map(|e| e["Start"].clone())
    };
    let deadline = Instant::now() + PATIENCE;
    while last(&status(&d)) == last(&before) {
        assert!(
            Instant::now() < deadline,
            "no probe after the restart: {}",
            status(&d)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status(&d)["Status"], "healthy");
    // StartInterval came with API 1.44: an older client's is dropped, as dockerd does.
    for (v, kept) in [("1.43", false), ("1.44", true)] {
        let body = r#"{"Image":"busybox","Healthcheck":{"Test":["NONE"],"StartInterval":5000000}}"#;
        let (code, _, out) = d.request("POST", &format!("/v{v}/containers/create"), Some(body));
        assert_eq!(code, 201, "{out}");
        let id = serde_json::from_str::<Value>(&out).expect("id")["Id"].clone();
        let got = config_of(&d, id.as_str().unwrap_or(""));
        assert_eq!(got.get("StartInterval").is_some(), kept, "API {v}: {got}");
    }
    // Failures within the start period do not count; probes come every start interval.
    let early = [
        "run",
        "-d",
        "--name",
        "early",
        "--network",
        "none",
        "--health-cmd",
        "test -e /ok",
        "--health-start-period",
        "60s",
        "--health-start-interval",
        "100ms",
        "--health-interval",
        "30s",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "120",
    ];
    d.docker(&early).ok();
    let health = |d: &TestDaemon| {
        let out = d.docker(&["inspect", "-f", "{{json .State.Health}}", "early"]);
        serde_json::from_str::<Value>(out.ok().trim()).unwrap_or(Value::Null)
    };
    let deadline = Instant::now() + PATIENCE;
    while health(&d)["Log"].as_array().map_or(0, Vec::len) < 3 {
        assert!(Instant::now() < deadline, "no probes: {}", health(&d));
        std::thread::sleep(Duration::from_millis(100));
    }
    let h = health(&d);
    assert_eq!(
        (&h["Status"], &h["FailingStreak"]),
        (&json!("starting"), &json!(0)),
        "{h}"
    );
    assert!(
        h["Log"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["ExitCode"] == 1),
        "{h}"
    );
    d.docker(&["exec", "early", "touch", "/ok"]).ok();
    while health(&d)["Status"] != "healthy" {
        assert!(Instant::now() < deadline, "never healthy: {}", health(&d));
        std::thread::sleep(Duration::from_millis(100));
    }
    // docker-py's healthcheck reaches healthy.
    let py = d.python(
        r#"
import time
ct = c.containers.run('busybox', ['sleep', '120'], detach=True, network_mode='none',
    healthcheck={'test': ['CMD-SHELL', 'exit 0'], 'interval': 200000000, 'retries': 2})
for _ in range(300):
    h = c.api.inspect_container(ct.id)['State'].get('Health') or {}
    if h.get('Status') == 'healthy':
        break
    time.sleep(0.1)
print(h.get('Status'), ct.attrs['Config']['Healthcheck'])
ct.remove(force=True)
"#,
    );
    let out = py.ok();
    assert!(
        out.starts_with("healthy {'Test': ['CMD-SHELL', 'exit 0']"),
        "{out}"
    );
}
