//! `cargo xtask bench`: berth side by side with the real Docker engine and Podman.
//!
//! It makes its own images (busybox from Debian's busybox-static; a multi-layer "big" image of
//! random and text data), starts its own berthd (and dockerd when installed) on private data
//! roots and sockets, alternates engines run by run after a warm-up, and prints a markdown
//! table (median, min–max, ratio, n) plus a JSON file. `--quick` takes one sample of each with
//! a small "big" image and the debug binaries, so CI keeps the harness alive; `--filter NAME`
//! runs the rows whose key contains NAME (`--levels 0,100,1000`: the running containers the
//! `scale` rows are measured at). No test asserts a time: figures are for people.

mod big_layer;
mod cli_floor;
mod containers;
mod engines;
mod images;
mod load;
mod parallel;
mod registry;
mod report;
mod scale;
mod scenarios;
mod stats;

use anyhow::{Context, Result};
use engines::Engine;
use report::Row;
use std::path::PathBuf;

/// Options of one bench run.
pub struct Opts {
    /// One sample per row, small images, debug binaries.
    pub quick: bool,
    /// Only rows whose key contains this.
    pub filter: Option<String>,
    /// Where to write the JSON report.
    pub json: PathBuf,
    /// Samples per latency row.
    pub n: usize,
    /// Warm-up runs per latency row.
    pub warmup: usize,
    /// The numbers of running containers the scale rows are measured at (`--levels 0,100,1000`).
    pub levels: Option<Vec<usize>>,
}

impl Opts {
    /// These options for rows whose one run is long: `n` samples (one when quick) after
    /// `warmup` warm-up runs (none when quick), every row (the filter already chose them).
    pub fn few(&self, n: usize, warmup: usize) -> Opts {
        Opts {
            quick: self.quick,
            filter: None,
            json: self.json.clone(),
            n: if self.quick { 1 } else { n },
            warmup: if self.quick { 0 } else { warmup },
            levels: None,
        }
    }

    /// Whether the row with key `key` is wanted.
    pub fn wants(&self, key: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| key.contains(f))
    }
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        quick: false,
        filter: None,
        json: PathBuf::from("target/bench.json"),
        n: 20,
        warmup: 3,
        levels: None,
    };
    let mut n_given = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--filter" => o.filter = Some(it.next().context("--filter needs a value")?.clone()),
            "--json" => o.json = PathBuf::from(it.next().context("--json needs a value")?),
            "--levels" => {
                let v = it.next().context("--levels needs a value")?;
                let l: Result<Vec<usize>, _> = v.split(',').map(str::parse).collect();
                o.levels = Some(l.context("--levels takes numbers: 0,100,1000")?);
            }
            "-n" => {
                n_given = true;
                o.n = it
                    .next()
                    .context("-n needs a value")?
                    .parse()
                    .context("-n takes a number")?
            }
            other => anyhow::bail!("unknown bench option {other:?}"),
        }
    }
    if o.quick {
        if !n_given {
            o.n = 1;
        }
        o.warmup = 0;
    }
    Ok(o)
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let root = crate::sh::workspace_root();
    let profile = if opts.quick { "debug" } else { "release" };
    // BERTH_BIN_DIR points at already-built binaries (skips the build).
    let bin = match std::env::var_os("BERTH_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let mut build = crate::sh::cargo();
            build.args(["build", "--workspace", "--bins", "--lib"]);
            if !opts.quick {
                build.arg("--release");
            }
            crate::sh::run(&mut build)?;
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            target.join(profile)
        }
    };
    let work = PathBuf::from(format!("/var/tmp/berth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = run_in(&opts, &bin, &work);
    // run_in has stopped every daemon (also on errors: engines stop when dropped).
    engines::remove_bridge();
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(opts: &Opts, bin: &std::path::Path, work: &std::path::Path) -> Result<()> {
    let images = scenarios::make_images(opts, work)?;
    let mut engines: Vec<Engine> = Vec::new();
    engines.push(engines::start_berth(bin, &work.join("berth"))?);
    let mut missing = Vec::new();
    match engines::start_docker(&work.join("docker")) {
        Ok(Some(e)) => engines.push(e),
        Ok(None) => missing.push("docker (apt-get install docker.io)"),
        Err(e) => {
            eprintln!("bench: the real Docker engine could not start: {e:#}");
            missing.push("docker (failed to start)");
        }
    }
    match engines::podman(&work.join("podman")) {
        Ok(Some(e)) => engines.push(e),
        _ => missing.push("podman (apt-get install podman)"),
    }
    if !missing.is_empty() {
        eprintln!("bench: peers missing: {}", missing.join(", "));
    }
    let rows: Vec<Row> = scenarios::all(opts, bin, work, &images, &mut engines);
    for e in engines.iter_mut() {
        e.stop();
    }
    let table = report::markdown(&rows);
    println!("\n{table}");
    if !missing.is_empty() {
        println!("peers missing: {}", missing.join(", "));
    }
    if let Some(dir) = opts.json.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    let json = serde_json::json!({
        "date": chrono_like_now(),
        "quick": opts.quick,
        "machine": machine(),
        "rows": rows,
    });
    std::fs::write(&opts.json, serde_json::to_vec_pretty(&json)?)?;
    eprintln!("bench: JSON written to {}", opts.json.display());
    Ok(())
}

fn chrono_like_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    serde_json::json!({"cpus": cpus, "kernel": kernel.trim()})
}
