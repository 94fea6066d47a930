//! Odd layer tars for tests of byte-exact layer round trips (`save`, `push`): PAX and GNU
//! long names, a PAX size record, a big file, hard links, duplicate entries, files the same
//! layer hides, replaces or puts under an opaque marker, whiteouts, empty files, garbage in the
//! padding and after the end blocks. Written block by block so every byte is as chosen.

/// A small lower layer for [`layer`]: `etc/lower` and `dup`.
pub fn lower() -> Vec<u8> {
    let mut t = Vec::new();
    file(&mut t, "etc/lower", b"from below", 0);
    file(&mut t, "dup", b"lower dup", 0);
    t.extend(std::iter::repeat_n(0, 1024));
    t
}

/// Appends one raw entry: its header (checksum set), body and padding filled with `pad`.
pub fn raw_entry(out: &mut Vec<u8>, h: &mut tar::Header, body: &[u8], pad: u8) {
    h.set_size(body.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(body);
    let rest = (512 - body.len() % 512) % 512;
    out.extend(std::iter::repeat_n(pad, rest));
}

/// Appends a regular file entry (padding filled with `pad`).
pub fn file(out: &mut Vec<u8>, path: &str, body: &[u8], pad: u8) {
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

/// The odd layer tar (see the module documentation). Meant on top of [`lower`].
pub fn layer() -> Vec<u8> {
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
