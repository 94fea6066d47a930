//! A data root written by the previous berth (the commit before the typed records and the
//! data root's format version) is upgraded in place by today's berthd with everything intact
//! (issue 17's acceptance): the old berthd, berth-monitor, plugins and berth CLI are built
//! from a pinned commit of this repository (`git archive` into `target/prev-<commit>/src`,
//! built into `target/prev-<commit>`, reused once built), fill a data root — an image, a
//! named volume, a user network, containers running, exited 3, created — and stop with
//! SIGTERM (live restore); the new berthd then starts on that data root, writes format 2,
//! shows every record as the old one did, and controls the running containers (exec, stop)
//! and the stopped one (start) again.
//!
//! Cost: the first run builds the old daemon, monitor, CLI and plugins from scratch (a debug
//! build of ~400 crates: about 10 minutes on 2 cores); later runs reuse it. Skipped, with a
//! message, only when the checkout has no git history to take the old commit from.

use berth_tests::TestDaemon;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The last commit before the data root's format version (format 1: no `berth-format.json`).
const PREV_COMMIT: &str = "3990e72cae8f5e04d2dd50c6f6b6933ee4065e0e";

/// The packages the old daemon needs beside it (monitor, CLI, default plugins).
const PACKAGES: &[&str] = &[
    "berth-daemon",
    "berth-monitor",
    "berth-cli",
    "berth-storage-overlay",
    "berth-storage-vfs",
    "berth-net-bridge",
    "berth-registry-distribution",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo())
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The folder holding the old build's binaries (`target/prev-<commit>/debug`), built if
/// needed; `None` when this checkout has no git history.
fn previous_berth() -> Option<PathBuf> {
    let target = berth_tests::target_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo().join("target"))
        .join(format!("prev-{}", &PREV_COMMIT[..12]));
    let bins = target.join("debug");
    let built = ["berthd", "berth-monitor", "berth"]
        .iter()
        .all(|b| bins.join(b).exists());
    if built {
        return Some(bins);
    }
    let commit = format!("{PREV_COMMIT}^{{commit}}");
    if git(&["rev-parse", "--git-dir"]).is_none() {
        eprintln!("upgrade_dataroot: SKIPPED: {} is not a git checkout, so the previous berth ({PREV_COMMIT}) cannot be built", repo().display());
        return None;
    }
    if git(&["cat-file", "-e", &commit]).is_none() {
        if git(&["rev-parse", "--is-shallow-repository"]).as_deref() == Some("true") {
            eprintln!("upgrade_dataroot: SKIPPED: this shallow clone lacks {PREV_COMMIT}; fetch more history to run it");
            return None;
        }
        panic!("commit {PREV_COMMIT} not found in {}", repo().display());
    }
    let src = target.join("src");
    if !src.join("Cargo.toml").exists() {
        std::fs::create_dir_all(&src).expect("mkdir prev src");
        let archive = Command::new("git")
            .arg("-C")
            .arg(repo())
            .args(["archive", "--format=tar", PREV_COMMIT])
            .output()
            .expect("git archive");
        assert!(archive.status.success(), "git archive failed");
        let mut tar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&src)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("tar");
        {
            use std::io::Write;
            let mut stdin = tar.stdin.take().expect("tar stdin");
            stdin.write_all(&archive.stdout).expect("feeding tar");
        }
        assert!(tar.wait().expect("tar").success(), "unpacking failed");
    }
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&src)
        .args(["build", "--locked"])
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS");
    for p in PACKAGES {
        cargo.args(["-p", p]);
    }
    eprintln!(
        "upgrade_dataroot: building berth {PREV_COMMIT} into {} (once)",
        target.display()
    );
    let status = cargo.status().expect("running cargo");
    assert!(status.success(), "building the previous berth failed");
    Some(bins)
}

fn inspect(d: &TestDaemon, kind: &str, name: &str) -> Value {
    let out = d.docker(&[kind, "inspect", name]);
    let v: Value = serde_json::from_str(out.ok()).expect("inspect JSON");
    v[0].clone()
}

/// The fields of a container's inspect that an upgrade must keep.
const CONTAINER_FIELDS: &[&str] = &[
    "/Id",
    "/Name",
    "/Created",
    "/Path",
    "/Args",
    "/Image",
    "/Driver",
    "/RestartCount",
    "/LogPath",
    "/State/Status",
    "/State/Running",
    "/State/Paused",
    "/State/Pid",
    "/State/ExitCode",
    "/State/StartedAt",
    "/State/FinishedAt",
    "/Config/Labels",
    "/Config/Cmd",
    "/Config/Env",
    "/Config/Image",
    "/Config/Hostname",
    "/HostConfig/NetworkMode",
    "/HostConfig/RestartPolicy",
    "/HostConfig/Binds",
    "/HostConfig/AutoRemove",
    "/Mounts",
    "/NetworkSettings/Ports",
];

fn same(what: &str, old: &Value, new: &Value, fields: &[&str]) {
    for f in fields {
        assert_eq!(
            old.pointer(f),
            new.pointer(f),
            "{what}: {f} changed by the upgrade\nold: {old:#}\nnew: {new:#}"
        );
    }
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn upgrade_keeps_images_containers_volumes_networks() {
    let Some(prev) = previous_berth() else {
        return;
    };
    let mut d = TestDaemon::builder().berthd(&prev.join("berthd")).start();
    d.import_busybox();
    d.docker(&["tag", "busybox:latest", "busybox:old"]).ok();
    d.docker(&["volume", "create", "--label", "v=1", "data"])
        .ok();
    let subnet = d.subnet().replace("10.213.", "10.214.");
    d.docker(&[
        "network", "create", "--subnet", &subnet, "--label", "n=1", "net1",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "k=v",
        "-v",
        "data:/data",
        "--network",
        "net1",
        "--network-alias",
        "www",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f; exec sleep 300",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "quiet",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    // The old CLI makes the exited one.
    let old_cli = Command::new(prev.join("berth"))
        .arg("-H")
        .arg(d.host())
        .args([
            "run", "--name", "three", "--label", "k=3", "busybox", "sh", "-c", "exit 3",
        ])
        .env("DOCKER_CONFIG", d.dir().join("docker-config"))
        .status()
        .expect("old berth CLI");
    assert_eq!(old_cli.code(), Some(3));
    d.docker(&["create", "--name", "fresh", "busybox", "true"])
        .ok();
    let names = ["web", "quiet", "three", "fresh"];
    let before: Vec<Value> = names.iter().map(|n| inspect(&d, "container", n)).collect();
    let vol_before = inspect(&d, "volume", "data");
    let net_before = inspect(&d, "network", "net1");
    let images_before = d
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .ok()
        .to_string();
    let web_pid = before[0]["State"]["Pid"].as_i64().unwrap_or(0);
    assert!(
        web_pid > 0 && alive(web_pid),
        "web runs under the old berthd"
    );
    assert!(!d.data_root().join("berth-format.json").exists());

    // Old berthd stops (live restore), the new one takes its data root.
    d.stop();
    assert!(
        alive(web_pid),
        "a running container outlives the old berthd"
    );
    d.use_berthd(None);
    d.restart();

    let format = std::fs::read_to_string(d.data_root().join("berth-format.json"))
        .expect("the new berthd writes the format version");
    assert_eq!(format, r#"{"version":2}"#);
    let images_after = d
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .ok()
        .to_string();
    assert_eq!(images_before, images_after);
    // Layers the old berthd kept as whole tars are served from them as they are (issue 19:
    // new layers keep split records; old ones are not converted).
    assert_saved_layers_exact(&d, "busybox");
    for (name, old) in names.iter().zip(&before) {
        let new = inspect(&d, "container", name);
        same(name, old, &new, CONTAINER_FIELDS);
        let (o, n) = (
            &old["NetworkSettings"]["Networks"],
            &new["NetworkSettings"]["Networks"],
        );
        assert_eq!(
            o.as_object().map(|m| m.keys().collect::<Vec<_>>()),
            n.as_object().map(|m| m.keys().collect::<Vec<_>>()),
            "{name}: networks"
        );
        for (net, ep) in o.as_object().into_iter().flatten() {
            same(
                &format!("{name} on {net}"),
                ep,
                &n[net],
                &[
                    "/NetworkID",
                    "/EndpointID",
                    "/IPAddress",
                    "/Aliases",
                    "/IPAMConfig",
                ],
            );
        }
    }
    let vol_after = inspect(&d, "volume", "data");
    assert_eq!(vol_before, vol_after, "the volume");
    let net_after = inspect(&d, "network", "net1");
    same(
        "net1",
        &net_before,
        &net_after,
        &[
            "/Id",
            "/Name",
            "/Created",
            "/Driver",
            "/IPAM",
            "/Options",
            "/Labels",
            "/Internal",
        ],
    );
    let attached = |v: &Value| {
        v["Containers"]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
    };
    assert_eq!(
        attached(&net_before),
        attached(&net_after),
        "net1's containers"
    );

    // The running ones are still controlled; the stopped one starts again.
    assert!(alive(web_pid), "web still runs under the new berthd");
    let cat = d.docker(&["exec", "web", "cat", "/data/f"]);
    assert_eq!(cat.ok().trim(), "kept");
    d.docker(&["stop", "-t", "1", "web"]).ok();
    d.docker(&["stop", "-t", "1", "quiet"]).ok();
    let web = inspect(&d, "container", "web");
    assert_eq!(web["State"]["Status"], "exited", "{web:#}");
    assert!(!alive(web_pid));
    let again = d.docker(&["start", "-a", "three"]);
    assert_eq!(again.status, 3, "{}", again.stderr);
    d.docker(&["start", "web"]).ok();
    let cat = d.docker(&["exec", "web", "cat", "/data/f"]);
    assert_eq!(cat.ok().trim(), "kept");
    d.docker(&["rm", "-f", "web", "quiet", "three", "fresh"])
        .ok();
    d.docker(&["network", "rm", "net1"]).ok();
    d.docker(&["volume", "rm", "data"]).ok();
}

/// `save` of `image` holds every blob with the bytes its name promises, and the old layers'
/// whole tars are still where the old berthd kept them.
fn assert_saved_layers_exact(d: &TestDaemon, image: &str) {
    use sha2::{Digest, Sha256};
    let kept = std::fs::read_dir(d.data_root().join("image/layers"))
        .expect("layers")
        .flatten()
        .filter(|e| e.path().join("layer.tar").exists())
        .count();
    assert!(kept > 0, "the old layers keep their tars");
    let path = d.dir().join("upgraded-save.tar");
    d.docker(&["save", "-o", &path.display().to_string(), image])
        .ok();
    let mut ar = tar::Archive::new(std::fs::File::open(&path).expect("saved"));
    let mut blobs = 0;
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        let Some(hex) = name.strip_prefix("blobs/sha256/").map(str::to_string) else {
            continue;
        };
        let mut h = Sha256::new();
        std::io::copy(&mut e, &mut h).expect("read");
        assert_eq!(hex::encode(h.finalize()), hex, "blob {name}");
        blobs += 1;
    }
    assert!(blobs >= 2, "a layer and the config: {blobs}");
    let _ = std::fs::remove_file(&path);
}
