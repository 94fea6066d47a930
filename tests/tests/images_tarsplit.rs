//! Layers are kept as split records, not as second copies of their tars (issue 19): through
//! berthd on overlay and vfs, `load` then `save` gives back every layer byte for byte — an odd
//! layer too (duplicate entries, files the same layer hides or replaces, hard links, PAX and
//! GNU long names, garbage in the padding and after the end blocks) — and `pull` then `push`
//! to a second loopback registry keeps every digest. The data root holds `tar-split` records
//! and no `layer.tar`.

use berth_tests::{DistRegistry, RegistryAuth, TestDaemon};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Writes an archive of busybox, the small lower layer and the odd layer as `name`; returns
/// its path and the three layer tars' bytes by hex digest.
fn odd_archive(d: &TestDaemon, name: &str) -> (PathBuf, BTreeMap<String, Vec<u8>>) {
    let work = d.dir().join("odd");
    std::fs::create_dir_all(&work).expect("mkdir");
    let mut layers = BTreeMap::new();
    let mut paths = vec![d.busybox_tar()];
    for (file, bytes) in [
        ("lower.tar", berth_testimg::odd::lower()),
        ("odd.tar", berth_testimg::odd::layer()),
    ] {
        let p = work.join(file);
        std::fs::write(&p, &bytes).expect("write layer");
        layers.insert(hex::encode(Sha256::digest(&bytes)), bytes);
        paths.push(p);
    }
    let busybox = std::fs::read(d.busybox_tar()).expect("busybox");
    layers.insert(hex::encode(Sha256::digest(&busybox)), busybox);
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let arch = work.join("odd-image.tar");
    berth_testimg::docker_archive::write(&arch, &refs, name, &["sh"]).expect("archive");
    (arch, layers)
}

/// `save` of `name` holds exactly the `want` layers, byte for byte.
fn check_save(d: &TestDaemon, name: &str, want: &BTreeMap<String, Vec<u8>>) {
    let path = d.dir().join("saved.tar");
    d.docker(&["save", "-o", &path.display().to_string(), name])
        .ok();
    let mut ar = tar::Archive::new(std::fs::File::open(&path).expect("saved"));
    let mut found = 0;
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let entry = e.path().expect("path").display().to_string();
        let Some(hex) = entry.strip_prefix("blobs/sha256/").map(str::to_string) else {
            continue;
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).expect("read");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), hex, "blob {entry}");
        if let Some(w) = want.get(&hex) {
            assert!(w == &bytes, "layer {hex} differs");
            found += 1;
        }
    }
    assert_eq!(found, want.len(), "every layer saved");
    let _ = std::fs::remove_file(&path);
}

/// The data root keeps split records and no whole layer tars.
fn check_no_kept_tars(d: &TestDaemon) {
    let layers = d.data_root().join("image/layers");
    let mut splits = 0;
    for e in std::fs::read_dir(&layers).expect("layers").flatten() {
        assert!(
            !e.path().join("layer.tar").exists(),
            "a whole tar kept in {}",
            e.path().display()
        );
        splits += usize::from(e.path().join("tar-split").exists());
    }
    assert!(splits >= 3, "split records: {splits}");
}

fn load_save(driver: &str) {
    let d = TestDaemon::builder().storage_driver(driver).start();
    let (arch, want) = odd_archive(&d, "odd:1");
    d.docker(&["load", "-q", "-i", &arch.display().to_string()])
        .ok();
    check_no_kept_tars(&d);
    check_save(&d, "odd:1", &want);
    // The image runs: the duplicate's last version is what the container sees.
    let out = d.docker(&["run", "--rm", "odd:1", "cat", "/dup"]);
    assert_eq!(out.ok(), "second, longer version");
}

#[test]
fn load_then_save_gives_the_same_layers_on_overlay() {
    load_save("overlay2");
}

#[test]
fn load_then_save_gives_the_same_layers_on_vfs() {
    load_save("vfs");
}

/// The manifest digest `docker push` prints.
fn pushed_digest(d: &TestDaemon, target: &str) -> String {
    let pushed = d.docker(&["push", target]);
    let out = pushed.ok();
    out.split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string()
}

#[test]
fn pull_then_push_to_another_registry_keeps_the_digests() {
    let (Some(first), Some(second)) = (
        DistRegistry::start(RegistryAuth::None),
        DistRegistry::start(RegistryAuth::None),
    ) else {
        return;
    };
    let a = TestDaemon::start();
    let (arch, want) = odd_archive(&a, "odd:1");
    a.docker(&["load", "-q", "-i", &arch.display().to_string()])
        .ok();
    let src = format!("{}/odd:1", first.addr);
    a.docker(&["tag", "odd:1", &src]).ok();
    let digest = pushed_digest(&a, &src);
    for driver in ["overlay2", "vfs"] {
        let b = TestDaemon::builder().storage_driver(driver).start();
        b.docker(&["pull", &src]).ok();
        check_no_kept_tars(&b);
        let dst = format!("{}/odd-{driver}:1", second.addr);
        b.docker(&["tag", &src, &dst]).ok();
        assert_eq!(pushed_digest(&b, &dst), digest, "{driver}: same manifest");
        check_save(&b, &dst, &want);
        // A fresh daemon pulls the pushed copy: every layer checks against its digest.
        let c = TestDaemon::start();
        c.docker(&["pull", &dst]).ok();
        let id = |d: &TestDaemon, r: &str| {
            d.docker(&["image", "inspect", "--format", "{{.Id}}", r])
                .ok()
                .trim()
                .to_string()
        };
        assert_eq!(id(&c, &dst), id(&a, "odd:1"), "{driver}: same image");
    }
}

/// The unpacked copy of `rel` in the layer that holds it (overlay: a `diff` folder).
fn unpacked(d: &TestDaemon, rel: &str) -> PathBuf {
    std::fs::read_dir(d.data_root().join("overlay2"))
        .expect("overlay2")
        .flatten()
        .map(|e| e.path().join("diff").join(rel))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no unpacked {rel}"))
}

#[test]
fn a_layer_file_changed_on_disk_is_refused_by_save_and_push() {
    let Some(reg) = DistRegistry::start(RegistryAuth::None) else {
        return;
    };
    let d = TestDaemon::start();
    let (arch, _) = odd_archive(&d, "odd:1");
    d.docker(&["load", "-q", "-i", &arch.display().to_string()])
        .ok();
    // An admin edits a file of the image's layer in place (same size).
    let odd = unpacked(&d, "etc/odd");
    let mut bytes = std::fs::read(&odd).expect("read");
    bytes[0] ^= 0xFF;
    std::fs::write(&odd, &bytes).expect("write");
    let saved = d.dir().join("refused.tar");
    let save = d.docker(&["save", "-o", &saved.display().to_string(), "odd:1"]);
    // The status line went out before the layer was read: the transfer is cut.
    assert!(!save.success(), "save of a changed layer must fail");
    let target = format!("{}/odd:1", reg.addr);
    d.docker(&["tag", "odd:1", &target]).ok();
    let push = d.docker(&["push", &target]);
    let said = format!("{}{}", push.stdout, push.stderr);
    assert!(!push.success(), "push of a changed layer must fail: {said}");
    assert!(said.contains("cannot be reproduced exactly"), "{said}");
}
