//! A measurement, not a test (ignored; run with `cargo test -p berth-image --test
//! split_measure -- --ignored --nocapture`): bytes written to the data root and time to load
//! and to apply (as a pull does, from zstd) the same image, with split records and, as before
//! them, with whole kept tars (a driver without a diff folder keeps `layer.tar`).

use berth_core::storage::{Change, CreateOpts, Mount, Usage};
use berth_core::{DriverResult, StorageDriver};
use berth_image::ImageStore;
use berth_testimg::bulk::{layer_tar, Fill};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A driver as it was before `diff_dir`: every call passed on, no diff folder.
struct NoDiffDir(Box<dyn StorageDriver>);

impl StorageDriver for NoDiffDir {
    fn name(&self) -> String {
        self.0.name()
    }
    fn status(&self) -> Vec<(String, String)> {
        self.0.status()
    }
    fn create(&self, id: &str, parent: Option<&str>, opts: &CreateOpts) -> DriverResult<()> {
        self.0.create(id, parent, opts)
    }
    fn remove(&self, id: &str) -> DriverResult<()> {
        self.0.remove(id)
    }
    fn exists(&self, id: &str) -> bool {
        self.0.exists(id)
    }
    fn list(&self) -> DriverResult<Vec<String>> {
        self.0.list()
    }
    fn mounts(&self, id: &str) -> DriverResult<Vec<Mount>> {
        self.0.mounts(id)
    }
    fn apply_diff(&self, id: &str, diff: &mut dyn Read) -> DriverResult<u64> {
        self.0.apply_diff(id, diff)
    }
    fn independent_diffs(&self) -> bool {
        self.0.independent_diffs()
    }
    fn diff(&self, id: &str, out: &mut dyn Write) -> DriverResult<()> {
        self.0.diff(id, out)
    }
    fn changes(&self, id: &str) -> DriverResult<Vec<Change>> {
        self.0.changes(id)
    }
    fn usage(&self, id: &str) -> DriverResult<Usage> {
        self.0.usage(id)
    }
}

fn store(dir: &Path, split: bool) -> ImageStore {
    let d = berth_storage_overlay::new_driver(&serde_json::json!({"root": dir.join("overlay2")}))
        .expect("overlay");
    let d: Arc<dyn StorageDriver> = if split {
        Arc::from(d)
    } else {
        Arc::new(NoDiffDir(d))
    };
    ImageStore::open(&dir.join("image"), d, 4 << 30).expect("store")
}

/// Bytes of the data root (blocks allocated, as `du` counts them).
fn du(dir: &Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-s", "-B1"])
        .arg(dir)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a measurement"]
fn bytes_written_and_time_before_and_after() {
    let work = PathBuf::from("/var/tmp/berth-split-measure");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("mkdir");
    let mut layers = vec![];
    for i in 0..4u64 {
        let l = work.join(format!("l{i}.tar"));
        let files: Vec<(String, u64, Fill)> = (0..32)
            .map(|f| {
                (
                    format!("f{i}-{f}.bin"),
                    1 << 20,
                    if f % 2 == 0 { Fill::Random } else { Fill::Text },
                )
            })
            .collect();
        layer_tar(&l, i + 1, &files).expect("layer");
        layers.push(l);
    }
    let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
    let arch = work.join("image.tar");
    berth_testimg::docker_archive::write(&arch, &refs, "m:1", &["sh"]).expect("archive");
    let zst = work.join("l0.tar.zst");
    {
        let mut enc =
            zstd::Encoder::new(std::fs::File::create(&zst).expect("zst"), 1).expect("enc");
        std::io::copy(&mut std::fs::File::open(&layers[0]).expect("l0"), &mut enc).expect("copy");
        enc.finish().expect("finish");
    }
    let l0 = std::fs::read(&layers[0]).expect("read");
    let diff_id = berth_core::Digest::of(&l0).to_string();
    for split in [false, true] {
        let root = work.join(if split { "after" } else { "before" });
        let s = store(&root, split);
        let t = Instant::now();
        s.load(std::fs::File::open(&arch).expect("open"), &mut |_| {})
            .expect("load");
        let load = t.elapsed();
        let t = Instant::now();
        let mut sum = [0u8; 8];
        let mut tar = s
            .open_layer_tar(&s.resolve("m:1").expect("image").diff_ids[0].clone())
            .expect("open");
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = tar.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            sum[0] ^= buf[0];
        }
        let serve = t.elapsed();
        let loaded = du(&root);
        let pulled_root = root.join("pull");
        let p = store(&pulled_root, split);
        let t = Instant::now();
        p.apply_layer(None, &diff_id, &mut std::fs::File::open(&zst).expect("zst"))
            .expect("apply");
        let pull = t.elapsed();
        println!(
            "{}: load of 4 x 32 MiB layers {load:?}, data root {} MiB; serving one layer {serve:?}; \
             applying one zstd layer (a pull) {pull:?}, data root {} MiB",
            if split { "split records" } else { "kept tars" },
            loaded >> 20,
            du(&pulled_root) >> 20,
        );
        drop(p);
        drop(s);
        let _ = std::fs::remove_dir_all(&root);
    }
    let _ = std::fs::remove_dir_all(&work);
}
