//! `cargo xtask ci`: the whole test suite, as CI and the README run it.
//!
//! Installs the system packages the tests use (the real Docker engine, registry and docker-compose
//! for interop tests, runc for the OCI backend, busybox-static for the test image, tmux for the TTY test),
//! checks `cargo fmt` and `cargo clippy -D warnings`, builds every binary and plugin library,
//! runs every test, then the quick benchmark so its harness never rots. Services the tests need (berthd, registries, a reference dockerd) are
//! started by the tests themselves on private sockets and loopback ports.

use crate::sh::{self, apt_install, cargo, run as sh_run};
use anyhow::Result;
use std::process::Command;

/// Debian packages the test suite needs.
pub const TEST_PACKAGES: &[&str] = &[
    "busybox-static",
    "iproute2",
    "iptables",
    "nftables",
    "runc",
    "skopeo",
    "docker-registry",
    "docker.io",
    "docker-compose",
    "socat",
    "tmux",
    "hyperfine",
    "openssl",
    "apache2-utils",
    "tini",
    "protobuf-compiler",
    "containernetworking-plugins",
];

/// Runs the suite.
pub fn run_suite(skip_bench: bool) -> Result<()> {
    apt_install(TEST_PACKAGES)?;
    ensure_python_sdk()?;
    // The house rules the build checks: formatting and clippy with warnings as errors.
    sh_run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    sh_run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    sh_run(cargo().args(["build", "--workspace", "--all-targets"]))?;
    sh_run(
        cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST"),
    )?;
    if !skip_bench {
        sh_run(cargo().args(["xtask", "bench", "--quick"]))?;
    }
    Ok(())
}

/// Entry point for `cargo xtask ci [--no-bench]`.
pub fn run(args: &[String]) -> Result<()> {
    run_suite(args.iter().any(|a| a == "--no-bench"))
}

fn ensure_python_sdk() -> Result<()> {
    let ok = Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    if !sh::have("pip3") && !sh::have("pip") {
        apt_install(&["python3-pip"])?;
    }
    let pip = if sh::have("pip3") { "pip3" } else { "pip" };
    sh_run(Command::new(pip).args(["install", "--quiet", "docker>=7.1"]))
}
