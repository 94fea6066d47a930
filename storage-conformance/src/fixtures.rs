//! Layer tarballs used by the conformance suite, built in memory.

use std::path::Path;

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    h
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, path, data).expect("append");
}

fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, path, std::io::empty())
        .expect("append");
}

fn pax(b: &mut tar::Builder<Vec<u8>>, key: &str, value: &str) {
    let body = format!("{key}={value}\n");
    let mut len = body.len() + 3;
    len = body.len() + 1 + len.to_string().len();
    let rec = format!("{len} {body}");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(rec.len() as u64);
    h.set_mode(0o644);
    h.set_path("PaxHeaders/file").expect("path");
    h.set_cksum();
    b.append(&h, rec.as_bytes()).expect("append");
}

/// The bottom layer.
pub fn base_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    dir(&mut b, "etc");
    file(&mut b, "etc/motd", b"hello\n");
    file(&mut b, "etc/issue", b"berth\n");
    file(&mut b, "gone", b"to be whited out\n");
    dir(&mut b, "opq");
    file(&mut b, "opq/old", b"hidden by opaque\n");
    dir(&mut b, "data");
    pax(&mut b, "SCHILY.xattr.user.berth", "yes");
    let mut h = header(tar::EntryType::Regular, 0o640, 5);
    h.set_uid(1000);
    h.set_gid(1001);
    b.append_data(&mut h, "data/file", &b"data\n"[..])
        .expect("append");
    let mut h = header(tar::EntryType::Link, 0o640, 0);
    b.append_link(&mut h, "data/hard", "data/file")
        .expect("link");
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "data/sym", "file").expect("symlink");
    let mut h = header(tar::EntryType::Fifo, 0o600, 0);
    b.append_data(&mut h, "data/fifo", std::io::empty())
        .expect("fifo");
    let mut h = header(tar::EntryType::Char, 0o666, 0);
    h.set_device_major(1).expect("major");
    h.set_device_minor(3).expect("minor");
    b.append_data(&mut h, "data/null", std::io::empty())
        .expect("dev");
    b.into_inner().expect("tar")
}

/// The layer above: a whiteout, an opaque folder, a modification.
pub fn upper_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    file(&mut b, ".wh.gone", b"");
    dir(&mut b, "opq");
    file(&mut b, "opq/.wh..wh..opq", b"");
    file(&mut b, "opq/new", b"new\n");
    dir(&mut b, "etc");
    file(&mut b, "etc/motd", b"changed\n");
    b.into_inner().expect("tar")
}

fn raw_name(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, link: Option<&str>) {
    let mut h = header(kind, 0o644, 0);
    let bytes = name.as_bytes();
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, std::io::empty()).expect("append");
}

/// Layers that must be refused: (name, tar).
pub fn unsafe_tars() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = Vec::new();
    let mut b = tar::Builder::new(Vec::new());
    raw_name(&mut b, tar::EntryType::Regular, "../escape", None);
    v.push(("traversal", b.into_inner().expect("tar")));
    let mut b = tar::Builder::new(Vec::new());
    raw_name(
        &mut b,
        tar::EntryType::Symlink,
        "evil",
        Some("../../../../etc"),
    );
    v.push(("escaping-symlink", b.into_inner().expect("tar")));
    let mut b = tar::Builder::new(Vec::new());
    raw_name(
        &mut b,
        tar::EntryType::Link,
        "hard",
        Some("../../etc/passwd"),
    );
    v.push(("escaping-hardlink", b.into_inner().expect("tar")));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "dir", "/etc").expect("link");
    file(&mut b, "dir/owned", b"x");
    v.push(("write-through-symlink", b.into_inner().expect("tar")));
    v
}

/// Reads an xattr (None when absent).
pub fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid pointers; buffer length passed.
    let rc = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc < 0 {
        return None;
    }
    buf.truncate(rc as usize);
    Some(buf)
}
