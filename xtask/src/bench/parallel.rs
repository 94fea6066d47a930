//! The parallel rows (issue 19): pulls of different images at once from a loopback
//! registry, and builds of different contexts at once; each sample is the wall time from
//! the first client's start until the last one has ended.

use super::engines::{Engine, Kind};
use super::registry::Registry;
use super::report::Row;
use super::scenarios::{latency, row};
use super::Opts;
use anyhow::{bail, Context, Result};
use berth_testimg::bulk::{self, Fill};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MB: u64 = 1 << 20;

/// Runs every command at once; ms until the last has ended (an error if any failed).
fn all_at_once(mut cmds: Vec<Command>) -> Result<f64> {
    let t0 = Instant::now();
    let children: Vec<_> = cmds
        .iter_mut()
        .map(|c| {
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()
        .context("spawning the clients")?;
    let mut failed = 0;
    for c in children {
        let out = c.wait_with_output()?;
        if !out.status.success() {
            failed += 1;
            eprintln!("bench: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    if failed > 0 {
        bail!("{failed} of the clients failed");
    }
    Ok(t0.elapsed().as_secs_f64() * 1000.0)
}

/// The rows of this module that `opts` wants (keys `concurrency`, `parallel`).
pub fn rows(opts: &Opts, work: &Path, engines: &[&Engine]) -> Vec<Row> {
    if !(opts.wants("concurrency") || opts.wants("parallel")) {
        return Vec::new();
    }
    let dir = work.join("parallel");
    let (pulls, builds) = if opts.quick { (4, 3) } else { (20, 10) };
    eprintln!("bench: {pulls} parallel pulls of different images");
    let pull_label = format!(
        "concurrency: {pulls} parallel pulls of different images (2 layers, 6 MB each) from a loopback registry"
    );
    let pull_row = match parallel_pulls(opts, &dir, engines, pulls) {
        Ok(r) => row(&pull_label, "ms", r),
        Err(e) => failed(&pull_label, e),
    };
    eprintln!("bench: {builds} parallel builds of different contexts");
    let build_label = format!(
        "concurrency: {builds} parallel builds of different contexts (FROM, COPY, RUN; --no-cache)"
    );
    let build_row = match parallel_builds(opts, &dir, engines, builds) {
        Ok(r) => row(&build_label, "ms", r),
        Err(e) => failed(&build_label, e),
    };
    let _ = std::fs::remove_dir_all(&dir);
    vec![pull_row, build_row]
}

fn failed(label: &str, e: anyhow::Error) -> Row {
    let mut r = Row::new(label, "ms");
    r.results.insert("berth".into(), Err(format!("{e:#}")));
    r
}

/// `n` images of two layers each (random and text, 4 + 2 MB), none sharing a layer, pushed
/// to a fresh loopback registry; every engine pulls all of them at once, after removing them.
fn parallel_pulls(
    opts: &Opts,
    dir: &Path,
    engines: &[&Engine],
    n: usize,
) -> Result<super::scenarios::Results> {
    let reg = Registry::start(&dir.join("registry"))?;
    let layers = dir.join("layers");
    std::fs::create_dir_all(&layers)?;
    let mut targets = Vec::new();
    for i in 0..n {
        let seed = 5000 + 2 * i as u64;
        let random = layers.join(format!("r{i}.tar"));
        bulk::layer_tar(
            &random,
            seed,
            &[(format!("r{i}.bin"), 4 * MB, Fill::Random)],
        )?;
        let text = layers.join(format!("t{i}.tar"));
        bulk::layer_tar(
            &text,
            seed + 1,
            &[(format!("t{i}.txt"), 2 * MB, Fill::Text)],
        )?;
        let arch = layers.join(format!("p{i}.tar"));
        let name = format!("par{i}");
        let refs = [random.as_path(), text.as_path()];
        berth_testimg::docker_archive::write(&arch, &refs, &format!("{name}:bench"), &["sh"])?;
        reg.push_archive(&arch, &format!("{name}:latest"))?;
        targets.push(format!("{}/{name}:latest", reg.addr));
    }
    let _ = std::fs::remove_dir_all(&layers);
    let rmi = |e: &Engine| {
        let mut args = vec!["rmi", "-f"];
        args.extend(targets.iter().map(String::as_str));
        let _ = e.cmd(&args).output();
    };
    let results = latency(&opts.few(5, 1), engines, |e| {
        rmi(e);
        let cmds = targets
            .iter()
            .map(|t| {
                let mut args = vec!["pull", "-q"];
                if e.kind == Kind::Podman {
                    args.push("--tls-verify=false");
                }
                args.push(t);
                e.cmd(&args)
            })
            .collect();
        all_at_once(cmds)
    });
    for e in engines {
        rmi(e);
    }
    Ok(results)
}

/// `n` build contexts, each a Dockerfile on `busybox:bench` copying a file of its own and
/// running a step on it; every engine builds all of them at once (classic builder, no cache).
fn parallel_builds(
    opts: &Opts,
    dir: &Path,
    engines: &[&Engine],
    n: usize,
) -> Result<super::scenarios::Results> {
    let mut contexts: Vec<PathBuf> = Vec::new();
    for i in 0..n {
        let ctx = dir.join(format!("ctx{i}"));
        std::fs::create_dir_all(&ctx)?;
        std::fs::write(ctx.join("f.txt"), format!("context {i}\n"))?;
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM busybox:bench\nCOPY f.txt /f.txt\nRUN cat /f.txt > /g.txt\nENV N={i}\nCMD [\"cat\", \"/g.txt\"]\n"
            ),
        )?;
        contexts.push(ctx);
    }
    let tags: Vec<String> = (0..n).map(|i| format!("parbuild{i}:bench")).collect();
    let results = latency(&opts.few(5, 1), engines, |e| {
        let cmds = contexts
            .iter()
            .zip(&tags)
            .map(|(ctx, tag)| {
                let c = ctx.display().to_string();
                let mut cmd = e.cmd(&["build", "-q", "--no-cache", "-t", tag, &c]);
                cmd.env("DOCKER_BUILDKIT", "0");
                cmd
            })
            .collect();
        all_at_once(cmds)
    });
    for e in engines {
        let mut args = vec!["rmi", "-f"];
        args.extend(tags.iter().map(String::as_str));
        let _ = e.cmd(&args).output();
    }
    Ok(results)
}
