//! The escape attempts every resolution mode (openat2 and the user-space walk) must stop:
//! each builds a hostile tree next to a canary folder and checks the canary stays empty.

use berth_confine::{ConfineError, CopyOptions, FileKind, Follow, Root};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub canary: PathBuf,
}

pub fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let canary = tmp.path().join("canary");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::create_dir_all(&canary).expect("canary");
    Fixture {
        root,
        canary,
        _tmp: tmp,
    }
}

fn assert_empty(canary: &Path) {
    let n = std::fs::read_dir(canary).expect("canary").count();
    assert_eq!(
        n, 0,
        "something was written outside the root into {canary:?}"
    );
}

/// Symlinks to the canary (absolute, relative with `..`) are followed inside the root.
pub fn writes_stay_inside() {
    let f = fixture();
    let c = f.canary.display().to_string();
    symlink(&c, f.root.join("abs")).expect("symlink");
    symlink(format!("../../../../../../..{c}"), f.root.join("rel")).expect("symlink");
    symlink("/", f.root.join("slash")).expect("symlink");
    std::fs::create_dir(f.root.join("etc")).expect("etc");
    symlink(&c, f.root.join("etc/hosts")).expect("symlink");
    let r = Root::open(&f.root).expect("open");
    for p in ["abs/x", "rel/x", "slash/abs/y", "../../x", "/../x"] {
        let _ = r.create(p, 0o644);
        let _ = r.mkdir_all(format!("{p}d/e"), 0o755);
        let _ = r.mknod(format!("{p}n"), FileKind::Fifo, 0o644, 0);
        let _ = r.symlink("/etc", format!("{p}l"));
    }
    // A symlink as the last component is not followed by create/mknod/symlink.
    assert!(r.create("etc/hosts", 0o644).is_err());
    assert!(r.mknod("etc/hosts", FileKind::Char, 0o666, 0).is_err());
    assert_empty(&f.canary);
    // mkdir_all through a symlink to / makes the folders inside the root.
    r.mkdir_all("slash/abs/deep/er", 0o755).expect("mkdir_all");
    assert!(f
        .root
        .join(c.trim_start_matches('/'))
        .join("deep/er")
        .is_dir());
    assert_empty(&f.canary);
}

/// Reads of files the tree's owner chose are bounded and regular only.
pub fn reads_are_bounded() {
    let f = fixture();
    std::fs::write(f.canary.join("secret"), "host secret").expect("secret");
    std::fs::create_dir(f.root.join("etc")).expect("etc");
    symlink(f.canary.join("secret"), f.root.join("etc/passwd")).expect("symlink");
    symlink("/dev/zero", f.root.join("zero")).expect("symlink");
    nix_mkfifo(&f.root.join("fifo"));
    std::fs::write(f.root.join("big"), vec![b'x'; 4096]).expect("big");
    let r = Root::open(&f.root).expect("open");
    // The link to the host file resolves inside the root: nothing there.
    assert!(r
        .read_regular("etc/passwd", 1 << 20)
        .expect_err("host file")
        .is_not_found());
    assert!(r.read_regular("zero", 1 << 20).is_err());
    assert!(matches!(
        r.read_regular("fifo", 1 << 20),
        Err(ConfineError::NotRegular { .. })
    ));
    assert!(matches!(
        r.read_regular("big", 100),
        Err(ConfineError::TooLarge { .. })
    ));
    assert_eq!(r.read_regular("big", 4096).expect("read").len(), 4096);
    std::fs::remove_file(f.canary.join("secret")).expect("rm");
}

fn nix_mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("cstr");
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo");
}

/// A tree copied from a hostile source keeps its symlinks as symlinks and never reads
/// through them; a destination with hostile symlinks is written inside its root.
pub fn copies_stay_inside() {
    let f = fixture();
    std::fs::write(f.canary.join("secret"), "host secret").expect("secret");
    let src = f.root.join("src");
    let dst = f.root.join("dst");
    std::fs::create_dir_all(src.join("d")).expect("src");
    std::fs::create_dir_all(&dst).expect("dst");
    std::fs::write(src.join("d/file"), "data").expect("file");
    symlink(f.canary.join("secret"), src.join("d/out")).expect("symlink");
    symlink(&f.canary, dst.join("d")).expect("symlink");
    let s = Root::open(&src).expect("src");
    let d = Root::open(&dst).expect("dst");
    d.copy_in("/", &s, "/", &CopyOptions::default())
        .expect("copy");
    // The destination's symlink `d` was replaced by a folder: nothing went to the canary.
    assert_eq!(std::fs::read_dir(&f.canary).expect("canary").count(), 1);
    assert!(dst.join("d").is_dir());
    assert_eq!(
        std::fs::read_to_string(dst.join("d/file")).expect("read"),
        "data"
    );
    assert!(std::fs::symlink_metadata(dst.join("d/out"))
        .expect("out")
        .file_type()
        .is_symlink());
    // Following the top-level source inside its root: a link to the host file finds nothing.
    symlink(f.canary.join("secret"), src.join("top")).expect("symlink");
    let opts = CopyOptions {
        follow_top: true,
        ..CopyOptions::default()
    };
    assert!(d.copy_in("top", &s, "top", &opts).is_err());
    assert!(d.lstat("top").expect("lstat").is_none());
}

/// A tree whose owner keeps swapping a folder and a symlink to the canary: every write
/// resolved inside the root lands inside it.
pub fn races_stay_inside() {
    let f = fixture();
    let root = f.root.clone();
    let canary = f.canary.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let swapper = std::thread::spawn(move || {
        let w = root.join("w");
        let tmp_dir = root.join("w.dir");
        let tmp_link = root.join("w.link");
        let _ = std::fs::create_dir(&w);
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::create_dir(&tmp_dir);
            let _ = std::fs::rename(&tmp_dir, &w);
            let _ = std::fs::remove_file(&tmp_link);
            let _ = symlink(&canary, &tmp_link);
            let _ = std::fs::rename(&tmp_link, &w);
        }
    });
    let r = Root::open(&f.root).expect("open");
    for i in 0..400 {
        let _ = r.create(format!("w/f{i}"), 0o644);
        let _ = r.mkdir_all(format!("w/d{i}/x"), 0o755);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = swapper.join();
    assert_empty(&f.canary);
}

/// Plain use: everything works inside the root.
pub fn plain_operations() {
    let f = fixture();
    let r = Root::open(&f.root).expect("open");
    r.mkdir_all("/a/b/c", 0o755).expect("mkdir_all");
    {
        use std::io::Write;
        let mut w = r.create("a/b/c/f", 0o600).expect("create");
        w.write_all(b"hello").expect("write");
    }
    assert_eq!(r.read_regular("/a/b/c/f", 100).expect("read"), b"hello");
    r.symlink("b/c", "a/l").expect("symlink");
    assert_eq!(
        r.read_regular("a/l/f", 100).expect("read via link"),
        b"hello"
    );
    assert_eq!(r.read_link("a/l").expect("readlink"), PathBuf::from("b/c"));
    let st = r.lstat("a/l").expect("lstat").expect("exists");
    assert_eq!(st.kind, FileKind::Symlink);
    let st = r.stat("a/l").expect("stat").expect("exists");
    assert_eq!(st.kind, FileKind::Dir);
    r.chmod("a/b/c/f", 0o640).expect("chmod");
    assert_eq!(r.lstat("a/b/c/f").expect("lstat").expect("f").mode, 0o640);
    r.chown("a/b/c/f", 1, 2).expect("chown");
    let st = r.lstat("a/b/c/f").expect("lstat").expect("f");
    assert_eq!((st.uid, st.gid), (1, 2));
    r.set_times("a/b/c/f", 1000, 0).expect("times");
    assert_eq!(r.lstat("a/b/c/f").expect("lstat").expect("f").mtime, 1000);
    r.rename("a/b/c/f", "a/g").expect("rename");
    assert!(r.lstat("a/g").expect("lstat").is_some());
    let mut names = r.read_dir("a").expect("read_dir");
    names.sort();
    assert_eq!(names, vec!["b", "g", "l"]);
    let sub = r.sub("a/b").expect("sub");
    sub.create("../../../up", 0o644)
        .expect("clamped at sub root");
    assert!(f.root.join("a/b/up").exists());
    let _ = r.resolve("a", Follow::Yes).expect("resolve");
    r.remove_all("a").expect("remove_all");
    assert!(r.lstat("a").expect("lstat").is_none());
    r.remove("missing").expect("missing is fine");
}
