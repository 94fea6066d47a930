//! The container rows: 100 creates (through the Engine API, and through each engine's CLI),
//! `ps`/`images` with 100 containers, one batched `rm`, and memory (daemon idle, monitor per
//! running container).

use super::engines::{self, Engine, Kind};
use super::report::Row;
use super::scenarios::{row, Results};
use super::stats::{time_fn, time_ms, Stats};
use super::Opts;
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// 100 sequential `POST /containers/create` on the engine's socket, one connection per
/// request as a CLI makes (negotiation done first, untimed); the containers are then removed
/// (untimed). This is the daemon's cost of a create without any client's start-up.
fn api_creates(e: &Engine) -> Result<f64> {
    let sock = e.socket.as_ref().context("no API socket (daemonless)")?;
    let mut client = berth_api::Client::new(&format!("unix://{}", sock.display()));
    client.negotiate()?;
    let body = serde_json::json!({"Image": "busybox:bench", "Cmd": ["true"]});
    let mut ids = Vec::new();
    let made = time_fn(|| {
        for _ in 0..100 {
            let v = client.json("POST", "/containers/create", &body)?.json()?;
            ids.push(v["Id"].as_str().unwrap_or("").to_string());
        }
        Ok(())
    });
    for id in &ids {
        let _ = client.request("DELETE", &format!("/containers/{id}"), &[], None);
    }
    made
}

/// Creates, ps, images and rm with 100 containers.
pub fn create_ps_rm(opts: &Opts, engines: &[&Engine]) -> Vec<Row> {
    let mut api = Results::new();
    for e in engines {
        api.insert(
            e.name.into(),
            api_creates(e)
                .map(Stats::single)
                .map_err(|x| format!("{x:#}")),
        );
    }
    let mut create = Results::new();
    let mut ps = Results::new();
    let mut images = Results::new();
    let mut rm = Results::new();
    for e in engines {
        let mut ids = Vec::new();
        let made = time_fn(|| {
            for _ in 0..100 {
                let out = e.cmd(&["create", "busybox:bench", "true"]).output()?;
                if !out.status.success() {
                    bail!(
                        "create failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
            }
            Ok(())
        });
        create.insert(
            e.name.into(),
            made.map(Stats::single).map_err(|x| format!("{x:#}")),
        );
        let sample = |args: &[&str]| -> Result<Stats, String> {
            let s: Result<Vec<f64>> = (0..opts.n.max(1))
                .map(|_| time_ms(&mut e.cmd(args)))
                .collect();
            s.map_err(|x| format!("{x:#}"))
                .and_then(|s| Stats::of(&s).ok_or_else(|| "no samples".into()))
        };
        ps.insert(e.name.into(), sample(&["ps", "-a"]));
        images.insert(e.name.into(), sample(&["images"]));
        let mut args: Vec<&str> = vec!["rm"];
        args.extend(ids.iter().map(String::as_str));
        rm.insert(
            e.name.into(),
            time_ms(&mut e.cmd(&args))
                .map(Stats::single)
                .map_err(|x| format!("{x:#}")),
        );
    }
    vec![
        row(
            "create busybox true ×100 via the API (sequential, no CLI)",
            "ms total",
            api,
        ),
        row(
            "create busybox true ×100 via the docker/podman CLI (sequential)",
            "ms total",
            create,
        ),
        row("ps -a with 100 containers", "ms", ps),
        row("images with 100 containers", "ms", images),
        row("rm of 100 containers (one call)", "ms", rm),
    ]
}

/// Daemon RSS when idle, and monitor RSS per container with 20 running.
pub fn memory(engines: &[&Engine]) -> Vec<Row> {
    let mut idle = Results::new();
    let mut monitors = Results::new();
    for e in engines {
        if let Some(pid) = e.pid() {
            let mut mb = engines::rss_pss_mb(pid).map(|(rss, _)| rss).unwrap_or(0.0);
            if e.kind == Kind::Docker {
                mb += engines::pids_named("containerd")
                    .iter()
                    .filter_map(|p| engines::rss_pss_mb(*p))
                    .map(|(r, _)| r)
                    .sum::<f64>();
            }
            idle.insert(e.name.into(), Ok(Stats::single(mb)));
        }
        let mut ids = Vec::new();
        let started: Result<()> = (0..20).try_for_each(|_| {
            let out = e
                .cmd(&["run", "-d", "busybox:bench", "sleep", "3600"])
                .output()?;
            if !out.status.success() {
                bail!(
                    "run -d failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
            Ok(())
        });
        let name = match e.kind {
            Kind::Berth => "berth-monitor",
            Kind::Docker => "containerd-shim",
            Kind::Podman => "conmon",
        };
        let per = started.map_err(|x| format!("{x:#}")).and_then(|_| {
            std::thread::sleep(Duration::from_millis(500));
            let pids = engines::pids_named(name);
            if pids.is_empty() {
                return Err(format!("no {name} processes found"));
            }
            let sum: f64 = pids
                .iter()
                .filter_map(|p| engines::rss_pss_mb(*p))
                .map(|(r, _)| r)
                .sum();
            Ok(Stats::single(sum / ids.len().max(1) as f64))
        });
        monitors.insert(e.name.into(), per);
        let mut args: Vec<&str> = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        let _ = e.cmd(&args).output();
    }
    vec![
        row("daemon RSS idle", "MB", idle),
        row("monitor RSS per container (20 running)", "MB", monitors),
    ]
}
