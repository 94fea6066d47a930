//! rmi, prune, history, commit, bad input and start-up reconciliation on the vfs driver.

use berth_image::{CommitOpts, DeleteItem, ImageStore, ImageUsage, NoContainers};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn store_with(dir: &Path, max: u64) -> ImageStore {
    let driver =
        berth_storage_vfs::new_driver(&serde_json::json!({"root": dir.join("vfs")})).expect("vfs");
    ImageStore::open(&dir.join("image"), Arc::from(driver), max).expect("store")
}

fn store(dir: &Path) -> ImageStore {
    store_with(dir, 1 << 30)
}

fn rootfs(dir: &Path) -> PathBuf {
    let p = dir.join("rootfs.tar");
    if !p.exists() {
        berth_testimg::busybox_rootfs_tar(&p).expect("rootfs");
    }
    p
}

fn import(s: &ImageStore, tar: &Path, tag: Option<&str>, changes: &[&str]) -> String {
    let changes: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    s.import(
        &mut std::fs::File::open(tar).expect("open"),
        tag,
        &changes,
        "",
    )
    .expect("import")
}

struct OneContainer(String, bool);

impl ImageUsage for OneContainer {
    fn containers_using(&self, image_id: &str) -> Vec<String> {
        if image_id == self.0 {
            vec!["c0ffee0123456789c0ffee0123456789c0ffee0123456789c0ffee0123456789".into()]
        } else {
            Vec::new()
        }
    }
    fn is_running(&self, _: &str) -> bool {
        self.1
    }
}

/// A tar with one entry whose raw name (and link target) bypass the tar crate's checks.
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn rmi_untags_then_deletes_like_docker() {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let tar = rootfs(tmp.path());
    let s = store(tmp.path());
    let id = import(&s, &tar, Some("a:1"), &["CMD [\"sh\"]"]);
    s.tag(&id, "b:1").expect("tag");
    let short = &id[7..19];
    // By ID with two tags: refused without force.
    let e = s
        .remove(short, false, true, &NoContainers)
        .expect_err("conflict");
    assert_eq!(
        e.to_string(),
        format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );
    // By tag: only an untag while another tag remains.
    let r = s.remove("a:1", false, true, &NoContainers).expect("rmi a");
    assert_eq!(r, vec![DeleteItem::Untagged("a:1".into())]);
    // The last tag of an image a container uses: refused, Docker's text.
    let used = OneContainer(id.clone(), false);
    let e = s.remove("b:1", false, true, &used).expect_err("used");
    assert_eq!(
        e.to_string(),
        format!("conflict: unable to remove repository reference \"b:1\" (must force) - container c0ffee012345 is using its referenced image {short}")
    );
    // A running container's image cannot be deleted even with force (only untagged).
    let running = OneContainer(id.clone(), true);
    let e = s.remove(&id, true, true, &running).expect_err("running");
    assert!(
        e.to_string()
            .contains("(cannot be forced) - image is being used by running container c0ffee012345"),
        "{e}"
    );
    let r = s.remove("b:1", false, true, &NoContainers).expect("rmi b");
    assert_eq!(r[0], DeleteItem::Untagged("b:1".into()));
    assert_eq!(r[1], DeleteItem::Deleted(id.clone()));
    assert!(s.list().is_empty());
    assert!(s.layer_chains().is_empty());
    assert!(s.storage().list().expect("list").is_empty());
    assert!(s.remove("b:1", false, true, &NoContainers).is_err());
}

#[test]
fn shared_layers_are_refcounted_and_prune_works() {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let tar = rootfs(tmp.path());
    let s = store(tmp.path());
    let a = import(&s, &tar, Some("a"), &["LABEL keep=yes"]);
    let b = import(&s, &tar, None, &[]);
    assert_ne!(a, b);
    assert_eq!(s.layer_chains().len(), 1, "identical layers are shared");
    let (total, per) = s.disk_usage();
    assert!(total > 0);
    assert!(per.iter().all(|(_, shared)| *shared == total));
    // Dangling prune removes b but keeps the shared layer.
    let rep = s.prune(false, &[], None, &NoContainers).expect("prune");
    assert_eq!(rep.deleted, vec![DeleteItem::Deleted(b.clone())]);
    assert_eq!(rep.reclaimed, 0);
    assert_eq!(s.layer_chains().len(), 1);
    // prune -a with a label filter that does not match keeps a; then without it removes a.
    let rep = s
        .prune(true, &["keep=no".into()], None, &NoContainers)
        .expect("prune");
    assert!(rep.deleted.is_empty());
    let rep = s.prune(true, &[], None, &NoContainers).expect("prune -a");
    assert!(rep
        .deleted
        .contains(&DeleteItem::Untagged("a:latest".into())));
    assert!(rep.reclaimed > 0);
    assert!(s.list().is_empty());
    assert!(s.storage().list().expect("list").is_empty());
}

#[test]
fn commit_adds_a_layer_and_history() {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let tar = rootfs(tmp.path());
    let s = store(tmp.path());
    let base = import(&s, &tar, Some("base"), &["CMD [\"sh\"]"]);
    let img = s.get(&base).expect("get");
    let hist = s.history("base").expect("history");
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].id, base);
    assert_eq!(hist[0].comment, "Imported from -");
    assert_eq!(hist[0].tags, vec!["base:latest".to_string()]);
    // A container layer with one new file.
    let cid = "c".repeat(64);
    s.storage()
        .create(&cid, img.top_layer().as_deref(), &Default::default())
        .expect("rw layer");
    let m = s.storage().mounts(&cid).expect("mounts");
    std::fs::write(Path::new(&m[0].source).join("hello.txt"), b"hi\n").expect("write");
    let opts = CommitOpts {
        layer: cid.clone(),
        parent: Some(base.clone()),
        container_id: cid.clone(),
        config: serde_json::json!({"Cmd": ["sh"], "Env": ["A=1"]}),
        created_by: "sh -c echo hi".into(),
        changes: vec!["LABEL v=2".into()],
        comment: "made by test".into(),
        author: "me".into(),
        tag: Some("child:1".into()),
    };
    let child = s.commit(&opts).expect("commit");
    let c = s.get(&child).expect("child");
    assert_eq!(c.parent, base);
    assert_eq!(c.diff_ids.len(), 2);
    assert_eq!(c.labels().get("v").map(String::as_str), Some("2"));
    let hist = s.history("child:1").expect("history");
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0].id, child);
    assert_eq!(hist[0].created_by, "sh -c echo hi");
    assert_eq!(hist[0].comment, "made by test");
    assert_eq!(hist[1].id, base, "the parent image's row carries its ID");
    // The parent cannot go while a child depends on it.
    let e = s
        .remove(&base[7..19], true, true, &NoContainers)
        .expect_err("child");
    assert!(
        e.to_string().contains("image has dependent child images"),
        "{e}"
    );
    // An unchanged container commits as an empty layer.
    let cid2 = "d".repeat(64);
    s.storage()
        .create(&cid2, img.top_layer().as_deref(), &Default::default())
        .expect("rw layer");
    let empty = s
        .commit(&CommitOpts {
            layer: cid2.clone(),
            parent: Some(base.clone()),
            ..Default::default()
        })
        .expect("empty commit");
    let e = s.get(&empty).expect("empty");
    assert_eq!(e.diff_ids.len(), 1);
    assert_eq!(
        e.config["history"][1]["empty_layer"],
        serde_json::json!(true)
    );
    assert_eq!(s.history(&empty).expect("history")[0].size, 0);
    s.storage().remove(&cid).expect("rm");
    s.storage().remove(&cid2).expect("rm");
    // Removing the child with pruning also removes untagged parents, not tagged ones.
    let r = s
        .remove("child:1", false, true, &NoContainers)
        .expect("rmi child");
    assert!(r.contains(&DeleteItem::Deleted(child)));
    assert!(s.get(&base).is_ok());
}

#[test]
fn bad_input_leaves_nothing() {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let tar = rootfs(tmp.path());
    let s = store(tmp.path());
    let check_clean = |s: &ImageStore| {
        assert!(s.list().is_empty());
        assert!(s.layer_chains().is_empty());
        assert!(s.storage().list().expect("list").is_empty());
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("image/tmp"))
            .expect("tmp")
            .collect();
        assert!(leftovers.is_empty());
    };
    // Archive entry escaping the archive.
    let evil = raw_tar(&[("../evil", tar::EntryType::Regular, "", b"x")]);
    let e = s.load(&evil[..], &mut |_| {}).expect_err("traversal");
    assert!(e.to_string().contains("escapes"), "{e}");
    check_clean(&s);
    // Symlink escaping the archive.
    let evil = raw_tar(&[("manifest.json", tar::EntryType::Symlink, "/etc/passwd", b"")]);
    let e = s.load(&evil[..], &mut |_| {}).expect_err("symlink");
    assert!(e.to_string().contains("outside the archive"), "{e}");
    check_clean(&s);
    // Layers with traversal and escaping symlinks, inside a well-formed archive.
    for (i, layer) in [
        raw_tar(&[("../../etc/evil", tar::EntryType::Regular, "", b"x")]),
        raw_tar(&[
            ("link", tar::EntryType::Symlink, "/etc", b""),
            ("link/evil", tar::EntryType::Regular, "", b"x"),
        ]),
    ]
    .iter()
    .enumerate()
    {
        let lp = tmp.path().join(format!("bad{i}.tar"));
        std::fs::write(&lp, layer).expect("write");
        let arch = tmp.path().join(format!("bad{i}-archive.tar"));
        berth_testimg::docker_archive::write(&arch, &[&tar, &lp], "bad:1", &["sh"])
            .expect("archive");
        let e = s
            .load(std::fs::File::open(&arch).expect("open"), &mut |_| {})
            .expect_err("bad layer");
        assert!(e.to_string().contains("refusing"), "{e}");
        check_clean(&s);
        assert!(!Path::new("/etc/evil").exists());
    }
    // A wrong diff_id: the config names another layer.
    let arch = tmp.path().join("good.tar");
    berth_testimg::docker_archive::write(&arch, &[&tar], "good:1", &["sh"]).expect("archive");
    let mut bytes = std::fs::read(&arch).expect("read");
    let good = s.load(&bytes[..], &mut |_| {}).expect("load");
    assert_eq!(good, vec!["good:1".to_string()]);
    s.remove("good:1", false, true, &NoContainers).expect("rmi");
    let diff = berth_core::Digest::of(&std::fs::read(&tar).expect("tar"))
        .hex()
        .to_string();
    let at = bytes
        .windows(64)
        .position(|w| w == diff.as_bytes())
        .expect("diff_id in config");
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    assert!(s.load(&bytes[..], &mut |_| {}).is_err());
    check_clean(&s);
    // A tar bomb: more than max-layer-size once decompressed.
    let small = store_with(&tmp.path().join("small"), 64 << 10);
    let e = small
        .import(&mut std::fs::File::open(&tar).expect("open"), None, &[], "")
        .expect_err("too large");
    assert!(e.to_string().contains("configured limit"), "{e}");
    assert!(small.list().is_empty());
    assert!(small.storage().list().expect("list").is_empty());
}

#[test]
fn open_repairs_interrupted_work() {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let tar = rootfs(tmp.path());
    let id = {
        let s = store(tmp.path());
        let id = import(&s, &tar, Some("keep"), &[]);
        // A half-made layer in the driver, temp files, an unreferenced record.
        s.storage()
            .create(&"e".repeat(64), None, &Default::default())
            .expect("create");
        std::fs::write(tmp.path().join("image/blobs/sha256/.tmp-1-2"), b"x").expect("tmp");
        std::fs::write(tmp.path().join("image/tmp/spool"), b"x").expect("tmp");
        id
    };
    let s = store(tmp.path());
    assert_eq!(s.resolve("keep").expect("kept").id, id);
    assert_eq!(s.storage().list().expect("list").len(), 1);
    assert!(!tmp.path().join("image/blobs/sha256/.tmp-1-2").exists());
    assert!(!tmp.path().join("image/tmp/spool").exists());
    // Losing the image record (crash inside rmi) makes its layer garbage at the next open.
    std::fs::remove_file(tmp.path().join(format!("image/imagedb/{}.json", &id[7..])))
        .expect("rm record");
    drop(s);
    let s = store(tmp.path());
    assert!(s.resolve("keep").is_err());
    assert!(s.layer_chains().is_empty());
    assert!(s.storage().list().expect("list").is_empty());
}

/// Builds an OCI image-layout tarball: a nested index (platform list) → manifest → config
/// and one zstd-compressed layer. Returns (archive, config digest).
fn oci_archive(tamper: bool, rootfs: &Path, arch: &str) -> (Vec<u8>, String) {
    let plain = std::fs::read(rootfs).expect("rootfs");
    let diff_id = berth_core::Digest::of(&plain).to_string();
    let layer = zstd::encode_all(&plain[..], 3).expect("zstd");
    let layer_digest = berth_core::Digest::of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2026-11-28T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2026-11-28T00:00:00Z", "created_by": "test"}],
    }))
    .expect("config");
    let config_digest = berth_core::Digest::of(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": layer_digest.to_string(), "size": layer.len()}],
    }))
    .expect("manifest");
    let mdigest = berth_core::Digest::of(&manifest);
    let inner = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "size": 1, "platform": {"architecture": "s390x", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest.to_string(), "size": manifest.len(), "platform": {"architecture": arch, "os": "linux"}},
        ],
    }))
    .expect("index");
    let idigest = berth_core::Digest::of(&inner);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idigest.to_string(), "size": inner.len(), "annotations": {"io.containerd.image.name": "docker.io/library/nested:1", "org.opencontainers.image.ref.name": "1"}}],
    }))
    .expect("index");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("append");
    };
    for blob in [&config, &layer, &manifest, &inner] {
        let name = format!("blobs/sha256/{}", berth_core::Digest::of(blob).hex());
        if tamper && blob == &layer {
            // Same content once decompressed, but not the bytes the name promises (a zstd
            // skippable frame appended).
            let mut other = blob.clone();
            other.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
            add(&name, &other);
        } else {
            add(&name, blob);
        }
    }
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    (b.into_inner().expect("tar"), config_digest.to_string())
}

#[test]
fn oci_nested_index_with_zstd_layers_and_parallel_loads() {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let tar = rootfs(tmp.path());
    let s = Arc::new(store(tmp.path()));
    let host = berth_image::save::host_arch();
    let (archive, want) = oci_archive(false, &tar, host);
    // Four loads of the same archive at once: all succeed, one layer, one image.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            let a = archive.clone();
            std::thread::spawn(move || s.load(&a[..], &mut |_| {}))
        })
        .collect();
    for h in handles {
        let got = h.join().expect("thread").expect("load");
        assert_eq!(got, vec!["nested:1".to_string()]);
    }
    assert_eq!(s.resolve("nested:1").expect("resolve").id, want);
    assert_eq!(s.layer_chains().len(), 1);
    assert_eq!(s.list().len(), 1);
    // An index with no manifest for this platform is refused clearly.
    let (other, _) = oci_archive(false, &tar, "mips64le");
    let e = s.load(&other[..], &mut |_| {}).expect_err("platform");
    assert!(
        e.to_string()
            .contains(&format!("no manifest for linux/{host}")),
        "{e}"
    );
    // A blob whose bytes do not match its name fails the load and leaves nothing.
    let fresh = store(&tmp.path().join("fresh"));
    let (tampered, _) = oci_archive(true, &tar, host);
    let e = fresh
        .load(&tampered[..], &mut |_| {})
        .expect_err("tampered");
    assert!(
        e.to_string().contains("digest mismatch for blobs/sha256/"),
        "{e}"
    );
    assert!(fresh.list().is_empty());
    assert!(fresh.layer_chains().is_empty());
    assert!(fresh.storage().list().expect("list").is_empty());
}
