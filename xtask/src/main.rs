//! `cargo xtask`: the project's chores, in Rust rather than shell.
//!
//! - `cargo xtask demo` — the README's first command: installs the system packages berth needs,
//!   builds release binaries, starts berthd on its default configuration, makes a busybox image
//!   locally (no registry) and runs a container from it.
//! - `cargo xtask ci` — the README's second command and what `.ci/run` calls: installs the test
//!   dependencies, builds the workspace, runs every test and the quick benchmark.
//! - `cargo xtask bench [--quick] [--filter NAME]` — berth side by side with Docker and Podman.
//! - `cargo xtask critest [--benchmark] [--focus R] [--skip R] [-- ARGS]` — the CRI conformance
//!   suite (cri-tools' critest) against a berthd, with its images served from a loopback
//!   registry; `--benchmark` runs critest's benchmarks and prints their figures.

mod bench;
mod ci;
mod critest;
mod critest_bench;
mod demo;
mod sh;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        usage();
        bail!("no command given");
    };
    match cmd.as_str() {
        "ci" => ci::run(rest),
        "demo" => demo::run(rest),
        "bench" => bench::run(rest),
        "critest" => critest::run(rest),
        "help" | "--help" | "-h" => {
            usage();
            Ok(())
        }
        other => {
            usage();
            bail!("unknown xtask command {other:?}")
        }
    }
}

fn usage() {
    eprintln!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         demo                  install packages, build, start berthd, run a container\n  \
         ci                    install test packages, build, run all tests and the quick bench\n  \
         bench [--quick] [--filter NAME] [--json FILE]\n                        benchmark berth against Docker and Podman when installed\n  \
         critest [--benchmark] [--focus R] [--skip R] [--timeout SECS] [-- ARGS]\n                        the CRI conformance suite (../shared/tools/critest) against berthd"
    );
}
