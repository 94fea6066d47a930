//! Layer apply, extraction and tree archiving stay inside their folder: whiteouts, hard
//! links, writes and walks that meet a symlink to a host folder never touch or read it.

use berth_archive::{apply_layer, extract, write_tree, ApplyOptions, ExtractOptions, Whiteouts};
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;

fn raw(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, link: Option<&str>) {
    let mut h = tar::Header::new_old();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(0);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, std::io::empty()).expect("append");
}

fn host_canary() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("canary");
    std::fs::write(d.path().join("secret"), "host").expect("secret");
    d
}

fn untouched(c: &Path) {
    let names: Vec<_> = std::fs::read_dir(c)
        .expect("canary")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "the canary folder changed: {names:?}");
    assert_eq!(
        std::fs::read_to_string(c.join("secret")).expect("secret"),
        "host"
    );
}

#[test]
fn whiteouts_and_links_stay_inside() {
    let canary = host_canary();
    let c = canary.path().display().to_string();
    let dest = tempfile::tempdir().expect("dest");
    // Already in the layer folder: symlinks to the host canary and its file.
    symlink(canary.path(), dest.path().join("tohost")).expect("link");
    symlink(canary.path().join("secret"), dest.path().join("victim")).expect("link");
    for w in [Whiteouts::Delete, Whiteouts::Overlay] {
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, tar::EntryType::Regular, "victim/.wh.secret", None);
        raw(&mut b, tar::EntryType::Regular, "tohost/.wh..wh..opq", None);
        raw(
            &mut b,
            tar::EntryType::Link,
            "hard",
            Some(&format!("{c}/secret")),
        );
        let tar = b.into_inner().expect("tar");
        let opts = ApplyOptions {
            whiteouts: w,
            ..Default::default()
        };
        assert!(apply_layer(tar.as_slice(), dest.path(), &opts).is_err());
        untouched(canary.path());
        // A whiteout of the symlink itself removes the symlink, not its target.
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, tar::EntryType::Regular, ".wh.victim", None);
        let tar = b.into_inner().expect("tar");
        apply_layer(tar.as_slice(), dest.path(), &opts).expect("whiteout");
        untouched(canary.path());
    }
}

#[test]
fn extraction_through_a_symlink_is_refused_and_archiving_never_follows() {
    let canary = host_canary();
    let dest = tempfile::tempdir().expect("dest");
    symlink(canary.path(), dest.path().join("w")).expect("link");
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, tar::EntryType::Regular, "w/x", None);
    let tar = b.into_inner().expect("tar");
    assert!(extract(tar.as_slice(), dest.path(), &ExtractOptions::default()).is_err());
    untouched(canary.path());

    std::fs::create_dir(dest.path().join("d")).expect("mkdir");
    symlink("/", dest.path().join("d/root")).expect("link");
    symlink(canary.path().join("secret"), dest.path().join("d/s")).expect("link");
    let mut out = Vec::new();
    write_tree(&dest.path().join("d"), Path::new("d"), &mut out).expect("archive");
    let mut ar = tar::Archive::new(out.as_slice());
    let mut names = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        assert!(data.is_empty(), "nothing read through a symlink");
        names.push(e.path().expect("path").display().to_string());
    }
    names.sort();
    assert_eq!(names, vec!["d", "d/root", "d/s"]);
}
