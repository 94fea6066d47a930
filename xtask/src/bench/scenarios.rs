//! The benchmark rows: what is measured, on which engine, and the machine's floors.

use super::engines::{self, Engine, Kind};
use super::report::Row;
use super::stats::{time_fn, time_ms, Stats};
use super::Opts;
use anyhow::{bail, Context, Result};
use berth_testimg::bulk::{self, Fill};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The images every engine gets.
pub struct Images {
    /// busybox rootfs tarball (imported as `busybox:bench`).
    pub rootfs: PathBuf,
    /// docker-archive of the multi-layer "big" image (`big:bench`).
    pub big: PathBuf,
    /// Size of the big image's layers, bytes.
    pub big_bytes: u64,
}

const MB: u64 = 1 << 20;

/// Makes the images in `work`.
pub fn make_images(opts: &Opts, work: &Path) -> Result<Images> {
    let rootfs = work.join("busybox-rootfs.tar");
    berth_testimg::busybox_rootfs_tar(&rootfs)?;
    let scale = if opts.quick { 8 * MB } else { 100 * MB };
    let small = scale / 10;
    let l1 = work.join("layer-random.tar");
    bulk::layer_tar(&l1, 1, &[("random.bin".into(), scale, Fill::Random)])?;
    let l2 = work.join("layer-text.tar");
    bulk::layer_tar(&l2, 2, &[("words.txt".into(), scale, Fill::Text)])?;
    let l3 = work.join("layer-mixed.tar");
    let mixed: Vec<(String, u64, Fill)> = (0..5)
        .flat_map(|i| {
            [
                (format!("r{i}.bin"), small, Fill::Random),
                (format!("t{i}.txt"), small, Fill::Text),
            ]
        })
        .collect();
    bulk::layer_tar(&l3, 3, &mixed)?;
    let big = work.join("big-image.tar");
    let layers = [rootfs.as_path(), l1.as_path(), l2.as_path(), l3.as_path()];
    berth_testimg::docker_archive::write(&big, &layers, "big:bench", &["sh"])?;
    let big_bytes = layers
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    Ok(Images {
        rootfs,
        big,
        big_bytes,
    })
}

pub(super) type Results = BTreeMap<String, Result<Stats, String>>;

/// Engine by engine: `warmup` unmeasured runs, then `n` measured ones (see [`latency_variants`]).
pub(super) fn latency(
    opts: &Opts,
    engines: &[&Engine],
    mut one: impl FnMut(&Engine) -> Result<f64>,
) -> Results {
    latency_variants(opts, engines, 1, |e, _| one(e))
        .pop()
        .unwrap_or_default()
}

/// The pause between two engines' runs in [`latency_variants`].
const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Like [`latency`] for `k` variants of a run; one `Results` per variant. Engine by engine,
/// `warmup` unmeasured rounds then `n` measured ones run back to back, as hyperfine (the tool
/// the anchors were measured with) runs them; the variants alternate within each round, so a
/// machine that slows down or speeds up weighs on every variant alike. Between engines a
/// pause lets what one engine left to the kernel and its daemon (a shim's exit, a namespace's
/// teardown, an unmount's flush) finish before the next is measured.
pub(super) fn latency_variants(
    opts: &Opts,
    engines: &[&Engine],
    k: usize,
    mut one: impl FnMut(&Engine, usize) -> Result<f64>,
) -> Vec<Results> {
    let mut samples: BTreeMap<(&str, usize), Vec<f64>> = BTreeMap::new();
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    for e in engines {
        std::thread::sleep(SETTLE);
        'rounds: for round in 0..(opts.warmup + opts.n) {
            for v in 0..k {
                match one(e, v) {
                    Ok(ms) if round >= opts.warmup => {
                        samples.entry((e.name, v)).or_default().push(ms)
                    }
                    Ok(_) => {}
                    Err(err) => {
                        errors.insert(e.name, format!("{err:#}"));
                        break 'rounds;
                    }
                }
            }
        }
    }
    (0..k)
        .map(|v| {
            engines
                .iter()
                .map(|e| {
                    let r = match errors.get(e.name) {
                        Some(err) => Err(err.clone()),
                        None => {
                            Stats::of(samples.get(&(e.name, v)).map(Vec::as_slice).unwrap_or(&[]))
                                .ok_or_else(|| "no samples".into())
                        }
                    };
                    (e.name.to_string(), r)
                })
                .collect()
        })
        .collect()
}

/// Per engine: median(`bridged`) − median(`none`); the range is the widest difference the
/// samples allow (min − max .. max − min).
fn network_cost(bridged: &Results, none: &Results) -> Results {
    bridged
        .iter()
        .map(|(engine, b)| {
            let cost = match (b, none.get(engine)) {
                (Ok(b), Some(Ok(n))) => Ok(Stats {
                    median: b.median - n.median,
                    min: b.min - n.max,
                    max: b.max - n.min,
                    n: b.n.min(n.n),
                }),
                (Err(e), _) | (_, Some(Err(e))) => Err(e.clone()),
                (_, None) => Err("no --network none samples".into()),
            };
            (engine.clone(), cost)
        })
        .collect()
}

pub(super) fn row(metric: &str, unit: &str, results: Results) -> Row {
    let mut r = Row::new(metric, unit);
    r.results = results;
    r
}

fn import_busybox(e: &Engine, rootfs: &Path) -> Result<()> {
    let out = e
        .cmd(&["import", &rootfs.display().to_string(), "busybox:bench"])
        .stdout(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "import into {} failed: {}",
            e.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs every wanted row.
pub fn all(
    opts: &Opts,
    bin: &Path,
    work: &Path,
    images: &Images,
    engines: &mut [Engine],
) -> Vec<Row> {
    let mut rows = Vec::new();
    for e in engines.iter() {
        if let Err(err) = import_busybox(e, &images.rootfs) {
            eprintln!("bench: {err:#}");
        }
    }
    let all: Vec<&Engine> = engines.iter().collect();
    let berth_cli = bin.join("berth");
    let berth_host = engines
        .iter()
        .find(|e| e.kind == Kind::Berth)
        .and_then(|e| e.socket.clone());

    if opts.wants("run") {
        eprintln!("bench: run --rm busybox true");
        // With and without a network alternated run by run: their difference is the row
        // that matters, and it is small next to how much this machine's load drifts.
        let mut both = latency_variants(opts, &all, 2, |e, v| {
            let net: &[&str] = if v == 0 { &[] } else { &["--network", "none"] };
            let mut args = vec!["run", "--rm"];
            args.extend_from_slice(net);
            args.extend(["busybox:bench", "true"]);
            time_ms(&mut e.cmd(&args))
        })
        .into_iter();
        let mut r = row(
            "run --rm busybox true (default network)",
            "ms",
            both.next().unwrap_or_default(),
        );
        r.floor = floor_runc(work, &images.rootfs).ok();
        rows.push(r);
        let mut r = row(
            "run --rm --network none busybox true",
            "ms",
            both.next().unwrap_or_default(),
        );
        r.floor = floor_unshare(opts).ok().map(|s| ("unshare".to_string(), s));
        let cost = network_cost(&rows[rows.len() - 1].results, &r.results);
        rows.push(r);
        rows.push(row(
            "network setup cost per container (default network − none, medians)",
            "ms",
            cost,
        ));
        if let Some(e) = all.iter().find(|e| e.kind == Kind::Berth) {
            let mut r = row(
                "the docker CLI's own part: the same run against a stub daemon that answers at once",
                "ms",
                Results::new(),
            );
            r.floor = cli_floor(opts, work, &e.cli[0])
                .map_err(|err| eprintln!("bench: CLI floor: {err:#}"))
                .ok()
                .map(|s| ("docker CLI".to_string(), s));
            rows.push(r);
        }
        if let Some(sock) = &berth_host {
            let host = format!("unix://{}", sock.display());
            let mut results = Results::new();
            let samples: Result<Vec<f64>> = (0..opts.warmup + opts.n)
                .map(|_| {
                    time_ms(Command::new(&berth_cli).args([
                        "-H",
                        &host,
                        "run",
                        "--rm",
                        "busybox:bench",
                        "true",
                    ]))
                })
                .collect();
            results.insert(
                "berth".into(),
                samples
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|s| Stats::of(&s[opts.warmup..]).ok_or_else(|| "no samples".into())),
            );
            rows.push(row("run --rm busybox true (berth CLI)", "ms", results));
        }
    }
    if opts.wants("create") || opts.wants("ps") || opts.wants("images") {
        eprintln!("bench: 100 creates, ps, images, rm");
        rows.extend(super::containers::create_ps_rm(opts, &all));
    }
    if opts.wants("memory") || opts.wants("rss") {
        eprintln!("bench: memory");
        rows.extend(super::containers::memory(&all));
    }
    if opts.wants("load") {
        eprintln!("bench: load of the big image");
        let n = if opts.quick { 1 } else { 5 };
        let big = images.big.display().to_string();
        let o = Opts {
            quick: opts.quick,
            filter: None,
            json: opts.json.clone(),
            n,
            warmup: 0,
            levels: None,
        };
        let mut r = row(
            &format!("load big image ({} MB)", images.big_bytes / MB),
            "ms",
            latency(&o, &all, |e| {
                let _ = e.cmd(&["rmi", "-f", "big:bench"]).output();
                time_ms(&mut e.cmd(&["load", "-i", &big]))
            }),
        );
        r.floor = limit_sha256(&images.big)
            .ok()
            .map(|s| ("sha256 MB/s".to_string(), s));
        rows.push(r);
        if let Ok(s) = limit_fsync(work, if opts.quick { 64 } else { 1024 }) {
            let mut r = Row::new("limit: disk write with fsync", "MB/s");
            r.floor = Some(("dd-like".into(), s));
            rows.push(r);
        }
    }
    if opts.wants("pull") {
        eprintln!("bench: pull of the big image from a loopback registry");
        rows.extend(pull(opts, work, images, &all));
    }
    rows.extend(super::images::rows(opts, work, &images.rootfs, &all));
    if opts.wants("build") {
        eprintln!("bench: build");
        rows.extend(build(opts, work, &all));
    }
    rows.extend(super::big_layer::rows(opts, work, &all));
    rows.extend(super::parallel::rows(opts, work, &all));
    if opts.wants("scale") {
        eprintln!("bench: scale (0, 100 and 1,000 running containers)");
        rows.extend(super::scale::rows(opts, bin, engines));
    }
    if opts.wants("concurrency") || opts.wants("events") {
        eprintln!("bench: concurrency (clients at once, events subscribers)");
        rows.extend(super::load::rows(opts, bin, engines));
    }
    if opts.wants("start") {
        eprintln!("bench: daemon start and stop");
        rows.extend(start_stop(opts, bin, engines));
    }
    rows
}

/// `docker run --rm --network none busybox true` with the CLI `docker` against
/// [`super::cli_floor::Stub`], back to back as the engines' runs.
fn cli_floor(opts: &Opts, work: &Path, docker: &str) -> Result<Stats> {
    let stub = super::cli_floor::Stub::start(&work.join("cli-floor.sock"))?;
    let host = stub.host();
    let args = [
        "-H",
        &host,
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "true",
    ];
    let mut s = Vec::new();
    for i in 0..(opts.warmup + opts.n) {
        let ms = time_ms(Command::new(docker).args(args))?;
        if i >= opts.warmup {
            s.push(ms);
        }
    }
    Stats::of(&s).context("no samples")
}

fn floor_unshare(opts: &Opts) -> Result<Stats> {
    let mut s = Vec::new();
    for _ in 0..(opts.n.max(5)) {
        s.push(time_ms(Command::new("unshare").args([
            "--fork",
            "--pid",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--mount-proc",
            "true",
        ]))?);
    }
    Stats::of(&s).context("no samples")
}

fn floor_runc(work: &Path, rootfs_tar: &Path) -> Result<(String, Stats)> {
    let runc = crate::sh::which("crun")
        .or_else(|| crate::sh::which("runc"))
        .context("no runc/crun")?;
    let bundle = work.join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    crate::sh::output(
        Command::new("tar")
            .arg("-xf")
            .arg(rootfs_tar)
            .arg("-C")
            .arg(&rootfs),
    )?;
    crate::sh::output(Command::new(&runc).args(["spec"]).current_dir(&bundle))?;
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["true"]);
    std::fs::write(&path, serde_json::to_vec(&spec)?)?;
    let mut s = Vec::new();
    for i in 0..20 {
        let id = format!("berth-bench-floor-{}-{i}", std::process::id());
        s.push(time_ms(
            Command::new(&runc)
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(&id),
        )?);
    }
    let name = runc
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((name, Stats::of(&s[5..]).context("no samples")?))
}

fn limit_sha256(path: &Path) -> Result<Stats> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; MB as usize];
    let mut total = 0u64;
    let ms = time_fn(|| {
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            h.update(&buf[..n]);
        }
        Ok(())
    })?;
    Ok(Stats::single(total as f64 / MB as f64 / (ms / 1000.0)))
}

fn limit_fsync(work: &Path, mb: u64) -> Result<Stats> {
    let path = work.join("fsync-test");
    let buf = vec![7u8; MB as usize];
    let ms = time_fn(|| {
        let mut f = std::fs::File::create(&path)?;
        for _ in 0..mb {
            f.write_all(&buf)?;
        }
        f.sync_all()?;
        Ok(())
    })?;
    std::fs::remove_file(&path).ok();
    Ok(Stats::single(mb as f64 / (ms / 1000.0)))
}

fn pull(opts: &Opts, work: &Path, images: &Images, engines: &[&Engine]) -> Vec<Row> {
    let label = format!(
        "pull big image ({} MB) from a loopback registry",
        images.big_bytes / MB
    );
    vec![super::images::pull(
        opts,
        work,
        engines,
        &images.big,
        "big",
        &label,
        &["big:bench"],
    )]
}

fn build(opts: &Opts, work: &Path, engines: &[&Engine]) -> Vec<Row> {
    let ctx = work.join("build-ctx");
    let setup = || -> Result<()> {
        std::fs::create_dir_all(&ctx)?;
        std::fs::write(ctx.join("hello.txt"), "hello\n")?;
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM busybox:bench\nRUN echo built > /built.txt\nCOPY hello.txt /hello.txt\nENV GREETING=hi\nCMD [\"cat\", \"/hello.txt\"]\n",
        )?;
        Ok(())
    };
    if let Err(e) = setup() {
        let mut r = Row::new("build, cold", "ms");
        r.results.insert("berth".into(), Err(format!("{e:#}")));
        return vec![r];
    }
    let c = ctx.display().to_string();
    let build_cmd = |e: &Engine, cold: bool| {
        let mut args = vec!["build", "-q", "-t", "built:bench"];
        if cold {
            args.push("--no-cache");
        }
        if e.kind == Kind::Podman {
            args.push("--layers");
        }
        args.push(&c);
        let mut cmd = e.cmd(&args);
        cmd.env("DOCKER_BUILDKIT", "0");
        cmd
    };
    let cold = latency(opts, engines, |e| time_ms(&mut build_cmd(e, true)));
    let cached = latency(opts, engines, |e| time_ms(&mut build_cmd(e, false)));
    vec![
        row("build 5 steps, cold", "ms", cold),
        row("build 5 steps, fully cached", "ms", cached),
    ]
}

fn start_stop(opts: &Opts, bin: &Path, engines: &mut [Engine]) -> Vec<Row> {
    let mut start = Results::new();
    let mut stop = Results::new();
    // A few samples: one start or stop is a few milliseconds, well within the machine's noise.
    let rounds = opts.n.clamp(1, 7);
    for e in engines.iter_mut() {
        if e.kind != Kind::Berth {
            continue;
        }
        let root = e.root.clone();
        let (mut starts, mut stops) = (Vec::new(), Vec::new());
        let mut failed = None;
        for _ in 0..rounds {
            match e.stop() {
                Some(d) => stops.push(d.as_secs_f64() * 1000.0),
                None => {
                    failed = Some("not running".to_string());
                    break;
                }
            }
            let restarted = (|| -> Result<f64> {
                let t0 = std::time::Instant::now();
                let (child, socket) = engines::spawn_berthd(bin, &root)?;
                e.daemon = Some(child);
                engines::wait_ping(&socket, Duration::from_secs(30))?;
                Ok(t0.elapsed().as_secs_f64() * 1000.0)
            })();
            match restarted {
                Ok(ms) => starts.push(ms),
                Err(x) => {
                    failed = Some(format!("{x:#}"));
                    break;
                }
            }
        }
        let of = |v: &[f64]| {
            failed
                .clone()
                .map_or_else(|| Stats::of(v).ok_or_else(|| "no samples".to_string()), Err)
        };
        start.insert(e.name.into(), of(&starts));
        stop.insert(e.name.into(), of(&stops));
    }
    vec![
        row("daemon start until /_ping answers", "ms", start),
        row("daemon clean stop (SIGTERM)", "ms", stop),
    ]
}
