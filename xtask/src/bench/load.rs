//! The concurrency rows (issue 19): many clients at once against one daemon.
//!
//! - 50 clients each doing `run --rm --network none busybox true` at the same time (with
//!   `--quick`, 10): containers per second over the whole burst, and the p50 and p99 latency
//!   of one run; for berth also with its own CLI (`berth -H unix://… run --rm …`), whose
//!   client costs far less CPU than the docker CLI's (on two cores the clients' CPU is most
//!   of a burst's).
//! - `events` with 20 subscribers while 100 containers start (with `--quick`, 5 and 10):
//!   how long from the first start until every subscriber has seen every `start` event.
//!
//! Engine by engine, every engine with a daemon socket (Podman, daemonless, runs only the
//! first). Figures for people, never asserted.

use super::engines::Engine;
use super::report::Row;
use super::scenarios::{row, Results};
use super::stats::{time_ms, Stats};
use super::Opts;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a subscriber waits for the events it expects.
const EVENTS_PATIENCE: Duration = Duration::from_secs(120);

/// The `q`-quantile (0..=1) of `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1));
    s.get(rank - 1).copied()
}

/// What each client runs.
const RUN: [&str; 6] = ["run", "--rm", "--network", "none", "busybox:bench", "true"];

/// `clients` threads each run `runs` containers with `cmd()` (a `run --rm`): (containers/s,
/// latencies).
fn burst(
    cmd: &(dyn Fn() -> Command + Sync),
    clients: usize,
    runs: usize,
) -> Result<(f64, Vec<f64>)> {
    let lat = Mutex::new(Vec::new());
    let failed = Mutex::new(None);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                for _ in 0..runs {
                    match time_ms(&mut cmd()) {
                        Ok(ms) => lat.lock().map(|mut l| l.push(ms)).unwrap_or(()),
                        Err(x) => {
                            failed.lock().map(|mut f| f.replace(format!("{x:#}"))).ok();
                            return;
                        }
                    }
                }
            });
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    if let Some(x) = failed.into_inner().ok().flatten() {
        bail!("{x}");
    }
    let lat = lat.into_inner().unwrap_or_default();
    Ok((lat.len() as f64 / wall.max(1e-9), lat))
}

/// A `GET /events` stream on `socket`, counting the container `start` events it carries.
struct Subscriber(UnixStream);

impl Subscriber {
    fn open(socket: &Path) -> Result<Subscriber> {
        let mut s = UnixStream::connect(socket).context("connecting for /events")?;
        s.write_all(b"GET /events HTTP/1.1\r\nHost: bench\r\n\r\n")?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(Subscriber(s))
    }

    /// Reads until `want` `start` events have come (or the patience is over); the moment.
    fn until(mut self, want: usize) -> Result<Instant> {
        let needle = br#""Action":"start""#;
        let (mut seen, mut buf, mut tail) = (0, [0u8; 16384], Vec::new());
        let deadline = Instant::now() + EVENTS_PATIENCE;
        while seen < want {
            if Instant::now() > deadline {
                bail!("a subscriber saw {seen} of {want} start events");
            }
            let n = match self.0.read(&mut buf) {
                Ok(0) => bail!("the events stream ended after {seen} starts"),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) => return Err(e.into()),
            };
            // Keep the end of the last read: a match may straddle two reads.
            tail.extend_from_slice(&buf[..n]);
            seen += tail.windows(needle.len()).filter(|w| w == needle).count();
            let keep = tail.len().saturating_sub(needle.len() - 1);
            tail.drain(..keep);
        }
        Ok(Instant::now())
    }
}

/// `subs` subscribers to `/events` while `starts` containers start (8 API clients at
/// once): ms from the first start until every subscriber has seen every start.
fn events_fanout(e: &Engine, subs: usize, starts: usize) -> Result<f64> {
    let socket = e.socket.as_ref().context("no API socket")?;
    let subscribers: Vec<Subscriber> = (0..subs)
        .map(|_| Subscriber::open(socket))
        .collect::<Result<_>>()?;
    // The subscriptions are registered before the first start.
    std::thread::sleep(Duration::from_millis(200));
    let mut ids = Vec::new();
    let t0 = Instant::now();
    let seen = std::thread::scope(|s| {
        let waiting: Vec<_> = subscribers
            .into_iter()
            .map(|sub| s.spawn(move || sub.until(starts)))
            .collect();
        let filled = super::scale::fill(e, &mut ids, starts);
        let ends: Vec<Result<Instant>> = waiting
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
            })
            .collect();
        filled.map(|_| ends)
    });
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        let _ = e.cmd(&args).output();
    }
    let mut last = t0;
    for end in seen? {
        last = last.max(end?);
    }
    Ok(last.duration_since(t0).as_secs_f64() * 1000.0)
}

/// One burst's three rows (containers/s, p50, p99), filled engine by engine.
#[derive(Default)]
struct BurstRows {
    rate: Results,
    p50: Results,
    p99: Results,
}

impl BurstRows {
    fn add(&mut self, name: &str, r: Result<(f64, Vec<f64>)>) {
        match r {
            Ok((per_s, lat)) => {
                self.rate.insert(name.into(), Ok(Stats::single(per_s)));
                let q = |x| {
                    quantile(&lat, x)
                        .map(Stats::single)
                        .ok_or("no samples".into())
                };
                self.p50.insert(name.into(), q(0.5));
                self.p99.insert(name.into(), q(0.99));
            }
            Err(x) => {
                let x = format!("{x:#}");
                for r in [&mut self.rate, &mut self.p50, &mut self.p99] {
                    r.insert(name.into(), Err(x.clone()));
                }
            }
        }
    }

    fn rows(self, name: &str) -> Vec<Row> {
        vec![
            row(&format!("{name}: containers/s"), "/s", self.rate),
            row(&format!("{name}: p50 latency"), "ms", self.p50),
            row(&format!("{name}: p99 latency"), "ms", self.p99),
        ]
    }
}

/// The concurrency rows for every engine (the events row only for engines with a socket);
/// `bin` holds the berth CLI.
pub fn rows(opts: &Opts, bin: &Path, engines: &[Engine]) -> Vec<Row> {
    let (clients, runs) = if opts.quick { (10, 1) } else { (50, 2) };
    let (subs, starts) = if opts.quick { (5, 10) } else { (20, 100) };
    let (mut docker_cli, mut own_cli, mut fan) =
        (BurstRows::default(), BurstRows::default(), Results::new());
    for e in engines {
        eprintln!("bench: concurrency: {} with {clients} clients", e.name);
        docker_cli.add(e.name, burst(&|| e.cmd(&RUN), clients, runs));
        if let (Some(sock), "berth") = (&e.socket, e.name) {
            eprintln!("bench: concurrency: berth CLI with {clients} clients");
            let host = format!("unix://{}", sock.display());
            let berth = || {
                let mut c = Command::new(bin.join("berth"));
                c.args(["-H", &host]).args(RUN);
                c
            };
            own_cli.add(e.name, burst(&berth, clients, runs));
        }
        if e.socket.is_some() {
            eprintln!("bench: concurrency: {} events, {subs} subscribers", e.name);
            let r = events_fanout(e, subs, starts).map(Stats::single);
            fan.insert(e.name.into(), r.map_err(|x| format!("{x:#}")));
        }
    }
    let name = format!("concurrency: {clients} clients × {runs} run --rm --network none true");
    let mut rows = docker_cli.rows(&name);
    rows.extend(own_cli.rows(&format!("{name} (berth CLI)")));
    rows.push(row(
        &format!(
            "events: {subs} subscribers while {starts} containers start, until all saw every start"
        ),
        "ms",
        fan,
    ));
    rows
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(super::quantile(&v, 0.5), Some(50.0));
        assert_eq!(super::quantile(&v, 0.99), Some(99.0));
        assert_eq!(super::quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(super::quantile(&[], 0.5), None);
    }
}
