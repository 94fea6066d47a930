//! berthd at scale (issue 19): 1,000 detached `sleep` containers without networking, started
//! through the API a few at once, are all listed by `ps` and each inspected; a `kill -9` of
//! berthd and a restart finds every one still running; `rm -f` of all of them leaves nothing
//! behind (no monitor, cgroup, mount, container folder or run-time state folder).
//!
//! Behaviour only, never durations (those are `cargo xtask bench --filter scale`). The
//! containers are unnamed, so berthd generates 1,000 names: it once had 440 and spun forever
//! looking for the 441st. `BERTH_SCALE_N` sets how many containers (default 1,000).

mod stress_support;

use berth_tests::TestDaemon;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use stress_support::{alive, leftovers, settle};

/// Clients calling berthd at once.
const CLIENTS: usize = 8;
/// How long the end state may take to settle (monitors finishing their clean-up).
const SETTLE: Duration = Duration::from_secs(120);

fn count() -> usize {
    std::env::var("BERTH_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// `f(i)` for every `i` below `n`, from [`CLIENTS`] threads at once; the failures' texts.
fn concurrently(n: usize, f: impl Fn(usize) -> Result<(), String> + Sync) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Err(e) = f(i) {
                    if let Ok(mut v) = failures.lock() {
                        v.push(e);
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap_or_default()
}

/// `docker run -d --network none busybox sleep 3600` through the API; the new id.
fn run_detached(d: &TestDaemon) -> Result<String, String> {
    let body = r#"{"Image":"busybox","Cmd":["sleep","3600"],"HostConfig":{"NetworkMode":"none"}}"#;
    let (status, _, out) = d.request("POST", "/containers/create", Some(body));
    if status != 201 {
        return Err(format!("create: {status} {out}"));
    }
    let id = serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v["Id"].as_str().map(str::to_string))
        .ok_or_else(|| format!("create answered {out}"))?;
    let (status, _, out) = d.request("POST", &format!("/containers/{id}/start"), None);
    if status != 204 {
        return Err(format!("start {id}: {status} {out}"));
    }
    Ok(id)
}

/// The ids `GET /containers/json` lists (running ones, as `ps`).
fn listed(d: &TestDaemon) -> BTreeSet<String> {
    let (_, _, body) = d.request("GET", "/containers/json", None);
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["Id"].as_str().map(str::to_string))
        .collect()
}

/// Inspects `id`: running, with a live init, under its generated name.
fn inspect_running(d: &TestDaemon, id: &str) -> Result<String, String> {
    let (status, _, body) = d.request("GET", &format!("/containers/{id}/json"), None);
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("inspect {id}: {e}"))?;
    let pid = v["State"]["Pid"].as_i64().unwrap_or(0);
    let name = v["Name"].as_str().unwrap_or("").to_string();
    if status != 200 || v["State"]["Running"] != true || !alive(pid) || name.len() < 3 {
        return Err(format!(
            "inspect {id}: {status}, running {}, pid {pid}, name {name:?}",
            v["State"]["Running"]
        ));
    }
    Ok(name)
}

/// Every container inspected at once; their names, which must all differ.
fn inspect_all(d: &TestDaemon, ids: &[String]) {
    let names = Mutex::new(BTreeSet::new());
    let bad = concurrently(ids.len(), |i| {
        let name = inspect_running(d, &ids[i])?;
        names.lock().map(|mut n| n.insert(name)).unwrap_or(false);
        Ok(())
    });
    assert!(
        bad.is_empty(),
        "{} inspect(s) wrong:\n{}",
        bad.len(),
        bad.join("\n")
    );
    let distinct = names.into_inner().map(|n| n.len()).unwrap_or(0);
    assert_eq!(distinct, ids.len(), "two containers got one name");
}

/// The run-time state folders left under the exec root.
fn state_dirs(d: &TestDaemon) -> Vec<String> {
    std::fs::read_dir(d.exec_root().join("containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| format!("state folder {}", e.path().display()))
                .collect()
        })
        .unwrap_or_default()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

#[test]
fn a_thousand_containers_start_list_survive_a_restart_and_go() {
    let n = count();
    let mut d = TestDaemon::start();
    d.import_busybox();

    let t = Instant::now();
    let ids = Mutex::new(Vec::with_capacity(n));
    let bad = concurrently(n, |_| {
        let id = run_detached(&d)?;
        ids.lock()
            .map(|mut v| v.push(id))
            .map_err(|e| e.to_string())
    });
    let ids = ids.into_inner().unwrap_or_default();
    assert!(
        bad.is_empty(),
        "{} of {n} runs failed; the first and last:\n{}\n{}\n--- berthd log tail ---\n{}",
        bad.len(),
        bad.first().map_or("", String::as_str),
        bad.last().map_or("", String::as_str),
        tail(&d.log())
    );
    eprintln!("{n} containers started in {:?}", t.elapsed());

    let want: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        listed(&d),
        want,
        "ps does not list exactly the started containers"
    );
    let ps = d.docker(&["ps", "-q"]);
    assert_eq!(ps.ok().lines().count(), n, "docker ps");
    inspect_all(&d, &ids);

    // kill -9 of berthd: the monitors live on, and the next berthd finds them all.
    d.kill9();
    let t = Instant::now();
    d.restart();
    eprintln!("berthd answered /_ping {:?} after its restart", t.elapsed());
    assert_eq!(listed(&d), want, "ps after a kill -9 and restart");
    eprintln!("... and listed all {n} {:?} after it", t.elapsed());
    inspect_all(&d, &ids);

    let t = Instant::now();
    let bad = concurrently(n, |i| {
        let (status, _, out) =
            d.request("DELETE", &format!("/containers/{}?force=1", ids[i]), None);
        (status == 204)
            .then_some(())
            .ok_or(format!("rm -f {}: {status} {out}", ids[i]))
    });
    assert!(
        bad.is_empty(),
        "{} removals failed:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!("{n} containers removed in {:?}", t.elapsed());
    let (_, _, all) = d.request("GET", "/containers/json?all=1", None);
    assert_eq!(all.trim(), "[]", "containers left after rm -f");
    let left = settle(SETTLE, || {
        let mut l = leftovers(&d, &ids);
        l.extend(state_dirs(&d));
        l
    });
    assert!(
        left.is_empty(),
        "left behind after rm -f:\n{}",
        left.join("\n")
    );
    assert!(
        !d.log().contains("panicked"),
        "berthd panicked:\n{}",
        tail(&d.log())
    );
}

/// berthd's `RLIMIT_NOFILE` (soft, hard), from `/proc/PID/limits`.
fn nofile_of(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default();
    let mut nums = line.split_whitespace().filter_map(|w| w.parse().ok());
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}

fn set_nofile(pid: u32, soft: u64, hard: u64) {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: prlimit on a process this test started, with a valid new limit and no old one.
    let rc = unsafe { libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, &r, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn berthd_raises_its_descriptor_limit_and_answers_when_out_of_them() {
    // Started with a soft limit below the hard one, as under systemd (1,024 by default).
    let (soft, hard) = nofile_of(std::process::id());
    let low = soft.min(1024).min(hard.saturating_sub(1)).max(256);
    set_nofile(std::process::id(), low, hard);
    let d = TestDaemon::start();
    set_nofile(std::process::id(), soft, hard);
    let pid = d.pid().expect("berthd runs");
    assert_eq!(
        nofile_of(pid),
        (hard, hard),
        "berthd raised its soft limit to the hard one"
    );
    d.import_busybox();
    let inside = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ulimit -n",
    ]);
    assert_eq!(
        inside.ok().trim(),
        low.to_string(),
        "containers keep the limit berthd started with"
    );

    // Out of descriptors: a client gets a clear error, not a hang; then all is well. The
    // limit is lowered to just above berthd's spare descriptor (the highest on /dev/null;
    // under a real limit it is always below it), and kept-alive clients fill what is free.
    let fds: BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let on_null = |fd: &&u64| {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .is_ok_and(|t| t == std::path::Path::new("/dev/null"))
    };
    let spare = fds.iter().filter(on_null).max().copied().unwrap_or(0);
    let lowest_free = (0..).find(|n| !fds.contains(n)).unwrap_or(0);
    set_nofile(pid, lowest_free.max(spare + 1), hard);
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..256 {
        let (status, text, stream) = ping_kept_alive(d.socket());
        if status != 200 {
            refused = Some((status, text));
            break;
        }
        held.extend(stream);
    }
    set_nofile(pid, hard, hard);
    drop(held);
    let (status, text) = refused.expect("berthd ran out of descriptors");
    assert_eq!(status, 500, "answer out of descriptors: {text}");
    assert!(text.contains("file descriptors"), "{text}");
    let t = Instant::now();
    let again = d.request("GET", "/_ping", None);
    assert_eq!(
        again.0,
        200,
        "berthd serves again ({:?}): {again:?}\n{}",
        t.elapsed(),
        tail(&d.log())
    );
}

/// `GET /_ping` on a new connection kept alive: the status, the answer's text, and the
/// connection (held open) when it was served.
fn ping_kept_alive(
    socket: &std::path::Path,
) -> (u16, String, Option<std::os::unix::net::UnixStream>) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
        return (0, "connect failed".into(), None);
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    buf.truncate(n);
    if !buf.starts_with(b"HTTP/1.1 200") {
        // An error closes the connection: its body may come in a later read.
        let _ = s.read_to_end(&mut buf);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text, Some(s))
}
