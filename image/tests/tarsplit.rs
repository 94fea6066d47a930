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

/// Appends one raw entry: its header (checksum set), body and padding filled with `pad`.
fn raw_entry(out: &mut Vec<u8>, h: &mut tar::Header, body: &[u8], pad: u8) {
    h.set_size(body.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(body);
    let rest = (512 - body.len() % 512) % 512;
    out.extend(std::iter::repeat_n(pad, rest));
}

fn file(out: &mut Vec<u8>, path: &str, body: &[u8], pad: u8) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path(path).expect("path");
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    raw_entry(out, &mut h, body, pad);
}

fn special(out: &mut Vec<u8>, path: &str, kind: tar::EntryType, link: Option<&str>) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_path(path).expect("path");
    h.set_mode(0o755);
    if let Some(l) = link {
        h.set_link_name(l).expect("link");
    }
    raw_entry(out, &mut h, b"", 0);
}

fn pax(out: &mut Vec<u8>, records: &[(&str, &str)]) {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = format!(" {k}={v}\n");
        let mut len = rest.len() + 1;
        while format!("{len}{rest}").len() != len {
            len += 1;
        }
        body.extend_from_slice(format!("{len}{rest}").as_bytes());
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeaders/x").expect("path");
    raw_entry(out, &mut h, &body, 0);
}

fn gnu_long(out: &mut Vec<u8>, path: &str, body: &[u8]) {
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::GNULongName);
    l.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"././@LongLink");
    let mut name = path.as_bytes().to_vec();
    name.push(0);
    raw_entry(out, &mut l, &name, 0);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.as_gnu_mut().expect("gnu").name[..10].copy_from_slice(b"truncated_");
    h.set_mode(0o600);
    raw_entry(out, &mut h, body, 0);
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The odd tar (see the module documentation).
fn odd_tar() -> Vec<u8> {
    let mut t = Vec::new();
    special(&mut t, "./", tar::EntryType::Directory, None);
    special(&mut t, "etc/", tar::EntryType::Directory, None);
    file(&mut t, "etc/empty", b"", 0);
    file(&mut t, "etc/odd", &pattern(1234, 1), 0xAB); // garbage in the padding
    file(&mut t, "big.bin", &pattern(3 << 20 | 77, 2), 0);
    // Written twice: the first body is gone from disk once the second is unpacked.
    file(&mut t, "dup", b"first version", 0);
    file(&mut t, "dup", b"second, longer version", 0);
    // Written, then hidden by a whiteout in the same layer.
    file(&mut t, "gone/f", b"deleted later", 0);
    file(&mut t, ".wh.gone", b"", 0);
    // A file replaced by a folder, a folder replaced by a file.
    file(&mut t, "was_file", b"then a folder", 0);
    special(&mut t, "was_file/", tar::EntryType::Directory, None);
    file(&mut t, "was_dir/inner", b"then a file", 0);
    file(&mut t, "was_dir", b"now a file", 0);
    // Under an opaque marker that comes after it.
    file(&mut t, "opq/kept", b"before the marker", 0);
    file(&mut t, "opq/.wh..wh..opq", b"", 0);
    // Hard links, to a file and over a file.
    file(&mut t, "target", b"linked body", 0);
    special(&mut t, "link", tar::EntryType::Link, Some("target"));
    file(&mut t, "over", b"replaced by a link", 0);
    special(&mut t, "over", tar::EntryType::Link, Some("target"));
    // A whiteout for a lower layer's file, a symlink.
    file(&mut t, "etc/.wh.lower", b"", 0);
    special(&mut t, "sym", tar::EntryType::Symlink, Some("etc/odd"));
    // PAX: a long path, and a size that overrides the header's.
    let long = format!("deep/{}/{}", "d".repeat(120), "p".repeat(90));
    pax(&mut t, &[("path", &long), ("mtime", "1700000000.5")]);
    file(&mut t, "short-name-ignored", &pattern(700, 3), 0);
    pax(&mut t, &[("size", "1000")]);
    {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path("pax-sized").expect("path");
        h.set_mode(0o644);
        h.set_size(0);
        h.set_cksum();
        t.extend_from_slice(h.as_bytes());
        t.extend_from_slice(&pattern(1000, 4));
        t.extend(std::iter::repeat_n(0x11, 24));
    }
    // GNU long name.
    gnu_long(
        &mut t,
        &format!("gnu/{}", "g".repeat(150)),
        &pattern(513, 5),
    );
    // End blocks, then garbage the diff_id covers.
    t.extend(std::iter::repeat_n(0, 1024));
    t.extend_from_slice(b"trailing garbage after the end blocks");
    t.extend(std::iter::repeat_n(0, 3000));
    t
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
    let mut lower = Vec::new();
    file(&mut lower, "etc/lower", b"from below", 0);
    file(&mut lower, "dup", b"lower dup", 0);
    lower.extend(std::iter::repeat_n(0, 1024));
    let lower_id = Digest::of(&lower).to_string();
    let base = s
        .apply_layer(None, &lower_id, &mut lower.as_slice())
        .expect("lower");
    let tar = odd_tar();
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
    let tar = odd_tar();
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
