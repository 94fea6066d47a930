//! Unit tests of the atomic-write helper: unique temp names under concurrency, no temp file
//! left behind on success or on failure, and the durable variant on a real folder.

use super::*;
use std::collections::BTreeSet;
use std::sync::Arc;

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn writes_and_replaces_durably_on_a_real_folder() {
    let t = tempfile::tempdir().expect("tmp");
    let p = t.path().join("record.json");
    write_atomic(&p, b"one").expect("first write");
    assert_eq!(std::fs::read(&p).expect("read"), b"one");
    write_atomic(&p, b"two, longer").expect("second write");
    assert_eq!(std::fs::read(&p).expect("read"), b"two, longer");
    write_json_atomic(&p, &serde_json::json!({"a": 1})).expect("json");
    assert_eq!(std::fs::read(&p).expect("read"), br#"{"a":1}"#);
    write_atomic_unflushed(&p, b"fast").expect("unflushed");
    assert_eq!(std::fs::read(&p).expect("read"), b"fast");
    write_atomic_with(&p, Flush::File, |f| f.write_all(b"file")).expect("file flush");
    assert_eq!(std::fs::read(&p).expect("read"), b"file");
    sync_dir(t.path()).expect("sync_dir");
    assert_eq!(names(t.path()), BTreeSet::from(["record.json".to_string()]));
}

#[test]
fn temp_names_are_unique_under_concurrency() {
    let p = Arc::new(PathBuf::from("/x/y/state.json"));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || (0..500).map(|_| temp_path(&p)).collect::<Vec<_>>())
        })
        .collect();
    let mut all = BTreeSet::new();
    for h in handles {
        for t in h.join().expect("thread") {
            assert_eq!(t.parent(), Some(Path::new("/x/y")));
            assert!(is_temp_name(t.file_name().expect("name")), "{t:?}");
            assert!(all.insert(t), "duplicate temp name");
        }
    }
    assert_eq!(all.len(), 4000);
}

#[test]
fn concurrent_writers_leave_one_whole_file_and_no_temp() {
    let t = tempfile::tempdir().expect("tmp");
    let p = Arc::new(t.path().join("shared"));
    let handles: Vec<_> = (0..8u8)
        .map(|i| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    write_atomic_unflushed(&p, &[i; 4096]).expect("write");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let got = std::fs::read(&*p).expect("read");
    assert_eq!(got.len(), 4096);
    assert!(got.iter().all(|&b| b == got[0]), "torn file");
    assert_eq!(names(t.path()), BTreeSet::from(["shared".to_string()]));
}

#[test]
fn no_temp_left_when_the_write_fails() {
    let t = tempfile::tempdir().expect("tmp");
    let p = t.path().join("victim");
    std::fs::write(&p, b"old").expect("seed");
    let e = write_atomic_with(&p, Flush::Full, |f| {
        f.write_all(b"half")?;
        Err(io::Error::other("disk on fire"))
    })
    .expect_err("must fail");
    assert_eq!(e.to_string(), "disk on fire");
    assert_eq!(std::fs::read(&p).expect("read"), b"old");
    assert_eq!(names(t.path()), BTreeSet::from(["victim".to_string()]));
}

#[test]
fn no_temp_left_when_the_rename_fails() {
    let t = tempfile::tempdir().expect("tmp");
    // A non-empty folder in the way: the rename fails after the temp file was written.
    let p = t.path().join("busy");
    std::fs::create_dir(&p).expect("mkdir");
    std::fs::write(p.join("inside"), b"x").expect("fill");
    write_atomic(&p, b"data").expect_err("rename over a folder");
    assert_eq!(names(t.path()), BTreeSet::from(["busy".to_string()]));
}

#[test]
fn missing_folder_is_an_error_not_a_panic() {
    let t = tempfile::tempdir().expect("tmp");
    let e = write_atomic(&t.path().join("nope/file"), b"x").expect_err("no folder");
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
}

#[test]
fn recognises_and_cleans_its_own_temp_names_only() {
    let t = tempfile::tempdir().expect("tmp");
    let d = t.path();
    for n in [
        ".a.json.tmp-12-0",
        ".x.tmp-1-99",
        "keep.json",
        ".hidden",
        "a.tmp",
        ".a.tmp-12",
        ".a.tmp-12-3-4",
        ".a.tmp-x-3",
        "a.json.tmp-1-2",
    ] {
        std::fs::write(d.join(n), b"").expect("seed");
    }
    assert_eq!(clean_temps(d), 2);
    let left = names(d);
    assert!(!left.contains(".a.json.tmp-12-0") && !left.contains(".x.tmp-1-99"));
    assert_eq!(left.len(), 7);
}

#[test]
fn long_names_still_fit() {
    let long = "n".repeat(255);
    let t = temp_path(Path::new(&long));
    assert!(t.file_name().expect("name").len() <= 255);
    assert_eq!(t.parent(), Some(Path::new(".")));
}
