//! Pulling a multi-layer image (issue 5): with overlay the layers download and unpack at once
//! and are recorded in chain order, with vfs one after another; either way the image has the
//! pushed ID and runs with every layer's files, and `save` gives back the exact layers. Two
//! pulls of the same image at once both succeed (one waits for the layers the other is making). A berthd killed with -9 in the
//! middle of a pull shows nothing half-pulled after its restart, and the pull then succeeds.
//! Traffic stays on loopback (Debian's `docker-registry` on 127.0.0.1).

use berth_testimg::bulk::{layer_tar, Fill};
use berth_tests::{DistRegistry, RegistryAuth, TestDaemon};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn image_id(d: &TestDaemon, name: &str) -> String {
    d.docker(&["image", "inspect", "--format", "{{.Id}}", name])
        .ok()
        .trim()
        .to_string()
}

/// Loads into `d` an image of the busybox rootfs and three data layers of `mb` MiB each
/// (random, text, both), pushes it to `reg` as `repo:1`; returns the reference and its ID.
fn push_layered(d: &TestDaemon, reg: &DistRegistry, repo: &str, mb: u64) -> (String, String) {
    let work = d.dir().join(format!("layers-{repo}"));
    std::fs::create_dir_all(&work).expect("mkdir");
    let size = mb << 20;
    let specs: [Vec<(String, u64, Fill)>; 3] = [
        vec![("one.bin".into(), size, Fill::Random)],
        vec![("two.txt".into(), size, Fill::Text)],
        vec![
            ("three.bin".into(), size / 2, Fill::Random),
            ("three.txt".into(), size / 2, Fill::Text),
        ],
    ];
    let mut layers: Vec<PathBuf> = vec![d.busybox_tar()];
    for (i, files) in specs.iter().enumerate() {
        let l = work.join(format!("l{i}.tar"));
        layer_tar(&l, i as u64 + 7, files).expect("layer");
        layers.push(l);
    }
    let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
    let arch = work.join("image.tar");
    let local = format!("{repo}:local");
    berth_testimg::docker_archive::write(&arch, &refs, &local, &["sh"]).expect("archive");
    d.docker(&["load", "-q", "-i", &arch.display().to_string()])
        .ok();
    let target = format!("{}/{repo}:1", reg.addr);
    d.docker(&["tag", &local, &target]).ok();
    d.docker(&["push", &target]).ok();
    let id = image_id(d, &target);
    (target, id)
}

/// The image runs and sees every layer's files.
fn check_runs(d: &TestDaemon, target: &str) {
    let out = d.docker(&[
        "run",
        "--rm",
        target,
        "sh",
        "-c",
        "ls /data | sort | tr '\\n' ' '",
    ]);
    assert_eq!(
        out.ok().trim(),
        "one.bin three.bin three.txt two.txt",
        "every layer's files"
    );
}

/// `docker save` of the pulled image holds every layer with the exact bytes its digest names
/// (the kept layer copies, written around the page cache).
fn check_save_is_exact(d: &TestDaemon, target: &str) {
    use sha2::{Digest, Sha256};
    let path = d.dir().join("saved.tar");
    d.docker(&["save", "-o", &path.display().to_string(), target])
        .ok();
    let mut ar = tar::Archive::new(std::fs::File::open(&path).expect("saved"));
    let mut layers = 0;
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        let Some(hex) = name.strip_prefix("blobs/sha256/") else {
            continue;
        };
        let hex = hex.to_string();
        let mut h = Sha256::new();
        std::io::copy(&mut e, &mut h).expect("read");
        assert_eq!(hex::encode(h.finalize()), hex, "blob {name}");
        layers += 1;
    }
    assert!(layers >= 4, "4 layers and the config: {layers} blobs");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn layered_pull_at_once_with_overlay_in_turn_with_vfs_and_two_pulls_together() {
    let Some(reg) = DistRegistry::start(RegistryAuth::None) else {
        return;
    };
    let a = TestDaemon::start();
    a.import_busybox();
    let (target, id) = push_layered(&a, &reg, "layered", 4);

    // overlay: two pulls of the same image at once.
    let b = TestDaemon::start();
    let pulls: Vec<_> = (0..2)
        .map(|_| {
            b.docker_cmd(&["pull", &target])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("docker pull")
        })
        .collect();
    for p in pulls {
        let out = p.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "concurrent pull: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(image_id(&b, &target), id, "the pushed image ID");
    check_runs(&b, &target);
    let layers = b.docker(&[
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        &target,
    ]);
    assert_eq!(layers.ok().trim(), "4");
    check_save_is_exact(&b, &target);

    // vfs: the layers are made one after another.
    let c = TestDaemon::builder().storage_driver("vfs").start();
    let pulled = c.docker(&["pull", &target]);
    let out = pulled.ok();
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(image_id(&c, &target), id, "the pushed image ID");
    check_runs(&c, &target);
}

#[test]
fn kill9_mid_pull_leaves_nothing_half_pulled() {
    let Some(reg) = DistRegistry::start(RegistryAuth::None) else {
        return;
    };
    let a = TestDaemon::start();
    a.import_busybox();
    let (target, id) = push_layered(&a, &reg, "killed", 48);

    let mut b = TestDaemon::start();
    let mut pull = b
        .docker_cmd(&["pull", "-q", &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker pull");
    // Wait (a hang guard, not a timing assertion) until a layer copy is being written.
    let layers = b.data_root().join("image/layers");
    let making = || {
        std::fs::read_dir(&layers)
            .map(|r| {
                r.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            })
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !making() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    b.kill9();
    let _ = pull.wait();
    b.restart();
    let listed = b.docker(&["images", "-a", "-q"]);
    let images = listed.ok();
    assert_eq!(images.trim(), "", "no half-pulled image is visible");
    let leftovers: Vec<String> = std::fs::read_dir(&layers)
        .expect("layers")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp layer copies left: {leftovers:?}"
    );
    // Every storage layer left is a recorded one (what was verified, kept for a retry).
    let recorded: Vec<String> = std::fs::read_dir(&layers)
        .expect("layers")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let storage = b.data_root().join("overlay2");
    if let Ok(dirs) = std::fs::read_dir(&storage) {
        for e in dirs.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.len() == 64 {
                assert!(recorded.contains(&n), "storage layer {n} has no record");
            }
        }
    }
    b.docker(&["pull", "-q", &target]).ok();
    assert_eq!(image_id(&b, &target), id, "the pushed image ID");
    check_runs(&b, &target);
}
