//! Descriptor walks ([`berth_confine::Dir`]) never pass a symlink, and extended attributes
//! set inside a root land on the entry itself, never on what a symlink names.

use berth_confine::{Dir, FileKind, Root};
use std::ffi::OsStr;
use std::os::unix::fs::symlink;

fn xattr_supported(p: &std::path::Path) -> bool {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: NUL-terminated strings; the value slice is live for the call.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            c"trusted.berth-probe".as_ptr(),
            b"1".as_ptr().cast(),
            1,
            0,
        )
    };
    rc == 0
}

#[test]
fn walks_do_not_follow_symlinks() {
    let host = tempfile::tempdir().expect("host");
    std::fs::write(host.path().join("secret"), "host").expect("secret");
    let t = tempfile::tempdir().expect("tree");
    let r = t.path();
    std::fs::create_dir(r.join("d")).expect("mkdir");
    std::fs::write(r.join("d/f"), "inside").expect("file");
    symlink(host.path(), r.join("out")).expect("link");
    symlink(host.path().join("secret"), r.join("d/fl")).expect("link");

    let top = Dir::open_host(r).expect("open");
    let names = top.names().expect("names");
    assert_eq!(names, vec![OsStr::new("d"), OsStr::new("out")]);
    let st = top
        .lstat(OsStr::new("out"))
        .expect("lstat")
        .expect("exists");
    assert_eq!(st.kind, FileKind::Symlink);
    assert!(
        top.open_dir(OsStr::new("out")).is_err(),
        "a symlink is not entered"
    );
    assert_eq!(top.read_link(OsStr::new("out")).expect("link"), host.path());
    let d = top.open_dir(OsStr::new("d")).expect("sub");
    assert!(
        d.open_file(OsStr::new("fl")).is_err(),
        "a symlink is not opened"
    );
    let mut s = String::new();
    std::io::Read::read_to_string(&mut d.open_file(OsStr::new("f")).expect("f"), &mut s)
        .expect("read");
    assert_eq!(s, "inside");
    assert!(top.lstat(OsStr::new("missing")).expect("lstat").is_none());

    // A root's parent folder of a path through the escaping link stays inside the root.
    let root = Root::open(r).expect("root");
    assert!(
        root.open_parent("out/secret").is_err(),
        "{}",
        "out/ is not the host folder"
    );
    let (pd, name) = root.open_parent("d/f").expect("parent");
    assert_eq!(name.as_deref(), Some(OsStr::new("f")));
    assert!(pd.lstat(OsStr::new("f")).expect("lstat").is_some());
    let (top2, none) = root.open_parent("").expect("top");
    assert!(none.is_none());
    assert!(top2.lstat(OsStr::new("d")).expect("lstat").is_some());
}

#[test]
fn xattrs_land_on_the_entry_itself() {
    let host = tempfile::tempdir().expect("host");
    let secret = host.path().join("secret");
    std::fs::write(&secret, "host").expect("secret");
    let t = tempfile::tempdir().expect("tree");
    if !xattr_supported(t.path()) {
        eprintln!("trusted xattrs unsupported here; skipping");
        return;
    }
    let r = t.path();
    std::fs::create_dir(r.join("d")).expect("mkdir");
    symlink(&secret, r.join("d/l")).expect("link");
    let root = Root::open(r).expect("root");
    root.set_xattr("d", "trusted.overlay.opaque", b"y")
        .expect("set on a folder");
    assert_eq!(
        root.get_xattr("d", "trusted.overlay.opaque").expect("get"),
        Some(b"y".to_vec())
    );
    root.set_xattr("", "trusted.berth-top", b"1")
        .expect("set on the root itself");
    // On the symlink itself (trusted.* is allowed on symlinks), never on the host file.
    let _ = root.set_xattr("d/l", "trusted.berth", b"1");
    assert!(
        !xattr_on(&secret, "trusted.berth"),
        "the host file was not touched"
    );
    let top = Dir::open_host(r).expect("open");
    assert!(top
        .xattrs(OsStr::new("d"))
        .expect("list")
        .iter()
        .any(|k| k == "trusted.overlay.opaque"));
}

fn xattr_on(p: &std::path::Path, key: &str) -> bool {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
    let k = std::ffi::CString::new(key).expect("key");
    let mut buf = [0u8; 16];
    // SAFETY: NUL-terminated strings; the buffer's length is passed.
    let rc = unsafe { libc::getxattr(c.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    rc >= 0
}
