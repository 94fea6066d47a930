//! The scale rows (issue 19): how each cost grows with the number of running containers.
//!
//! At 0, 100 and 1,000 running `sleep` containers (`--network none`; with `--quick` 0, 5 and
//! 10), engine by engine: `run --rm --network none busybox true`, `ps`, `ps -a`, the daemon's
//! RSS (dockerd with containerd), each running container's monitor (berth-monitor, the
//! containerd shim) RSS and PSS, and for berth a `kill -9` of berthd, then a SIGTERM, each
//! until `/_ping` answers and until `ps` lists every container again; then `rm -f` of them
//! all (and, for berth, until its data root holds none of their files). Every row at the top
//! level is followed by its growth factor over the same row with none running. Only engines
//! with a daemon take part (Podman has none to grow).

use super::engines::{self, Engine, Kind};
use super::report::Row;
use super::scenarios::{row, Results};
use super::stats::{time_ms, Stats};
use super::Opts;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// API clients starting containers at once.
const CLIENTS: usize = 8;
/// At least this many samples of `run --rm` per level: the docker CLI's own time varies by
/// ±5 ms between series here, more than the growth the row is to show.
const RUN_SAMPLES: usize = 30;
/// How long a restarted berthd may take to list every container.
const RESTORE_PATIENCE: Duration = Duration::from_secs(120);

/// The measured quantities, in the order of the report.
const METRICS: &[(&str, &str)] = &[
    ("run --rm --network none busybox true", "ms"),
    ("run --rm --network none busybox true (berth CLI)", "ms"),
    ("ps", "ms"),
    ("ps -a", "ms"),
    ("daemon RSS (dockerd: + containerd)", "MB"),
    ("monitor RSS per running container", "MB"),
    ("monitor PSS per running container", "MB"),
    ("berthd kill -9, restart until /_ping answers", "ms"),
    (
        "berthd kill -9, restart until ps lists every container",
        "ms",
    ),
    ("berthd SIGTERM, restart until /_ping answers", "ms"),
    (
        "berthd SIGTERM, restart until ps lists every container",
        "ms",
    ),
];

fn levels(opts: &Opts) -> Vec<usize> {
    match &opts.levels {
        Some(l) if !l.is_empty() => l.clone(),
        _ if opts.quick => vec![0, 5, 10],
        _ => vec![0, 100, 1000],
    }
}

fn client(e: &Engine) -> Result<berth_api::Client> {
    let sock = e.socket.as_ref().context("no API socket")?;
    let mut c = berth_api::Client::new(&format!("unix://{}", sock.display()));
    c.negotiate()?;
    Ok(c)
}

/// `docker run -d --network none busybox:bench sleep 3600` through the API; the id.
fn run_detached(c: &mut berth_api::Client) -> Result<String> {
    let body = serde_json::json!({"Image": "busybox:bench", "Cmd": ["sleep", "3600"],
        "HostConfig": {"NetworkMode": "none"}});
    let v = c.json("POST", "/containers/create", &body)?.json()?;
    let id = v["Id"]
        .as_str()
        .context("create answered no Id")?
        .to_string();
    c.request("POST", &format!("/containers/{id}/start"), &[], None)?;
    Ok(id)
}

/// Starts containers on `e`, [`CLIENTS`] at once, until `ids` holds `want`.
pub(super) fn fill(e: &Engine, ids: &mut Vec<String>, want: usize) -> Result<()> {
    let need = want.saturating_sub(ids.len());
    let next = AtomicUsize::new(0);
    let made = Mutex::new(Vec::new());
    let failed = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                let r = client(e).and_then(|mut c| {
                    while next.fetch_add(1, Ordering::Relaxed) < need {
                        let id = run_detached(&mut c)?;
                        made.lock().map(|mut m| m.push(id)).ok();
                    }
                    Ok(())
                });
                if let Err(x) = r {
                    failed.lock().map(|mut f| f.replace(format!("{x:#}"))).ok();
                    next.store(need, Ordering::Relaxed);
                }
            });
        }
    });
    ids.extend(made.into_inner().unwrap_or_default());
    match failed.into_inner().ok().flatten() {
        Some(x) => bail!("starting containers: {x}"),
        None => Ok(()),
    }
}

/// How many containers `GET /containers/json` lists.
fn listed(e: &Engine) -> Result<usize> {
    let v = client(e)?.get("/containers/json")?;
    Ok(v.as_array().map_or(0, Vec::len))
}

/// PIDs of the processes named `name` that serve the engine rooted at `root` (their command
/// line names it, or they hold a file under it): other engines on the host do not count.
fn pids_of(name: &str, root: &Path) -> Vec<u32> {
    let needle = root.to_string_lossy().into_owned();
    engines::pids_named(name)
        .into_iter()
        .filter(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains(&needle)
                || std::fs::read_dir(format!("/proc/{p}/fd")).is_ok_and(|fds| {
                    fds.flatten().any(|f| {
                        std::fs::read_link(f.path())
                            .is_ok_and(|t| t.to_string_lossy().contains(&needle))
                    })
                })
        })
        .collect()
}

/// `n` samples of `run --rm` with the engine's CLI and, for berth, as many with berth's own
/// CLI, the two taken in turn (drift of the machine falls on both alike).
fn run_samples(
    opts: &Opts,
    bin: &Path,
    e: &Engine,
) -> (Result<Stats, String>, Option<Result<Stats, String>>) {
    let run = ["run", "--rm", "--network", "none", "busybox:bench", "true"];
    let own = (e.kind == Kind::Berth)
        .then_some(e.socket.as_ref())
        .flatten()
        .map(|s| format!("unix://{}", s.display()));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut err = None;
    for i in 0..opts.warmup + opts.n.max(RUN_SAMPLES) {
        let x = time_ms(&mut e.cmd(&run));
        let y = own.as_ref().map(|h| {
            time_ms(
                std::process::Command::new(bin.join("berth"))
                    .args(["-H", h])
                    .args(run),
            )
        });
        match (x, y.transpose()) {
            (Ok(x), Ok(y)) if i >= opts.warmup => {
                a.push(x);
                b.extend(y);
            }
            (Ok(_), Ok(_)) => {}
            (Err(x), _) | (_, Err(x)) => {
                err = Some(format!("{x:#}"));
                break;
            }
        }
    }
    let stats = |v: &[f64]| match &err {
        Some(x) => Err(x.clone()),
        None => Stats::of(v).ok_or_else(|| "no samples".to_string()),
    };
    (stats(&a), own.map(|_| stats(&b)))
}

/// `n` samples of `cmd` after `warmup` unmeasured ones.
fn samples(opts: &Opts, mut cmd: impl FnMut() -> Result<f64>) -> Result<Stats, String> {
    let mut v = Vec::new();
    for i in 0..opts.warmup + opts.n.max(1) {
        let ms = cmd().map_err(|x| format!("{x:#}"))?;
        if i >= opts.warmup {
            v.push(ms);
        }
    }
    Stats::of(&v).ok_or_else(|| "no samples".into())
}

/// berthd killed with SIGKILL (`term`: stopped with SIGTERM, its containers left running)
/// and started again: ms from the new start until `/_ping` answers, and until `ps` lists
/// `want` containers.
fn restart_berth(bin: &Path, e: &mut Engine, want: usize, term: bool) -> Result<(f64, f64)> {
    if term {
        e.stop();
    } else if let Some(mut child) = e.daemon.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let t0 = Instant::now();
    let (child, socket) = engines::spawn_berthd(bin, &e.root)?;
    e.daemon = Some(child);
    let ping = engines::wait_ping(&socket, Duration::from_secs(60))?;
    loop {
        if listed(e).unwrap_or(0) >= want {
            let all = t0.elapsed();
            return Ok((ping.as_secs_f64() * 1000.0, all.as_secs_f64() * 1000.0));
        }
        if t0.elapsed() > RESTORE_PATIENCE {
            bail!("berthd listed fewer than {want} containers after {RESTORE_PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The measurements of one engine at one level, in [`METRICS`] order (`None`: not measured).
fn measure(
    opts: &Opts,
    bin: &Path,
    e: &mut Engine,
    running: usize,
) -> Vec<Option<Result<Stats, String>>> {
    // Memory first, once the monitors have been idle long enough to give theirs back
    // (berth-monitor trims itself 1 s after its last activity).
    std::thread::sleep(Duration::from_secs(2));
    let mut rss = e
        .pid()
        .and_then(engines::rss_pss_mb)
        .map_or(0.0, |(r, _)| r);
    if e.kind == Kind::Docker {
        rss += pids_of("containerd", &e.root)
            .into_iter()
            .filter_map(engines::rss_pss_mb)
            .map(|(r, _)| r)
            .sum::<f64>();
    }
    let monitor = match e.kind {
        Kind::Berth => "berth-monitor",
        _ => "containerd-shim",
    };
    let (mut r, mut p) = (0.0, 0.0);
    for (rr, pp) in pids_of(monitor, &e.root)
        .into_iter()
        .filter_map(engines::rss_pss_mb)
    {
        r += rr;
        p += pp;
    }
    let per = |v: f64| (running > 0).then(|| Ok(Stats::single(v / running as f64)));
    let (run, own_cli) = run_samples(opts, bin, e);
    let mut out = vec![
        Some(run),
        own_cli,
        Some(samples(opts, || time_ms(&mut e.cmd(&["ps"])))),
        Some(samples(opts, || time_ms(&mut e.cmd(&["ps", "-a"])))),
        Some(Ok(Stats::single(rss))),
        per(r),
        per(p),
    ];
    if e.kind == Kind::Berth {
        for term in [false, true] {
            match restart_berth(bin, e, running, term) {
                Ok((ping, all)) => {
                    out.push(Some(Ok(Stats::single(ping))));
                    out.push(Some(Ok(Stats::single(all))));
                }
                Err(x) => {
                    out.push(Some(Err(format!("{x:#}"))));
                    out.push(Some(Err(format!("{x:#}"))));
                }
            }
        }
    }
    out
}

/// The scale rows for every engine with a daemon.
pub fn rows(opts: &Opts, bin: &Path, engines: &mut [Engine]) -> Vec<Row> {
    let levels = levels(opts);
    // (metric, level) → engine → result.
    let mut table: BTreeMap<(usize, usize), Results> = BTreeMap::new();
    let mut rm = Results::new();
    let mut files = Results::new();
    for e in engines.iter_mut().filter(|e| e.socket.is_some()) {
        let mut ids = Vec::new();
        for (li, &level) in levels.iter().enumerate() {
            eprintln!("bench: scale: {} with {level} running", e.name);
            let got = fill(e, &mut ids, level).map(|_| measure(opts, bin, e, level));
            for mi in 0..METRICS.len() {
                let cell = match &got {
                    Ok(m) => m.get(mi).cloned().flatten(),
                    Err(x) => Some(Err(format!("{x:#}"))),
                };
                if let Some(c) = cell {
                    table.entry((mi, li)).or_default().insert(e.name.into(), c);
                }
            }
            if got.is_err() {
                break;
            }
        }
        let mut args = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        let t0 = Instant::now();
        let removed = if ids.is_empty() {
            Err("no containers".to_string())
        } else {
            time_ms(&mut e.cmd(&args))
                .map(Stats::single)
                .map_err(|x| format!("{x:#}"))
        };
        if e.kind == Kind::Berth && removed.is_ok() {
            // berthd answers `rm` once the containers are gone; their files follow.
            let dir = e.root.join("data").join("containers");
            let gone = loop {
                let left = std::fs::read_dir(&dir).map_or(0, |d| d.count());
                if left == 0 {
                    break Ok(Stats::single(t0.elapsed().as_secs_f64() * 1000.0));
                }
                if t0.elapsed() > RESTORE_PATIENCE {
                    break Err(format!("{left} container folders left"));
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            files.insert(e.name.into(), gone);
        }
        rm.insert(e.name.into(), removed);
    }
    let mut out = Vec::new();
    for (mi, (metric, unit)) in METRICS.iter().enumerate() {
        for (li, level) in levels.iter().enumerate() {
            if let Some(r) = table.get(&(mi, li)) {
                out.push(row(
                    &format!("scale: {metric}, {level} running"),
                    unit,
                    r.clone(),
                ));
            }
        }
        if let Some(g) = growth(&table, mi, levels.len().saturating_sub(1)) {
            let top = levels.last().copied().unwrap_or(0);
            out.push(row(
                &format!("scale: {metric}, growth {top} vs 0 running"),
                "×",
                g,
            ));
        }
    }
    let all = levels.last().copied().unwrap_or(0);
    out.push(row(
        &format!("scale: rm -f of all {all} (one call)"),
        "ms",
        rm,
    ));
    out.push(row(
        &format!("scale: rm -f of all {all}, until their files are gone"),
        "ms",
        files,
    ));
    out
}

/// Per engine, the median at level `top` over the median with none running (level 0; for
/// the per-container rows, the lowest level measured).
fn growth(table: &BTreeMap<(usize, usize), Results>, mi: usize, top: usize) -> Option<Results> {
    let hi = table.get(&(mi, top))?;
    let lo = (0..top).find_map(|li| table.get(&(mi, li)))?;
    let mut g = Results::new();
    for (name, r) in hi {
        if let (Ok(h), Some(Ok(l))) = (r, lo.get(name)) {
            if l.median > 0.0 {
                g.insert(name.clone(), Ok(Stats::single(h.median / l.median)));
            }
        }
    }
    (!g.is_empty()).then_some(g)
}
