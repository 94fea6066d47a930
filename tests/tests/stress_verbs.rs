//! Concurrency stress of the lifecycle verbs (issue 17): one berthd, a few busybox
//! containers, then hundreds of random verbs at once on the same containers — start, stop
//! (`-t 0`/`-t 1`), kill, restart, pause, unpause, rename, update, exec, wait, `rm -f` and
//! create — through the API directly, berth's CLI and the docker CLI. Each verb is
//! serialised per container by its op lock (`daemon/src/containers/lock.rs`); this checks the
//! result: no 5xx that is not a clean Docker-style error, no call left hanging, berthd alive
//! without a panic in its log, a consistent final state (`Running` ⇔ the init is alive,
//! paused ⇒ running, list and inspect agree), and after `rm -f` of everything no mount,
//! cgroup, veth or monitor left.
//!
//! `BERTH_STRESS_ROUNDS` (default 1) rounds of `BERTH_STRESS_OPS` (default 300) verbs each;
//! `BERTH_STRESS_SEED` replays a run (the seed is printed, and again on failure).

mod stress_support;

use berth_tests::TestDaemon;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use stress_support::{alive, leftovers, settle};

/// Containers played with at once.
const SLOTS: usize = 4;
/// Client threads issuing verbs at once.
const WORKERS: usize = 8;
/// How long one verb may take before it counts as hung (stop -t 1 plus a start is ~1 s).
const CALL_PATIENCE: Duration = Duration::from_secs(60);
/// How long the final state may take to settle (an exit being recorded, a rootfs going).
const SETTLE: Duration = Duration::from_secs(20);

/// splitmix64: small, seedable, good enough to pick verbs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the test remembers of the run, printed on failure.
struct Run {
    seed: u64,
    /// Every container id ever created (for the cgroup check).
    ids: Mutex<Vec<String>>,
    /// The current container of each slot.
    slots: Mutex<Vec<String>>,
    /// Problems found by the workers.
    problems: Mutex<Vec<String>>,
    /// Calls made, and 5xx answers seen.
    calls: AtomicUsize,
    server_errors: Mutex<Vec<String>>,
    names: AtomicUsize,
    /// Per verb: calls that succeeded, and that were refused.
    tally: Mutex<std::collections::BTreeMap<String, (u32, u32)>>,
    /// `wait` calls still blocked (they answer once their container stops or goes).
    waits: Mutex<Vec<(String, mpsc::Receiver<()>)>>,
}

impl Run {
    fn count(&self, verb: &str, ok: bool) {
        if let Ok(mut t) = self.tally.lock() {
            let e = t.entry(verb.to_string()).or_default();
            if ok {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    fn problem(&self, p: String) {
        eprintln!("PROBLEM (seed {}): {p}", self.seed);
        if let Ok(mut v) = self.problems.lock() {
            v.push(p);
        }
    }
    fn slot(&self, i: usize) -> String {
        self.slots.lock().map(|s| s[i].clone()).unwrap_or_default()
    }
}

/// The one client call a verb makes, over one of three clients.
#[derive(Clone, Copy)]
enum Client {
    Api,
    Berth,
    Docker,
}

/// Runs `cmd` with a deadline; `None` when it had to be killed.
fn run_bounded(mut cmd: Command, patience: Duration) -> Option<(i32, String, String)> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(patience) {
        Ok(Ok(o)) => Some((
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )),
        Ok(Err(_)) => Some((-1, String::new(), String::new())),
        Err(_) => {
            // SAFETY: kill(2) of the client process this test spawned (not yet reaped).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            None
        }
    }
}

/// Issues one verb; reports hangs, 5xx answers without a Docker-style message, and CLI
/// crashes.
fn call(d: &TestDaemon, run: &Run, client: Client, verb: &str, id: &str, rng: &mut Rng) {
    run.calls.fetch_add(1, Ordering::Relaxed);
    let what = format!("{verb} {}", &id[..12.min(id.len())]);
    match client {
        Client::Api => {
            let (method, path, body) = api_request(verb, id, rng, run);
            let (tx, rx) = mpsc::channel();
            let socket = d.socket().to_path_buf();
            let (m, p, b) = (method.to_string(), path.clone(), body.clone());
            std::thread::spawn(move || {
                let _ = tx.send(request(&socket, &m, &p, b.as_deref()));
            });
            match rx.recv_timeout(CALL_PATIENCE) {
                Ok((status, body)) => {
                    run.count(verb, (200..300).contains(&status));
                    if status == 0 {
                        run.problem(format!("api {what}: no answer ({body})"));
                    } else if status >= 500 {
                        let clean = serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| v["message"].as_str().map(str::to_string));
                        match clean {
                            Some(m) => {
                                push(&run.server_errors, format!("api {what}: {status} {m}"))
                            }
                            None => run.problem(format!("api {what}: {status} {body:?}")),
                        }
                    }
                }
                Err(_) => run.problem(format!("api {what} {path}: no answer in {CALL_PATIENCE:?}")),
            }
        }
        Client::Berth | Client::Docker => {
            let args = cli_args(verb, id, rng, run);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let (name, cmd) = match client {
                Client::Berth => ("berth", d.berth_cmd(&argv)),
                _ => ("docker", d.docker_cmd(&argv)),
            };
            match run_bounded(cmd, CALL_PATIENCE) {
                None => run.problem(format!("{name} {args:?}: no answer in {CALL_PATIENCE:?}")),
                Some((code, _, err)) => {
                    run.count(verb, code == 0);
                    if err.contains("panicked") {
                        run.problem(format!("{name} {args:?} panicked: {err}"));
                    }
                    if err.contains("Error response from daemon") && is_5xx_text(&err) {
                        push(
                            &run.server_errors,
                            format!("{name} {args:?}: {}", err.trim()),
                        );
                    }
                }
            }
        }
    }
}

/// Whether a CLI's error text is one of the daemon's internal errors (the CLIs do not print
/// the status; these are the texts berthd's 500s carry).
fn is_5xx_text(err: &str) -> bool {
    [
        "internal",
        "connecting to the container's monitor",
        "monitor",
    ]
    .iter()
    .any(|k| err.contains(k))
}

fn push(v: &Mutex<Vec<String>>, s: String) {
    eprintln!("5xx: {s}");
    if let Ok(mut v) = v.lock() {
        v.push(s);
    }
}

fn new_name(run: &Run) -> String {
    format!("sv{}", run.names.fetch_add(1, Ordering::Relaxed))
}

fn api_request(
    verb: &str,
    id: &str,
    rng: &mut Rng,
    run: &Run,
) -> (&'static str, String, Option<String>) {
    let c = format!("/containers/{id}");
    match verb {
        "start" => ("POST", format!("{c}/start"), None),
        "stop0" => ("POST", format!("{c}/stop?t=0"), None),
        "stop1" => ("POST", format!("{c}/stop?t=1"), None),
        "kill" => ("POST", format!("{c}/kill"), None),
        "restart" => ("POST", format!("{c}/restart?t=0"), None),
        "pause" => ("POST", format!("{c}/pause"), None),
        "unpause" => ("POST", format!("{c}/unpause"), None),
        "rename" => ("POST", format!("{c}/rename?name={}", new_name(run)), None),
        "update" => {
            let mem = (16 + rng.below(48)) << 20;
            (
                "POST",
                format!("{c}/update"),
                Some(format!(
                    "{{\"Memory\":{mem},\"MemorySwap\":-1,\"CpuShares\":{}}}",
                    512 + rng.below(512)
                )),
            )
        }
        "exec" => (
            "POST",
            format!("{c}/exec"),
            Some("{\"Cmd\":[\"true\"],\"AttachStdout\":true}".into()),
        ),
        "wait" => ("POST", format!("{c}/wait?condition=next-exit"), None),
        "inspect" => ("GET", format!("{c}/json"), None),
        _ => ("DELETE", format!("{c}?force=1"), None),
    }
}

fn cli_args(verb: &str, id: &str, rng: &mut Rng, run: &Run) -> Vec<String> {
    let v: Vec<String> = match verb {
        "start" => vec!["start".into(), id.into()],
        "stop0" => vec!["stop".into(), "-t".into(), "0".into(), id.into()],
        "stop1" => vec!["stop".into(), "-t".into(), "1".into(), id.into()],
        "kill" => vec!["kill".into(), id.into()],
        "restart" => vec!["restart".into(), "-t".into(), "0".into(), id.into()],
        "pause" => vec!["pause".into(), id.into()],
        "unpause" => vec!["unpause".into(), id.into()],
        "rename" => vec!["rename".into(), id.into(), new_name(run)],
        "update" => vec![
            "update".into(),
            "--cpu-shares".into(),
            (512 + rng.below(512)).to_string(),
            id.into(),
        ],
        "exec" => vec!["exec".into(), id.into(), "true".into()],
        "wait" => vec!["wait".into(), id.into()],
        "inspect" => vec!["inspect".into(), id.into()],
        _ => vec!["rm".into(), "-f".into(), id.into()],
    };
    v
}

/// One raw request with a deadline on the answer: (status, body).
fn request(
    socket: &std::path::Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return (0, e.to_string()),
    };
    let _ = s.set_read_timeout(Some(CALL_PATIENCE));
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, "write failed".into());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked bodies: the JSON error is on one line of its own.
    let body = body
        .lines()
        .find(|l| l.starts_with('{'))
        .map(str::to_string)
        .unwrap_or(body);
    (status, body)
}

/// Creates and starts a container for slot `i`: `sleep` on the default bridge (a veth) or
/// without networking; its init ignores SIGTERM (PID 1), so stop -t 1 ends with SIGKILL.
fn fresh(d: &TestDaemon, run: &Run, i: usize) -> Option<String> {
    let name = new_name(run);
    let mut args = vec!["run", "-d", "--name", &name];
    if i % 2 == 1 {
        args.extend(["--network", "none"]);
    }
    args.extend(["busybox", "sleep", "300"]);
    let out = d.docker(&args);
    let id = out.stdout.trim().to_string();
    if id.len() != 64 {
        // A create can lose a race with nothing here; a failure to run is worth a look.
        run.problem(format!("run {name}: {out:?}"));
        return None;
    }
    if let Ok(mut ids) = run.ids.lock() {
        ids.push(id.clone());
    }
    Some(id)
}

const VERBS: &[(&str, usize)] = &[
    ("start", 12),
    ("stop0", 8),
    ("stop1", 4),
    ("kill", 8),
    ("restart", 8),
    ("pause", 8),
    ("unpause", 8),
    ("rename", 6),
    ("update", 6),
    ("exec", 8),
    ("wait", 4),
    ("inspect", 4),
    ("rm", 3),
    ("create", 2),
];

fn pick_verb(rng: &mut Rng) -> &'static str {
    let total: usize = VERBS.iter().map(|(_, w)| w).sum();
    let mut n = rng.below(total);
    for (v, w) in VERBS {
        if n < *w {
            return v;
        }
        n -= w;
    }
    "start"
}

fn worker(d: &TestDaemon, run: &Run, mut rng: Rng, ops: usize) {
    for _ in 0..ops {
        let slot = rng.below(SLOTS);
        let verb = pick_verb(&mut rng);
        if verb == "create" {
            // A new container in the slot; the old one is removed at the end if still there.
            if let Some(id) = fresh(d, run, slot) {
                if let Ok(mut s) = run.slots.lock() {
                    s[slot] = id;
                }
            }
            continue;
        }
        let id = run.slot(slot);
        let client = match rng.below(3) {
            0 => Client::Api,
            1 => Client::Berth,
            _ => Client::Docker,
        };
        if verb == "exec" && matches!(client, Client::Api) {
            // exec through the API is create + start; the CLIs do both.
            exec_api(d, run, &id);
            continue;
        }
        if verb == "wait" {
            wait_in_background(d, run, client, &id);
            continue;
        }
        call(d, run, client, verb, &id, &mut rng);
        if verb == "rm" {
            // The slot gets a new container (others may still be acting on the old one).
            if let Some(id) = fresh(d, run, slot) {
                if let Ok(mut s) = run.slots.lock() {
                    s[slot] = id;
                }
            }
        }
    }
}

/// A `wait` blocks until its container stops: it runs on a thread of its own, and must have
/// answered soon after everything was removed.
fn wait_in_background(d: &TestDaemon, run: &Run, client: Client, id: &str) {
    run.calls.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel();
    let what = format!("{} wait {id}", ["api", "berth", "docker"][client as usize]);
    match client {
        Client::Api => {
            let socket = d.socket().to_path_buf();
            let path = format!("/containers/{id}/wait?condition=next-exit");
            std::thread::spawn(move || {
                let _ = request(&socket, "POST", &path, None);
                let _ = tx.send(());
            });
        }
        Client::Berth | Client::Docker => {
            let cmd = match client {
                Client::Berth => d.berth_cmd(&["wait", id]),
                _ => d.docker_cmd(&["wait", id]),
            };
            std::thread::spawn(move || {
                let _ = run_bounded(cmd, Duration::from_secs(600));
                let _ = tx.send(());
            });
        }
    }
    if let Ok(mut w) = run.waits.lock() {
        w.push((what, rx));
    }
}

fn exec_api(d: &TestDaemon, run: &Run, id: &str) {
    run.calls.fetch_add(1, Ordering::Relaxed);
    let (status, body) = request(
        d.socket(),
        "POST",
        &format!("/containers/{id}/exec"),
        Some("{\"Cmd\":[\"true\"]}"),
    );
    if status >= 500 || status == 0 {
        run.problem(format!("api exec create: {status} {body}"));
        return;
    }
    let Some(exec) = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["Id"].as_str().map(str::to_string))
    else {
        return;
    };
    let (status, body) = request(
        d.socket(),
        "POST",
        &format!("/exec/{exec}/start"),
        Some("{\"Detach\":true}"),
    );
    if status >= 500 || status == 0 {
        let clean = serde_json::from_str::<Value>(&body).is_ok();
        if clean {
            push(
                &run.server_errors,
                format!("api exec start: {status} {body}"),
            );
        } else {
            run.problem(format!("api exec start: {status} {body}"));
        }
    }
}

/// The inconsistencies of the daemon's current state (empty when consistent).
fn inconsistencies(d: &TestDaemon) -> Vec<String> {
    let mut out = Vec::new();
    let (status, body) = request(d.socket(), "GET", "/containers/json?all=1", None);
    let Ok(Value::Array(list)) = serde_json::from_str::<Value>(&body) else {
        return vec![format!("list: {status} {body}")];
    };
    for s in list {
        let id = s["Id"].as_str().unwrap_or("").to_string();
        let (st, body) = request(d.socket(), "GET", &format!("/containers/{id}/json"), None);
        let Ok(v) = serde_json::from_str::<Value>(&body) else {
            out.push(format!("inspect {id}: {st} {body}"));
            continue;
        };
        let state = &v["State"];
        let running = state["Running"].as_bool().unwrap_or(false);
        let paused = state["Paused"].as_bool().unwrap_or(false);
        let pid = state["Pid"].as_i64().unwrap_or(0);
        if running != alive(pid) {
            out.push(format!(
                "{id}: Running {running} but pid {pid} alive {}",
                alive(pid)
            ));
        }
        if paused && !running {
            out.push(format!("{id}: paused but not running"));
        }
        if s["State"] != state["Status"] {
            out.push(format!(
                "{id}: list says {} inspect says {}",
                s["State"], state["Status"]
            ));
        }
        if v["Name"] != s["Names"][0] {
            out.push(format!(
                "{id}: list names {} inspect {}",
                s["Names"], v["Name"]
            ));
        }
    }
    out
}

fn round(d: &TestDaemon, seed: u64, ops: usize) {
    let run = Arc::new(Run {
        seed,
        ids: Mutex::new(Vec::new()),
        slots: Mutex::new(Vec::new()),
        problems: Mutex::new(Vec::new()),
        calls: AtomicUsize::new(0),
        server_errors: Mutex::new(Vec::new()),
        names: AtomicUsize::new(0),
        waits: Mutex::new(Vec::new()),
        tally: Mutex::new(std::collections::BTreeMap::new()),
    });
    let slots: Vec<String> = (0..SLOTS)
        .map(|i| {
            fresh(d, &run, i)
                .unwrap_or_else(|| panic!("seed {seed}: creating the containers:\n{}", d.log()))
        })
        .collect();
    *run.slots.lock().expect("slots") = slots;
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let run = &run;
            let rng = Rng(seed ^ (w as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
            s.spawn(move || worker(d, run, rng, ops / WORKERS));
        }
    });
    let took = started.elapsed();
    let calls = run.calls.load(Ordering::Relaxed);
    eprintln!("seed {seed}: {calls} calls in {took:?}");
    if let Ok(t) = run.tally.lock() {
        eprintln!("(succeeded, refused) per verb: {t:?}");
    }
    let fail = |what: &str, details: &[String]| -> ! {
        panic!(
            "seed {seed} (BERTH_STRESS_SEED={seed} replays it): {what}:\n{}\n--- berthd log tail ---\n{}",
            details.join("\n"),
            tail(&d.log(), 80)
        )
    };
    let problems = run.problems.lock().map(|p| p.clone()).unwrap_or_default();
    if !problems.is_empty() {
        fail("calls went wrong", &problems);
    }
    let pid = d.pid().unwrap_or(0);
    if !alive(i64::from(pid)) || request(d.socket(), "GET", "/_ping", None).0 != 200 {
        fail("berthd is gone", &[]);
    }
    if d.log().contains("panicked") {
        fail("berthd panicked", &[]);
    }
    let bad = settle(SETTLE, || inconsistencies(d));
    if !bad.is_empty() {
        fail("inconsistent state", &bad);
    }
    // Remove everything (the CLIs' rm -f, one call for all).
    let (_, body) = request(d.socket(), "GET", "/containers/json?all=1", None);
    let all: Vec<String> = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["Id"].as_str().map(str::to_string))
        .collect();
    if !all.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(all.iter().map(String::as_str));
        match run_bounded(d.docker_cmd(&args), CALL_PATIENCE) {
            Some((0, _, _)) => {}
            other => fail("rm -f of everything", &[format!("{other:?}")]),
        }
    }
    let ids = run.ids.lock().map(|i| i.clone()).unwrap_or_default();
    let waits = std::mem::take(&mut *run.waits.lock().expect("waits"));
    let deadline = Instant::now() + SETTLE;
    let hung: Vec<String> = waits
        .into_iter()
        .filter(|(_, rx)| {
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .is_err()
        })
        .map(|(what, _)| what)
        .collect();
    if !hung.is_empty() {
        fail("waits still blocked after everything was removed", &hung);
    }
    let left = settle(SETTLE, || leftovers(d, &ids));
    if !left.is_empty() {
        fail("left behind after rm -f", &left);
    }
    let errs = run
        .server_errors
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    if !errs.is_empty() {
        fail("5xx answers", &errs);
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn random_concurrent_verbs_keep_state_consistent() {
    let rounds = env_num("BERTH_STRESS_ROUNDS", 1);
    let ops = env_num("BERTH_STRESS_OPS", 300) as usize;
    let seed = env_num(
        "BERTH_STRESS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    eprintln!("stress_verbs: seed {seed}, {rounds} round(s) of {ops} verbs");
    let d = TestDaemon::start();
    d.import_busybox();
    for r in 0..rounds {
        let s = seed.wrapping_add(r);
        eprintln!("round {r}: seed {s}");
        round(&d, s, ops);
    }
}
