//! The critest harness, shared by `cargo xtask critest` (the whole conformance run) and the
//! suite's `cri_critest` test (a stable subset): makes critest's images locally
//! (`berth_testimg::critest`), pushes them with `berth push` from a throwaway berthd to a
//! loopback `docker-registry` under their upstream repository paths, starts a clean berthd
//! whose `registry-mirror-map` sends `gcr.io` and `registry.k8s.io` there and whose pods join a
//! private CNI network ([`CniNet`]: the standard plugins on a bridge and /24 of its own), runs
//! `critest --runtime-endpoint/--image-endpoint unix://<cri.sock>` and reads its summary line.
//! Everything it started is stopped and removed when it returns, also on a failure or a panic
//! (the registry and daemons are dropped).

use crate::cni::CniNet;
use crate::cri::shared_tool;
use crate::daemon::TestDaemon;
use crate::registry::{DistRegistry, RegistryAuth};
use berth_testimg::critest::{rootfs_tar, Busybox, Rootfs, IMAGES};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to get critest when it is not there.
pub const CRITEST_HOWTO: &str = "critest not found: build it from kubernetes-sigs/cri-tools \
     v1.26.1 (`CGO_ENABLED=0 GOFLAGS=-mod=vendor go test -c -trimpath -o critest ./cmd/critest`) \
     into ../shared/tools/critest (next to the checkout), or set CRITEST=/path/to/critest";

/// The spec needing upstream's exact image bytes, skipped with [`DIGEST_SKIP_REASON`].
pub const DIGEST_SPEC: &str = "public image with digest should be pulled and removed";
/// Why [`DIGEST_SPEC`] is skipped.
pub const DIGEST_SKIP_REASON: &str =
    "it pulls gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9…, \
     which only upstream's exact image bytes match; a locally made stand-in cannot";

/// The spec that needs a shell looking commands up in `PATH` (it masks `/bin/ls` and expects
/// `sh -c ls` to fail): run on Debian's dynamic busybox
/// ([`berth_testimg::plain_busybox`]), skipped with [`MASKED_SKIP_REASON`] only when that
/// could not be fetched.
pub const MASKED_SPEC: &str = "Security Context bucket runtime should support MaskedPaths";
/// Why [`MASKED_SPEC`] is skipped when Debian's dynamic busybox is not at hand.
pub const MASKED_SKIP_REASON: &str =
    "Debian's dynamic busybox could not be fetched (`apt-get download busybox`), and the \
     busybox-static sh runs its own ls applet whatever /bin/ls is (FEATURE_SH_STANDALONE); \
     berth's masked paths are also checked by tests/tests/cri_security.rs";

/// Where critest is: `$CRITEST`, else `../shared/tools/critest` ([`shared_tool`]).
pub fn critest_bin() -> Option<PathBuf> {
    shared_tool("CRITEST", "critest")
}

/// One critest run.
#[derive(Debug, Clone, Default)]
pub struct CritestRun {
    /// `-ginkgo.focus` regexes (none: every spec).
    pub focus: Vec<String>,
    /// More `-ginkgo.skip` regexes (the digest spec is always skipped, the masked-paths one
    /// without Debian's dynamic busybox).
    pub skip: Vec<String>,
    /// Passed to critest as they are (`-ginkgo.v`, `-ginkgo.fail-fast`).
    pub extra_args: Vec<String>,
    /// Copy critest's output to stdout as it comes (the xtask), or keep it quiet (the test).
    pub echo: bool,
    /// Kill critest after this long (a hang guard).
    pub timeout: Option<Duration>,
}

/// What a run gave.
#[derive(Debug, Clone)]
pub struct CritestOutcome {
    /// critest's summary line (`FAIL! -- 40 Passed | 40 Failed | 0 Pending | 5 Skipped`), or
    /// `None` when it printed none (it crashed, or was killed on timeout).
    pub summary: Option<String>,
    /// Whether critest exited 0.
    pub success: bool,
    /// Its whole output (stdout, then stderr).
    pub output: String,
    /// Why the masked-paths spec was skipped ([`MASKED_SKIP_REASON`] and the fetch error),
    /// `None` when it ran.
    pub masked_skipped: Option<String>,
}

/// Why a run could not happen (the tests turn these into a skip message).
#[derive(Debug, Clone)]
pub enum Missing {
    /// No critest binary ([`CRITEST_HOWTO`]).
    Critest,
    /// Another tool (`docker-registry`, busybox-static).
    Tool(String),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Critest => f.write_str(CRITEST_HOWTO),
            Missing::Tool(t) => write!(f, "{t} is not installed"),
        }
    }
}

impl CritestRun {
    /// Makes the images, starts the registry and berthd, runs critest, stops everything.
    /// Panics (after cleaning up) when a step of the harness itself fails.
    pub fn run(&self) -> Result<CritestOutcome, Missing> {
        let critest = critest_bin().ok_or(Missing::Critest)?;
        let mut masked_skipped = None;
        berth_testimg::find_busybox().map_err(|_| Missing::Tool("busybox-static".into()))?;
        let reg = DistRegistry::start(RegistryAuth::None)
            .ok_or_else(|| Missing::Tool("docker-registry".into()))?;
        let busybox = match berth_testimg::plain_busybox::plain_busybox() {
            Ok(_) => Busybox::Plain,
            Err(e) => {
                masked_skipped = Some(format!("{MASKED_SKIP_REASON} ({e})"));
                Busybox::Static
            }
        };
        push_images(&reg, busybox);
        let mirror = format!("http://{}", reg.addr);
        // Without the plugins the networking specs fail; everything else still runs.
        let net = CniNet::available().then(|| CniNet::new(2, 254));
        let mut builder = TestDaemon::builder().config_json(serde_json::json!({
            "log-level": "info",
            "registry-mirror-map": {"gcr.io": [mirror], "registry.k8s.io": [mirror]},
        }));
        if let Some(n) = &net {
            builder = builder.config_json(n.daemon_config());
        }
        let d = builder.start();
        let mut outcome = self.critest(&critest, &d, masked_skipped.is_some());
        outcome.masked_skipped = masked_skipped;
        // The daemon (its pods' namespaces) first, then what the plugins left on the host.
        drop(d);
        drop(net);
        drop(reg);
        Ok(outcome)
    }

    fn args(&self, endpoint: &str, skip_masked: bool) -> Vec<String> {
        let mut args = vec![
            format!("--runtime-endpoint={endpoint}"),
            format!("--image-endpoint={endpoint}"),
            "-ginkgo.no-color".to_string(),
            format!("-ginkgo.skip={DIGEST_SPEC}"),
        ];
        if skip_masked {
            args.push(format!("-ginkgo.skip={MASKED_SPEC}"));
        }
        args.extend(self.skip.iter().map(|s| format!("-ginkgo.skip={s}")));
        args.extend(self.focus.iter().map(|f| format!("-ginkgo.focus={f}")));
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn critest(&self, bin: &Path, d: &TestDaemon, skip_masked: bool) -> CritestOutcome {
        let endpoint = format!("unix://{}", d.exec_root().join("cri.sock").display());
        let work = d.dir().join("critest");
        std::fs::create_dir_all(&work).expect("mkdir critest");
        let mut child = Command::new(bin)
            .args(self.args(&endpoint, skip_masked))
            .current_dir(&work)
            // Its pod log folders (`$TMPDIR/podLogTest…`) go with the daemon's folder.
            .env("TMPDIR", &work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let readers = [
            child
                .stdout
                .take()
                .map(|s| copy_lines(s, out.clone(), self.echo)),
            child
                .stderr
                .take()
                .map(|s| copy_lines(s, err.clone(), self.echo)),
        ];
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if deadline.is_some_and(|t| Instant::now() > t) {
                eprintln!("critest: timed out; killing pid {}", child.id());
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        for r in readers.into_iter().flatten() {
            let _ = r.join();
        }
        let output = format!(
            "{}{}",
            out.lock().map(|s| s.clone()).unwrap_or_default(),
            err.lock().map(|s| s.clone()).unwrap_or_default()
        );
        CritestOutcome {
            summary: summary_line(&output),
            success: status.is_some_and(|s| s.success()),
            output,
            masked_skipped: None,
        }
    }
}

/// Copies `r`'s lines into `into` (and to stdout when `echo`) on a thread.
fn copy_lines(
    r: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
    echo: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if echo {
                println!("{line}");
            }
            if let Ok(mut s) = into.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    })
}

/// critest's (ginkgo's) summary line: `SUCCESS! -- 9 Passed | 0 Failed | 0 Pending | 76 Skipped`,
/// or in `-benchmark` (succinct) mode the `SUCCESS! 1.4s PASS` / `FAIL! …` line.
pub fn summary_line(output: &str) -> Option<String> {
    let lines = || output.lines().rev().map(str::trim);
    lines()
        .find(|l| l.contains(" Passed | ") && l.contains(" Failed"))
        .or_else(|| {
            lines()
                .filter_map(|l| {
                    l.find("SUCCESS!")
                        .or_else(|| l.find("FAIL!"))
                        .map(|i| &l[i..])
                })
                .next()
        })
        .map(str::to_string)
}

/// Imports every image from its rootfs on a throwaway berthd, pushes it to `reg` under its
/// upstream repository path and tags, and removes that berthd.
fn push_images(reg: &DistRegistry, busybox: Busybox) {
    let d = TestDaemon::builder().start();
    for (which, file) in [
        (Rootfs::Common, "critest-rootfs.tar"),
        (Rootfs::PredefinedGroup, "critest-rootfs-group.tar"),
    ] {
        let tar = d.dir().join(file);
        rootfs_tar(which, busybox, &tar).expect("writing a critest rootfs");
    }
    for img in IMAGES {
        let tar = d.dir().join(match img.rootfs {
            Rootfs::Common => "critest-rootfs.tar",
            Rootfs::PredefinedGroup => "critest-rootfs-group.tar",
        });
        let first = format!(
            "{}/{}:{}",
            reg.addr,
            img.path(),
            img.tags.first().copied().unwrap_or("latest")
        );
        let label = img.label();
        let mut args = vec!["import"];
        for c in img.changes.iter().copied().chain([label.as_str()]) {
            args.extend(["-c", c]);
        }
        let tar = tar.display().to_string();
        args.extend([tar.as_str(), first.as_str()]);
        d.berth(&args).ok();
        for tag in img.tags {
            let name = format!("{}/{}:{tag}", reg.addr, img.path());
            if name != first {
                d.berth(&["tag", &first, &name]).ok();
            }
            d.berth(&["push", &name]).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::summary_line;

    #[test]
    fn finds_the_summary_in_both_modes() {
        let full = "Ran 2 of 85 Specs in 1.2 seconds\nSUCCESS! -- 2 Passed | 0 Failed | 0 Pending | 83 Skipped\nPASS\n";
        assert_eq!(
            summary_line(full).as_deref(),
            Some("SUCCESS! -- 2 Passed | 0 Failed | 0 Pending | 83 Skipped")
        );
        let bench = "------\nSSS SUCCESS! 1.407808116s PASS\n";
        assert_eq!(
            summary_line(bench).as_deref(),
            Some("SUCCESS! 1.407808116s PASS")
        );
        assert_eq!(summary_line("panic: boom\n"), None);
    }
}
