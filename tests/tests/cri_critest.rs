//! critest (cri-tools v1.26.1) against berthd's CRI: the stable subset that passes today —
//! runtime info, the image manager (every stand-in image pulled through the registry mirrors),
//! DNS config, hostname and port mappings (pods on the harness's CNI network), basic pod
//! sandbox and container operations, volumes, CRI logs and their reopening, container stats,
//! two containers in a pod (the httpd stand-in), no-new-privs (the setuid stand-in), the
//! security context (users, groups, capabilities, read-only paths, seccomp profiles), the
//! pod's PID, IPC and network namespace modes, ExecSync's timeout, mount propagation and
//! streaming (exec with and without a TTY, attach, port-forward) — through the same harness as
//! `cargo xtask critest` (`berth_tests::critest`). Skips, saying how to get it, when critest is
//! not there. The whole suite: `cargo xtask critest`.
use berth_tests::critest::CritestRun;
use std::time::Duration;

/// The specs run here (ginkgo focus regexes over the full spec text).
const STABLE: &[&str] = &[
    r"Runtime info",
    r"Image Manager",
    r"Networking runtime should support networking runtime should support (DNS config|set hostname|port mapping with only container port|port mapping with host port and container port)",
    r"PodSandbox runtime should support basic operations on PodSandbox",
    r"PodSandbox runtime should support sysctls",
    r"Container runtime should support basic operations on container runtime should support (creating|starting|stopping|removing created|removing running|removing stopped) container",
    r"Container runtime should support basic operations on container runtime should support execSync (\[|with timeout)",
    r"Container runtime should support adding volume and device",
    r"Container runtime should support log runtime should support starting container with log",
    r"Container runtime should support log runtime should support reopening container log",
    r"Container runtime should support basic operations on container runtime should support listing (container stats|stats for)",
    r"Multiple Containers \[Conformance\] when running multiple containers in a pod should support container (exec|log)",
    r"Security Context NoNewPrivs",
    r"Security Context bucket runtime should support (Privileged is|RunAsGroup|RunAsUser|adding|dropping|that ReadOnlyRootfs|SupplementalGroups|ReadonlyPaths)",
    r"Security Context bucket (runtime should return error if RunAsGroup|if the container's primary UID belongs)",
    r"Security Context NamespaceOption",
    r"Security Context SeccompProfilePath",
    r"Container Mount Propagation",
    r"Streaming runtime should support streaming interfaces runtime should support (exec with|attach|portforward)",
];

#[test]
fn critest_stable_subset_passes() {
    let run = CritestRun {
        focus: STABLE.iter().map(|s| s.to_string()).collect(),
        // A hang guard, not a timing assertion.
        timeout: Some(Duration::from_secs(600)),
        ..CritestRun::default()
    };
    let outcome = match run.run() {
        Ok(o) => o,
        Err(missing) => {
            eprintln!("skipped: {missing}");
            return;
        }
    };
    let summary = outcome.summary.clone().unwrap_or_default();
    eprintln!("critest: {summary}");
    assert!(
        outcome.success,
        "critest failed: {summary}\n{}",
        outcome.output
    );
    assert!(summary.contains(" 0 Failed"), "{summary}");
}
