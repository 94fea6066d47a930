//! The storage-driver conformance suite.
//!
//! Every `core::StorageDriver` — vfs, overlay2, or a third party's — must pass [`run_all`]:
//! layers applied from tars with whiteouts and opaque folders, hard links, symlinks, devices,
//! fifos, owners, modes, times and xattrs; the diff of a container layer round-trips onto a
//! fresh layer; `changes` lists additions, modifications and deletions; unsafe tars are refused
//! without leftovers; a driver that says its diffs are independent gives the same tree when a
//! child is filled before its parent; removal frees everything. Run it as root on a real filesystem:
//!
//! ```ignore
//! #[test]
//! fn conformance() {
//!     berth_storage_conformance::run_all(&|root| my_driver(root));
//! }
//! ```

mod fixtures;

use berth_core::storage::{ChangeKind, CreateOpts};
use berth_core::StorageDriver;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Makes a driver rooted at the given folder.
pub type MakeDriver<'a> = &'a dyn Fn(&Path) -> Box<dyn StorageDriver>;

/// A mounted layer, unmounted on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = berth_core::mount::unmount(&self.0);
    }
}

fn mount(d: &dyn StorageDriver, id: &str, at: &Path) -> Mounted {
    fs::create_dir_all(at).expect("mkdir mountpoint");
    let mounts = d.mounts(id).expect("mounts");
    berth_core::mount::mount_all(&mounts, at).expect("mount layer");
    Mounted(at.to_path_buf())
}

/// A comparable summary of a tree: path → (type, mode, uid, gid, size, link target, rdev).
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(root).expect("prefix").display().to_string();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_symlink() {
                "link"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_char_device() {
                "chr"
            } else {
                "file"
            };
            let target = fs::read_link(&p)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let size = if ft.is_file() { m.len() } else { 0 };
            out.insert(
                rel,
                format!(
                    "{kind} {:o} {}:{} {size} {target} {}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    m.rdev()
                ),
            );
            if ft.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// Runs every check against drivers made by `make`.
pub fn run_all(make: MakeDriver<'_>) {
    let tmp = tempfile::Builder::new()
        .prefix("berth-conformance-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let root = tmp.path().join("driver");
    fs::create_dir_all(&root).expect("mkdir");
    let d = make(&root);
    let initial: Vec<String> = d.list().expect("list");
    layers_and_whiteouts(d.as_ref(), tmp.path());
    diff_dir_holds_the_bodies(d.as_ref());
    diff_round_trip(d.as_ref(), tmp.path());
    refuses_unsafe(d.as_ref());
    independent_fill_order(d.as_ref(), tmp.path());
    for id in d.list().expect("list") {
        if !initial.contains(&id) {
            d.remove(&id).expect("remove");
        }
    }
    assert_eq!(
        d.list().expect("list"),
        initial,
        "removing every layer must leave nothing behind"
    );
}

/// A driver that names a diff folder (`StorageDriver::diff_dir`) keeps there every regular
/// file an applied layer wrote, byte for byte at its tar path: the image store reads file
/// bodies back from it to rebuild layer tars for `save` and `push`.
fn diff_dir_holds_the_bodies(d: &dyn StorageDriver) {
    let Some(dir) = d.diff_dir("upper").expect("diff_dir") else {
        return;
    };
    let tar = fixtures::upper_tar();
    let mut ar = tar::Archive::new(tar.as_slice());
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").into_owned();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if e.header().entry_type() != tar::EntryType::Regular
            || name.is_some_and(|n| n.starts_with(".wh."))
        {
            continue;
        }
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).expect("body");
        let on_disk = fs::read(dir.join(&path))
            .unwrap_or_else(|err| panic!("{} in the diff folder: {err}", path.display()));
        assert!(
            on_disk == body,
            "{} differs in the diff folder",
            path.display()
        );
    }
}

fn layers_and_whiteouts(d: &dyn StorageDriver, tmp: &Path) {
    d.create("base", None, &CreateOpts::default())
        .expect("create base");
    d.apply_diff("base", &mut fixtures::base_tar().as_slice())
        .expect("apply base");
    d.create("upper", Some("base"), &CreateOpts::default())
        .expect("create upper");
    d.apply_diff("upper", &mut fixtures::upper_tar().as_slice())
        .expect("apply upper");
    d.create(
        "ctr",
        Some("upper"),
        &CreateOpts {
            rw: true,
            ..Default::default()
        },
    )
    .expect("create ctr");
    let at = tmp.join("m-ctr");
    let _m = mount(d, "ctr", &at);
    assert!(!at.join("gone").exists(), "whiteout .wh.gone hides /gone");
    let opq: Vec<String> = fs::read_dir(at.join("opq"))
        .expect("opq")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        opq,
        vec!["new".to_string()],
        "opaque folder shows only the upper layer's content"
    );
    assert_eq!(
        fs::read_to_string(at.join("etc/motd")).expect("motd"),
        "changed\n"
    );
    let f = fs::symlink_metadata(at.join("data/file")).expect("file");
    assert_eq!(
        (f.mode() & 0o7777, f.uid(), f.gid(), f.mtime()),
        (0o640, 1000, 1001, 1_600_000_000)
    );
    let h = fs::symlink_metadata(at.join("data/hard")).expect("hard");
    assert_eq!(h.ino(), f.ino(), "hard link shares the inode");
    assert_eq!(
        fs::read_link(at.join("data/sym")).expect("sym"),
        PathBuf::from("file")
    );
    assert!(fs::symlink_metadata(at.join("data/fifo"))
        .expect("fifo")
        .file_type()
        .is_fifo());
    let dev = fs::symlink_metadata(at.join("data/null")).expect("dev");
    assert!(dev.file_type().is_char_device());
    assert_eq!((libc::major(dev.rdev()), libc::minor(dev.rdev())), (1, 3));
    let x = fixtures::xattr(&at.join("data/file"), "user.berth");
    assert_eq!(x.as_deref(), Some(&b"yes"[..]), "xattr survives");
}

fn diff_round_trip(d: &dyn StorageDriver, tmp: &Path) {
    let at = tmp.join("m-ctr2");
    {
        let _m = mount(d, "ctr", &at);
        fs::write(at.join("added.txt"), "new\n").expect("write");
        fs::write(at.join("etc/motd"), "modified again\n").expect("modify");
        fs::remove_file(at.join("etc/issue")).expect("delete");
        fs::remove_dir_all(at.join("opq")).expect("delete dir");
    }
    let changes = d.changes("ctr").expect("changes");
    let has = |p: &str, k: ChangeKind| changes.iter().any(|c| c.path == p && c.kind == k);
    assert!(has("/added.txt", ChangeKind::Added), "{changes:?}");
    assert!(has("/etc/motd", ChangeKind::Modified), "{changes:?}");
    assert!(has("/etc/issue", ChangeKind::Deleted), "{changes:?}");
    let mut tar = Vec::new();
    d.diff("ctr", &mut tar).expect("diff");
    d.create("replay", Some("upper"), &CreateOpts::default())
        .expect("create replay");
    d.apply_diff("replay", &mut tar.as_slice())
        .expect("apply diff");
    d.create(
        "replay-ctr",
        Some("replay"),
        &CreateOpts {
            rw: true,
            ..Default::default()
        },
    )
    .expect("create");
    let a = {
        let _m = mount(d, "ctr", &at);
        snapshot(&at)
    };
    let b_at = tmp.join("m-replay");
    let b = {
        let _m = mount(d, "replay-ctr", &b_at);
        snapshot(&b_at)
    };
    assert_eq!(a, b, "the diff of a layer replays to the same tree");
}

fn refuses_unsafe(d: &dyn StorageDriver) {
    for (name, tar) in fixtures::unsafe_tars() {
        let id = format!("unsafe-{name}");
        d.create(&id, None, &CreateOpts::default()).expect("create");
        let r = d.apply_diff(&id, &mut tar.as_slice());
        assert!(r.is_err(), "{name}: an unsafe layer must be refused");
        d.remove(&id).expect("remove");
        assert!(!d.exists(&id));
    }
}

/// A driver whose diffs are independent (`independent_diffs`) may have a chain's layers created
/// first and filled child before parent: the tree is the same as when filled in order.
fn independent_fill_order(d: &dyn StorageDriver, tmp: &Path) {
    if !d.independent_diffs() {
        return;
    }
    let image = CreateOpts::default();
    let rw = CreateOpts {
        rw: true,
        ..Default::default()
    };
    d.create("ind-base", None, &image).expect("create base");
    d.create("ind-upper", Some("ind-base"), &image)
        .expect("create upper before its parent is filled");
    d.apply_diff("ind-upper", &mut fixtures::upper_tar().as_slice())
        .expect("apply upper first");
    d.apply_diff("ind-base", &mut fixtures::base_tar().as_slice())
        .expect("apply base after");
    d.create("ind-ctr", Some("ind-upper"), &rw).expect("create");
    d.create("ord-ctr", Some("upper"), &rw).expect("create");
    let at = tmp.join("m-ind");
    let filled_out_of_order = {
        let _m = mount(d, "ind-ctr", &at);
        snapshot(&at)
    };
    let filled_in_order = {
        let _m = mount(d, "ord-ctr", &at);
        snapshot(&at)
    };
    assert_eq!(
        filled_out_of_order, filled_in_order,
        "filling a child before its parent gives the same tree"
    );
}
