//! The loader against real plugin libraries: every failure case (missing file, not a plugin,
//! another interface version, unknown driver, failing or panicking init), search folders that
//! hold junk, panics and streams crossing the boundary, network calls, and libraries refused
//! before they are opened (writable by others, or claiming a driver name another one claims).

mod support;

use berth_plugins::core::network::NetworkSpec;
use berth_plugins::core::storage::CreateOpts;
use berth_plugins::core::{DriverError, DriverKind};
use berth_plugins::{Loader, PluginError};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use support::libs;

fn explicit(driver: &str, path: &Path) -> Loader {
    let map = BTreeMap::from([(driver.to_string(), path.to_path_buf())]);
    Loader::new(map, Vec::new())
}

fn storage_err(loader: &mut Loader, driver: &str) -> PluginError {
    match loader.storage(driver, &json!({})) {
        Ok(_) => panic!("loading {driver} should fail"),
        Err(e) => e,
    }
}

/// Checks the message is one line naming the driver, the library and the reason.
fn one_line(e: &PluginError, driver: &str, path: &Path, reason: &str) {
    let msg = e.to_string();
    eprintln!("message: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.contains(driver), "names the driver: {msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "names {path:?}: {msg}"
    );
    assert!(msg.contains(reason), "says {reason:?}: {msg}");
}

#[test]
fn missing_library() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("libnothere.so");
    let e = storage_err(&mut explicit("vfs", &path), "vfs");
    assert!(matches!(e, PluginError::Missing { .. }), "{e:?}");
    one_line(&e, "vfs", &path, "does not exist");
}

#[test]
fn text_file_is_not_a_plugin() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("libx.so");
    std::fs::write(&path, "I am not a library\n").expect("write");
    let e = storage_err(&mut explicit("x", &path), "x");
    assert!(matches!(e, PluginError::NotAPlugin { .. }), "{e:?}");
    one_line(&e, "x", &path, "is not a berth plugin");
}

#[test]
fn shared_object_without_root_module_is_not_a_plugin() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("libplain.so");
    // Any ordinary shared library: the C library every process already has.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("a libc.so.6");
    std::fs::copy(libc, &path).expect("copy");
    let e = storage_err(&mut explicit("plain", &path), "plain");
    assert!(matches!(e, PluginError::NotAPlugin { .. }), "{e:?}");
    one_line(&e, "plain", &path, "exports no berth plugin root module");
}

#[test]
fn other_interface_version_is_refused() {
    let path = &libs().bad_abi;
    let e = storage_err(&mut explicit("failing", path), "failing");
    match &e {
        PluginError::IncompatibleVersion {
            found, expected, ..
        } => assert_eq!((*found, *expected), (999, berth_plugins::ABI_VERSION)),
        other => panic!("expected IncompatibleVersion, got {other:?}"),
    }
    one_line(&e, "failing", path, "version 999");
}

#[test]
fn driver_not_in_the_configured_library() {
    let path = &libs().fixture;
    let e = storage_err(&mut explicit("vfs", path), "vfs");
    assert!(matches!(e, PluginError::NoSuchDriver { .. }), "{e:?}");
    one_line(&e, "vfs", path, "no storage driver");
    // A network driver of that library is not a storage driver either.
    let e = storage_err(&mut explicit("memnet", path), "memnet");
    assert!(matches!(e, PluginError::NoSuchDriver { .. }), "{e:?}");
}

#[test]
fn driver_in_no_search_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut loader = Loader::new(BTreeMap::new(), vec![tmp.path().into(), libs().dir.clone()]);
    let e = storage_err(&mut loader, "zfs");
    assert!(matches!(e, PluginError::NoSuchDriver { .. }), "{e:?}");
    one_line(&e, "zfs", &libs().dir, "no storage driver");
}

#[test]
fn failing_init_is_an_init_error() {
    let path = &libs().fixture;
    let e = storage_err(&mut explicit("failing", path), "failing");
    assert!(matches!(e, PluginError::Init { .. }), "{e:?}");
    one_line(&e, "failing", path, "always refuses to start");
}

#[test]
fn panicking_init_is_caught() {
    let path = &libs().fixture;
    let e = storage_err(&mut explicit("panic-init", path), "panic-init");
    assert!(matches!(e, PluginError::Init { .. }), "{e:?}");
    one_line(
        &e,
        "panic-init",
        path,
        "plugin berth-fixture panicked in init",
    );
}

/// A search folder with junk in it: the junk is skipped, the plugin after it is found.
fn junk_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("liba-junk.so"), "junk").expect("write");
    std::fs::copy(&libs().bad_abi, tmp.path().join("libb-bad.so")).expect("copy");
    let good = tmp.path().join("libc-fixture.so");
    std::fs::copy(&libs().fixture, &good).expect("copy");
    (tmp, good)
}

#[test]
fn search_skips_junk_and_network_calls_cross() {
    let (tmp, good) = junk_dir();
    let mut loader = Loader::new(BTreeMap::new(), vec![tmp.path().into()]);
    let (net, info) = loader
        .network("memnet", &json!({"prefix": "t"}))
        .expect("memnet loads from the search dir");
    assert_eq!(
        (info.plugin.as_str(), info.version.as_str(), info.kind),
        ("berth-fixture", "0.0.1", DriverKind::Network)
    );
    assert_eq!(info.library, good);
    assert_eq!(net.name(), "memnet");
    assert_eq!(net.status(), vec![("Prefix".to_string(), "t".to_string())]);
    let spec = NetworkSpec {
        id: "n1".into(),
        name: "front".into(),
        subnet: Some("10.9.0.0/24".into()),
        ..Default::default()
    };
    let created = net.create_network(&spec).expect("create");
    assert_eq!(created.subnet, "10.9.0.0/24");
    assert_eq!(
        created.details.get("bridge").map(String::as_str),
        Some("t-front")
    );
    // Errors keep their variant across the boundary.
    assert!(matches!(
        net.create_network(&spec),
        Err(DriverError::AlreadyExists(_))
    ));
    net.delete_network("n1").expect("delete");
    assert!(matches!(
        net.delete_network("n1"),
        Err(DriverError::NotFound(_))
    ));
    assert_eq!(loader.loaded(), vec![info]);
}

#[test]
fn explicit_junk_is_an_error_even_with_a_good_search_dir() {
    let (tmp, _) = junk_dir();
    let junk = tmp.path().join("liba-junk.so");
    let map = BTreeMap::from([("memnet".to_string(), junk.clone())]);
    let mut loader = Loader::new(map, vec![tmp.path().into()]);
    match loader.network("memnet", &json!({})) {
        Err(e @ PluginError::NotAPlugin { .. }) => {
            one_line(&e, "memnet", &junk, "not a berth plugin")
        }
        Err(other) => panic!("expected NotAPlugin, got {other:?}"),
        Ok(_) => panic!("an explicitly configured junk library must fail"),
    }
}

/// A reader that counts what was read from it.
struct Counting<R>(R, u64);

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
}

#[test]
fn panics_and_streams_cross_the_boundary() {
    let mut loader = explicit("panicky", &libs().fixture);
    let (d, _) = loader
        .storage("panicky", &json!({}))
        .expect("panicky loads");
    match d.list() {
        Err(DriverError::Internal(m)) => {
            assert!(m.contains("plugin berth-fixture panicked in list"), "{m}");
            assert!(m.contains("list panics on purpose"), "{m}");
        }
        other => panic!("expected a caught panic, got {other:?}"),
    }
    // The library still answers after a panic.
    assert_eq!(d.name(), "panicky");
    assert!(matches!(
        d.create("a", None, &CreateOpts::default()),
        Err(DriverError::Conflict(_))
    ));
    // The plugin reads one byte of 8 MiB and stops: the call returns, the input is drained.
    let mut input = Counting(std::io::repeat(7).take(8 << 20), 0);
    assert_eq!(d.apply_diff("a", &mut input).expect("apply"), 1);
    assert_eq!(input.1, 8 << 20);
    // The plugin writes 4 MiB, far more than a pipe holds.
    let mut out = Vec::new();
    d.diff("a", &mut out).expect("diff");
    assert_eq!(out.len(), 4 << 20);
    assert!(out.iter().all(|b| *b == b'x'));
}

#[test]
fn registry_calls_and_blob_streams_cross() {
    use berth_plugins::core::reference::Reference;
    use berth_plugins::core::registry::Credentials;
    let mut loader = explicit("memreg", &libs().fixture);
    let (reg, info) = loader.registry("memreg", &json!({})).expect("memreg loads");
    assert_eq!(info.kind, DriverKind::Registry);
    assert_eq!(reg.name(), "memreg");
    let r = Reference {
        domain: "127.0.0.1:5000".into(),
        path: "team/app".into(),
        tag: Some("v1".into()),
        digest: None,
    };
    let creds = Credentials {
        username: "u".into(),
        password: "secret".into(),
        ..Default::default()
    };
    reg.login("127.0.0.1:5000", &creds).expect("login");
    let wrong = Credentials::default();
    assert!(matches!(
        reg.login("x", &wrong),
        Err(DriverError::Unauthorized(_))
    ));
    // A 3 MiB blob up and down through pipes.
    let blob: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    reg.push_blob(
        &r,
        "sha256:b",
        blob.len() as u64,
        &creds,
        &mut blob.as_slice(),
    )
    .expect("push blob");
    assert!(reg.blob_exists(&r, "sha256:b", &creds).expect("exists"));
    let mut back = Vec::new();
    let n = reg
        .fetch_blob(&r, "sha256:b", &creds, &mut back)
        .expect("fetch blob");
    assert_eq!((n, back == blob), (blob.len() as u64, true));
    let short = reg.push_blob(&r, "sha256:c", 10, &creds, &mut &b"abc"[..]);
    assert!(
        matches!(short, Err(DriverError::InvalidInput(_))),
        "{short:?}"
    );
    let digest = reg
        .push_manifest(
            &r,
            "application/vnd.oci.image.manifest.v1+json",
            b"{}",
            &creds,
        )
        .expect("push manifest");
    let m = reg.fetch_manifest(&r, &creds).expect("fetch manifest");
    assert_eq!((m.digest, m.bytes), (digest, b"{}".to_vec()));
}

#[test]
fn runtime_calls_cross() {
    use berth_plugins::core::runtime::{Spec, Status, StdioFds};
    let mut loader = explicit("fakert", &libs().fixture);
    let (rt, info) = loader.runtime("fakert", &json!({})).expect("fakert loads");
    assert_eq!(
        (info.kind, rt.name()),
        (DriverKind::Runtime, "fakert".to_string())
    );
    let stdio = StdioFds {
        stdin: 0,
        stdout: 1,
        stderr: 2,
    };
    let pid = rt
        .create("c1", Path::new("/run/bundle"), &Spec::default(), stdio)
        .expect("create");
    assert_eq!(pid, 1);
    rt.start("c1").expect("start");
    assert_eq!(rt.state("c1").expect("state").status, Status::Running);
    rt.pause("c1").expect("pause");
    assert_eq!(rt.state("c1").expect("state").status, Status::Paused);
    rt.kill("c1", 9, true).expect("kill");
    rt.delete("c1").expect("delete");
    assert!(matches!(rt.state("c1"), Err(DriverError::NotFound(_))));
}

#[test]
fn writable_library_is_refused_before_it_is_opened() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let lib = tmp.path().join("libfixture.so");
    std::fs::copy(&libs().fixture, &lib).expect("copy");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let e = storage_err(&mut explicit("failing", &lib), "failing");
    assert!(matches!(e, PluginError::Untrusted { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.contains(&format!("{} is writable by everyone", lib.display())),
        "{msg}"
    );
}

#[test]
fn two_libraries_claiming_one_driver_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::copy(&libs().fixture, tmp.path().join("liba.so")).expect("copy");
    std::fs::copy(&libs().fixture, tmp.path().join("libb.so")).expect("copy");
    let mut loader = Loader::new(BTreeMap::new(), vec![tmp.path().into()]);
    match loader.check() {
        Err(e @ PluginError::Duplicate { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("liba.so") && msg.contains("libb.so"), "{msg}");
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }
}
