//! `cargo xtask critest [--benchmark] [--focus REGEX]… [--skip REGEX]… [--timeout SECS]
//! [-- CRITEST-ARGS…]`
//! (single-dash arguments such as `-ginkgo.v` or `-benchmark` go to critest as well): the CRI
//! conformance run. Builds berth (or takes `BERTH_BIN_DIR`'s binaries), then the shared
//! harness (`berth_tests::critest`) makes critest's images, serves them from a loopback
//! registry, starts a berthd with the CRI on and `registry-mirror-map` pointing `gcr.io` and
//! `registry.k8s.io` there, runs `../shared/tools/critest` and stops everything it started.
//! Prints critest's summary line; exits non-zero unless every spec run passed. `--benchmark`
//! runs critest's benchmark specs instead and prints a table of their figures
//! (`critest_bench.rs`).

use anyhow::{anyhow, bail, Result};
use berth_tests::critest::{CritestRun, DIGEST_SKIP_REASON, DIGEST_SPEC, MASKED_SPEC};
use std::path::PathBuf;

fn parse(args: &[String]) -> Result<(CritestRun, bool)> {
    let mut run = CritestRun {
        echo: true,
        ..CritestRun::default()
    };
    let mut benchmark = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--benchmark" => benchmark = true,
            "--focus" => run.focus.push(value(&mut it, a)?),
            "--skip" => run.skip.push(value(&mut it, a)?),
            "--timeout" => {
                let secs: u64 = value(&mut it, a)?.parse()?;
                run.timeout = Some(std::time::Duration::from_secs(secs));
            }
            "--" => run.extra_args.extend(it.by_ref().cloned()),
            // critest's own flags pass through (`-ginkgo.focus=…`, `-ginkgo.v`).
            s if s.starts_with('-') && !s.starts_with("--") => run.extra_args.push(a.clone()),
            other => bail!(
                "critest: unknown argument {other:?} \
                 (--benchmark, --focus R, --skip R, --timeout SECS, -- ARGS)"
            ),
        }
    }
    Ok((run, benchmark))
}

fn value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<String> {
    it.next()
        .cloned()
        .ok_or_else(|| anyhow!("{flag} needs a value"))
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let (mut run, benchmark) = parse(args)?;
    let bin = match std::env::var_os("BERTH_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let mut build = crate::sh::cargo();
            build.args(["build", "--workspace", "--bins", "--lib"]);
            crate::sh::run(&mut build)?;
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| crate::sh::workspace_root().join("target"))
                .join("debug")
        }
    };
    if !bin.join("berthd").is_file() {
        bail!("{} has no berthd", bin.display());
    }
    // The harness finds berthd, berth and berth-monitor there.
    std::env::set_var("BERTH_BIN_DIR", &bin);
    let bench = match benchmark {
        true => {
            let dir =
                std::env::temp_dir().join(format!("berth-critest-bench-{}", std::process::id()));
            let b = crate::critest_bench::BenchDir::make(&dir)?;
            run.extra_args.extend(b.args());
            Some((b, dir))
        }
        false => None,
    };
    eprintln!("critest: skipping {DIGEST_SPEC:?}: {DIGEST_SKIP_REASON}");
    // The harness panics on a failure of its own, after its registry and daemons are gone.
    let outcome = std::panic::catch_unwind(|| run.run())
        .map_err(|_| anyhow!("critest harness failed (see the message above)"))?
        .map_err(|missing| anyhow!("critest: {missing}"))?;
    if let Some(why) = &outcome.masked_skipped {
        eprintln!("critest: skipped {MASKED_SPEC:?}: {why}");
    }
    if let Some((b, dir)) = bench {
        let table = b.summary();
        std::fs::remove_dir_all(&dir).ok();
        println!("{}", table?);
    }
    match (&outcome.summary, outcome.success) {
        (Some(line), true) => {
            println!("critest: {line}");
            Ok(())
        }
        (Some(line), false) => bail!("critest: {line}"),
        (None, _) => bail!("critest printed no summary (crashed or timed out)"),
    }
}
