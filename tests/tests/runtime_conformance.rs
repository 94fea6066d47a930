//! The runtime conformance suite (`runtime-conformance`) against every isolation runtime
//! berth ships or shows how to write, each selected the way users select it
//! (`docker run --runtime NAME`): the native runtime, runc through the OCI plugin (Debian's
//! `/usr/sbin/runc`; `xtask ci` installs it), and the out-of-tree example
//! `plugins/examples/userns-runtime`, built here and named in daemon.json's `plugins` section —
//! whose container root must not be host root. `docker info` lists each of them.

use berth_runtime_conformance::{run_all, Docker, Expect, Outcome};
use berth_tests::TestDaemon;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Cli<'a>(&'a TestDaemon);

impl Docker for Cli<'_> {
    fn docker(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let o = match stdin {
            Some(data) => self.0.docker_stdin(args, data),
            None => self.0.docker(args),
        };
        Outcome {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

fn daemon(config: Value) -> TestDaemon {
    let d = TestDaemon::builder().config_json(config).start();
    d.import_busybox();
    d
}

/// `docker info`'s runtimes, default runtime and plugin labels.
fn info(d: &TestDaemon) -> Value {
    let out = d.docker(&["info", "--format", "{{json .}}"]);
    serde_json::from_str(out.ok()).expect("info JSON")
}

#[track_caller]
fn listed(d: &TestDaemon, name: &str, plugin: &str) {
    let i = info(d);
    assert!(
        i["Runtimes"][name]["path"].is_string(),
        "{name} in {}",
        i["Runtimes"]
    );
    let label = format!("berth.plugin.runtime.{name}={plugin} ");
    let labels = i["Labels"].as_array().cloned().unwrap_or_default();
    assert!(
        labels
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.starts_with(&label))),
        "no label {label} in {labels:?}"
    );
}

#[test]
fn native_runtime_conforms() {
    let d = daemon(json!({}));
    listed(&d, "native", "berth-runtime-native");
    assert_eq!(info(&d)["DefaultRuntime"], "native");
    run_all(&Cli(&d), "native", Expect::default());
}

#[test]
fn runc_conforms() {
    if !Path::new("/usr/sbin/runc").exists() {
        eprintln!("/usr/sbin/runc not installed: skipped");
        return;
    }
    let d = daemon(json!({}));
    listed(&d, "runc", "berth-runtime-oci");
    run_all(&Cli(&d), "runc", Expect::default());
}

/// Builds the out-of-tree example with this test's target dir and copies it into a folder of
/// its own (root's, 0700: the plugin trust rules).
fn userns_library() -> (tempfile::TempDir, PathBuf) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/userns-runtime/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building userns-runtime failed");
    let dir = tempfile::tempdir().expect("tmp");
    let lib = dir.path().join("libuserns_runtime.so");
    std::fs::copy(target.join("debug/libuserns_runtime.so"), &lib).expect("copy");
    (dir, lib)
}

#[test]
fn userns_example_runtime_conforms() {
    let (_keep, lib) = userns_library();
    let d = daemon(json!({"plugins": {"drivers": {"userns": lib}}}));
    listed(&d, "userns", "userns-runtime");
    let expect = Expect {
        root_is_host_root: false,
    };
    run_all(&Cli(&d), "userns", expect);

    // What its root writes is stored with the image's ids: committed and run natively, the
    // file is root's.
    let o = d.docker(&[
        "run",
        "--runtime",
        "userns",
        "--name",
        "writer",
        "busybox",
        "touch",
        "/etc/w",
    ]);
    o.ok();
    d.docker(&["commit", "writer", "written"]).ok();
    let o = d.docker(&["run", "--rm", "written", "stat", "-c", "%u:%g", "/etc/w"]);
    assert_eq!(o.ok().trim(), "0:0");
    drop(d);

    // Named in Docker's `runtimes` instead: the same runtime.
    let d = daemon(json!({"runtimes": {"userns": {"path": lib}}}));
    listed(&d, "userns", "userns-runtime");
    let o = d.docker(&["run", "--rm", "--runtime", "userns", "busybox", "id", "-u"]);
    assert_eq!(o.ok().trim(), "0");
}

#[test]
fn a_broken_runtime_library_leaves_the_others() {
    let tmp = tempfile::tempdir().expect("tmp");
    let lib = tmp.path().join("libbroken.so");
    std::fs::write(&lib, "not a library\n").expect("write");
    let d = daemon(json!({"runtimes": {"broken": {"path": lib}}}));
    let i = info(&d);
    assert!(i["Runtimes"]["broken"].is_null(), "{}", i["Runtimes"]);
    assert!(i["Runtimes"]["native"].is_object(), "{}", i["Runtimes"]);
    assert!(
        d.log().contains("runtime \"broken\" is not available"),
        "{}",
        d.log()
    );
    let o = d.docker(&["run", "--rm", "--runtime", "broken", "busybox", "true"]);
    assert_eq!(o.status, 125, "{o:?}");
    assert!(
        o.stderr.contains("Unknown runtime specified broken"),
        "{o:?}"
    );
}
