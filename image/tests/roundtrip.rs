//! Import, save and load round trips through the image store on the vfs driver.

use berth_image::ImageStore;
use std::sync::Arc;

fn store(dir: &std::path::Path) -> ImageStore {
    let driver =
        berth_storage_vfs::new_driver(&serde_json::json!({"root": dir.join("vfs")})).expect("vfs");
    ImageStore::open(&dir.join("image"), Arc::from(driver), 1 << 30).expect("store")
}

#[test]
fn import_save_load_keeps_the_id() {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let rootfs = tmp.path().join("rootfs.tar");
    berth_testimg::busybox_rootfs_tar(&rootfs).expect("rootfs");
    let a = store(&tmp.path().join("a"));
    let id = a
        .import(
            &mut std::fs::File::open(&rootfs).expect("open"),
            Some("busybox:t"),
            &["CMD [\"sh\"]".into()],
            "",
        )
        .expect("import");
    assert_eq!(a.resolve("busybox:t").expect("resolve").id, id);
    assert_eq!(a.resolve(&id[7..19]).expect("short id").id, id);
    let mut saved = Vec::new();
    a.save(&["busybox:t".into()], &mut saved).expect("save");
    let b = store(&tmp.path().join("b"));
    let mut lines = Vec::new();
    let loaded = b
        .load(saved.as_slice(), &mut |l| lines.push(l))
        .expect("load");
    assert_eq!(loaded, vec!["busybox:t".to_string()]);
    assert_eq!(b.resolve("busybox:t").expect("resolve").id, id);
    // A truncated archive is refused and leaves nothing.
    let c = store(&tmp.path().join("c"));
    assert!(c.load(&saved[..saved.len() / 2], &mut |_| {}).is_err());
    assert_eq!(c.count(), 0);
    assert!(c.storage().list().expect("list").is_empty());
    // Multi-layer docker-archive written by the test image tools loads with the expected ID.
    let l2 = tmp.path().join("l2.tar");
    berth_testimg::bulk::layer_tar(
        &l2,
        7,
        &[("x.bin".into(), 4096, berth_testimg::bulk::Fill::Random)],
    )
    .expect("layer");
    let arch = tmp.path().join("multi.tar");
    let want = berth_testimg::docker_archive::write(&arch, &[&rootfs, &l2], "multi:1", &["sh"])
        .expect("archive");
    let got = c
        .load(std::fs::File::open(&arch).expect("open"), &mut |_| {})
        .expect("load multi");
    assert_eq!(got, vec!["multi:1".to_string()]);
    assert_eq!(c.resolve("multi:1").expect("resolve").id, want);
}
