//! Byte-exact round trips of odd layer tars through the split record, on vfs and overlay:
//! PAX and GNU long names, PAX sizes, big files, hard links, duplicate entries, files the same
//! layer deletes, replaces or hides, whiteouts and opaque markers, empty files, garbage in the
//! padding and after the end blocks. And a file changed on disk after unpack is refused with a
//! typed error, never served.

use berth_core::Digest;
use berth_image::{ImageError, ImageStore};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

fn store(dir: &Path, driver: &str) -> ImageStore {
    let cfg = serde_json::json!({"root": dir.join(driver)});
    let d = match driver {
        "vfs" => berth_storage_vfs::new_driver(&cfg).expect("vfs"),
        _ => berth_storage_overlay::new_driver(&cfg).expect("overlay"),
    };
    ImageStore::open(&dir.join("image"), Arc::from(d), 1 << 30).expect("store")
}

fn rebuilt(s: &ImageStore, chain: &str) -> Result<Vec<u8>, ImageError> {
    let mut tar = s.open_layer_tar(chain)?;
    let mut out = Vec::new();
    tar.read_to_end(&mut out)
        .map_err(|e| berth_image::layer_read_error("reading", e))?;
    assert_eq!(out.len() as u64, tar.size());
    Ok(out)
}

fn round_trip(driver: &str) {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let s = store(tmp.path(), driver);
    // A lower layer first, so the whiteout and the parent's files are real.
    let lower = berth_testimg::odd::lower();
    let lower_id = Digest::of(&lower).to_string();
    let base = s
        .apply_layer(None, &lower_id, &mut lower.as_slice())
        .expect("lower");
    let tar = berth_testimg::odd::layer();
    let diff_id = Digest::of(&tar).to_string();
    let chain = s
        .apply_layer(Some(&base), &diff_id, &mut tar.as_slice())
        .expect("apply");
    let dir = tmp
        .path()
        .join("image/layers")
        .join(chain.trim_start_matches("sha256:"));
    assert!(!dir.join("layer.tar").exists(), "no whole tar is kept");
    let split = std::fs::metadata(dir.join("tar-split"))
        .expect("split")
        .len();
    assert!(
        split < 64 << 10,
        "the split record holds no big body ({split} bytes)"
    );
    let got = rebuilt(&s, &chain).expect("rebuild");
    assert!(got == tar, "{driver}: the rebuilt tar differs");
    assert_eq!(rebuilt(&s, &base).expect("lower"), lower);

    // A body changed on disk (same size) is refused, never served.
    let cache_id = s.layer(&chain).expect("record").cache_id;
    let unpacked = s
        .storage()
        .diff_dir(&cache_id)
        .expect("diff dir")
        .expect("a folder");
    let odd = unpacked.join("etc/odd");
    let mut bytes = std::fs::read(&odd).expect("read");
    bytes[10] ^= 0xFF;
    std::fs::write(&odd, &bytes).expect("tamper");
    match rebuilt(&s, &chain) {
        Err(ImageError::LayerChanged { reason, .. }) => {
            assert!(reason.contains("etc/odd"), "{reason}")
        }
        other => panic!("expected LayerChanged, got {:?}", other.map(|v| v.len())),
    }
    // A body replaced by a symlink is not followed.
    std::fs::remove_file(&odd).expect("rm");
    std::os::unix::fs::symlink("/etc/passwd", &odd).expect("symlink");
    assert!(matches!(
        rebuilt(&s, &chain),
        Err(ImageError::LayerChanged { .. })
    ));
    // Nor is a folder on the way replaced by a symlink (to an intact copy).
    std::fs::remove_file(&odd).expect("rm");
    std::fs::write(&odd, &bytes).expect("restore");
    bytes[10] ^= 0xFF;
    std::fs::write(&odd, &bytes).expect("restore");
    assert!(rebuilt(&s, &chain).expect("intact again") == tar);
    std::fs::rename(unpacked.join("etc"), unpacked.join("etc.real")).expect("mv");
    std::os::unix::fs::symlink("etc.real", unpacked.join("etc")).expect("symlink");
    match rebuilt(&s, &chain) {
        Err(ImageError::LayerChanged { reason, .. }) => {
            assert!(reason.contains("etc/"), "{reason}")
        }
        other => panic!("expected LayerChanged, got {:?}", other.map(|v| v.len())),
    }
}

#[test]
fn odd_tars_round_trip_on_vfs() {
    round_trip("vfs");
}

#[test]
fn odd_tars_round_trip_on_overlay() {
    round_trip("overlay");
}

#[test]
fn data_roots_with_layer_tar_keep_working() {
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tmp");
    let s = store(tmp.path(), "vfs");
    let tar = berth_testimg::odd::layer();
    let diff_id = Digest::of(&tar).to_string();
    let chain = s
        .apply_layer(None, &diff_id, &mut tar.as_slice())
        .expect("apply");
    // As an older berth left it: the whole tar, no split record.
    let dir = tmp
        .path()
        .join("image/layers")
        .join(chain.trim_start_matches("sha256:"));
    std::fs::write(dir.join("layer.tar"), &tar).expect("write");
    std::fs::remove_file(dir.join("tar-split")).expect("rm");
    assert!(rebuilt(&s, &chain).expect("rebuild") == tar);
    // A damaged kept tar is refused too.
    let mut bad = tar.clone();
    bad[600] ^= 1;
    std::fs::write(dir.join("layer.tar"), &bad).expect("write");
    assert!(matches!(
        rebuilt(&s, &chain),
        Err(ImageError::LayerChanged { .. })
    ));
}
