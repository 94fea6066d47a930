//! Image operations through the stock docker CLI against berthd: import, images (filters),
//! inspect, history, tag, rmi, save/load round trips, prune, system df, and bad archives
//! (truncated, wrong digest, path traversal, escaping symlinks, a tar bomb above
//! `max-layer-size`) that must fail clearly and leave nothing half-made behind.

use berth_tests::TestDaemon;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Image IDs from `docker images -q --no-trunc`, sorted.
fn image_ids(d: &TestDaemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .docker(&["images", "-a", "-q", "--no-trunc"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every folder under the data root named like an image layer (64 hex) outside containers/,
/// plus anything left in the image store's temp folder: what a failed load must not leave.
fn leftovers(data_root: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name == "containers" || name == "imagedb" || name == "blobs" || name == "network" {
                continue;
            }
            let hexname = name.len() >= 64 && name[..64].bytes().all(|b| b.is_ascii_hexdigit());
            if hexname || name.starts_with(".tmp-") {
                out.push(path.clone());
            }
            if depth < 3 && path.is_dir() && !path.is_symlink() {
                walk(&path, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(data_root, 0, &mut out);
    if let Ok(rd) = std::fs::read_dir(data_root.join("image/tmp")) {
        out.extend(rd.flatten().map(|e| e.path()));
    }
    out
}

fn tar_names(path: &Path) -> Vec<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(path).expect("open tar"));
    ar.entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect()
}

/// A tar whose entry names and link targets are written raw (the tar crate refuses `..`).
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn import_inspect_history_tag_rmi() {
    let d = TestDaemon::start();
    let tar = d.busybox_tar().display().to_string();
    let out = d.docker(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV A=1",
        "-c",
        "LABEL team=images",
        "-m",
        "first import",
        &tar,
        "bb:1",
    ]);
    let id = out.ok().trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let short = &id[7..19];
    let listed = d
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .ok()
        .to_string();
    assert!(listed.contains(&format!("bb:1 {short}")), "{listed}");
    let fmt = "{{.Id}}|{{.Comment}}|{{json .Config.Cmd}}|{{json .Config.Env}}|{{.Os}}|{{json .RepoTags}}|{{len .RootFS.Layers}}|{{.Config.Labels.team}}";
    let ins = d.docker(&["image", "inspect", "--format", fmt, "bb:1"]);
    assert_eq!(
        ins.ok().trim(),
        format!("{id}|first import|[\"sh\"]|[\"A=1\"]|linux|[\"bb:1\"]|1|images")
    );
    let hist = d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Comment}}",
        "bb:1",
    ]);
    assert_eq!(hist.ok().trim(), format!("{id}|first import"));
    // Tags with a registry and a path; lookups by tag, short ID and full ID.
    d.docker(&["tag", "bb:1", "127.0.0.1:5000/team/bb:2"]).ok();
    for name in ["127.0.0.1:5000/team/bb:2", short, &id] {
        let got = d.docker(&["image", "inspect", "--format", "{{.Id}}", name]);
        assert_eq!(got.ok().trim(), id, "{name}");
    }
    // By ID with two tags: refused, Docker's text.
    let r = d.docker(&["rmi", short]);
    assert_ne!(r.status, 0);
    assert!(
        r.stderr.contains(&format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")),
        "{}",
        r.stderr
    );
    // Untag one, then delete by the last tag.
    assert_eq!(d.docker(&["rmi", "bb:1"]).ok().trim(), "Untagged: bb:1");
    let r = d.docker(&["rmi", "127.0.0.1:5000/team/bb:2"]);
    let text = r.ok().to_string();
    assert!(
        text.contains("Untagged: 127.0.0.1:5000/team/bb:2"),
        "{text}"
    );
    assert!(text.contains(&format!("Deleted: {id}")), "{text}");
    assert!(image_ids(&d).is_empty());
    let r = d.docker(&["image", "inspect", "nosuch"]);
    assert_ne!(r.status, 0);
    assert!(
        r.stderr.contains("No such image: nosuch:latest"),
        "{}",
        r.stderr
    );
    let r = d.docker(&["rmi", "nosuch"]);
    assert!(
        r.stderr.contains("No such image: nosuch:latest"),
        "{}",
        r.stderr
    );
    assert!(
        leftovers(&d.data_root()).is_empty(),
        "{:?}",
        leftovers(&d.data_root())
    );
}

#[test]
fn save_and_load_several_images_keep_their_ids() {
    let d = TestDaemon::start();
    let tar = d.busybox_tar().display().to_string();
    let a = d
        .docker(&["import", "-c", "CMD [\"sh\"]", &tar, "a:1"])
        .ok()
        .trim()
        .to_string();
    let b = d
        .docker(&["import", "-m", "other", &tar, "b:2"])
        .ok()
        .trim()
        .to_string();
    assert_ne!(a, b);
    let out = d.dir().join("two.tar");
    let o = out.display().to_string();
    d.docker(&["save", "-o", &o, "a:1", "b:2"]).ok();
    let names = tar_names(&out);
    for want in ["index.json", "oci-layout", "manifest.json", "repositories"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let hex_a = &a[7..];
    assert!(
        names.iter().any(|n| n == &format!("blobs/sha256/{hex_a}")),
        "{names:?}"
    );
    d.docker(&["rmi", "a:1", "b:2"]).ok();
    assert!(image_ids(&d).is_empty());
    let loaded = d.docker(&["load", "-i", &o]);
    let text = loaded.ok().to_string();
    assert!(text.contains("Loaded image: a:1"), "{text}");
    assert!(text.contains("Loaded image: b:2"), "{text}");
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(image_ids(&d), want);
    // Loading again over a moved tag says so, like Docker.
    d.docker(&["tag", "b:2", "a:1"]).ok();
    let again = d.docker(&["load", "-i", &o]).ok().to_string();
    assert!(
        again.contains(&format!(
            "The image a:1 already exists, renaming the old one with ID {b} to empty string"
        )),
        "{again}"
    );
    // From stdin, by ID only: an untagged save loads as `Loaded image ID:`.
    let by_id = d.dir().join("id.tar");
    d.docker(&["save", "-o", &by_id.display().to_string(), &a])
        .ok();
    d.docker(&["rmi", "-f", &a]).ok();
    let bytes = std::fs::read(&by_id).expect("read");
    let r = d.docker_stdin(&["load"], &bytes);
    assert!(
        r.ok().contains(&format!("Loaded image ID: {a}")),
        "{}",
        r.stdout
    );
}

#[test]
fn filters_prune_and_df() {
    let d = TestDaemon::start();
    let tar = d.busybox_tar().display().to_string();
    let tagged = d
        .docker(&["import", "-c", "LABEL keep=yes", &tar, "keep:1"])
        .ok()
        .trim()
        .to_string();
    let dangling = d
        .docker(&["import", "-m", "x", &tar])
        .ok()
        .trim()
        .to_string();
    let q = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["images", "-q", "--no-trunc"];
        full.extend_from_slice(args);
        d.docker(&full).ok().lines().map(str::to_string).collect()
    };
    assert_eq!(q(&["-f", "dangling=true"]), vec![dangling.clone()]);
    assert_eq!(q(&["-f", "dangling=false"]), vec![tagged.clone()]);
    assert_eq!(q(&["-f", "reference=kee*"]), vec![tagged.clone()]);
    assert!(q(&["-f", "reference=nomatch*"]).is_empty());
    assert_eq!(q(&["-f", "label=keep=yes"]), vec![tagged.clone()]);
    assert_eq!(q(&["-f", "since=keep:1"]), vec![dangling.clone()]);
    assert_eq!(
        q(&["-f", &format!("before={}", &dangling[7..19])]),
        vec![tagged.clone()]
    );
    let bad = d.docker(&["images", "-f", "bogus=1"]);
    assert!(
        bad.stderr.contains("invalid filter 'bogus'"),
        "{}",
        bad.stderr
    );
    let df = d.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.ok().contains("Images 2"), "{}", df.stdout);
    // Dangling prune keeps the tagged image; -a removes it too.
    let p = d.docker(&["image", "prune", "-f"]).ok().to_string();
    assert!(p.contains(&format!("deleted: {dangling}")), "{p}");
    assert_eq!(image_ids(&d), vec![tagged.clone()]);
    let p = d.docker(&["image", "prune", "-a", "-f"]).ok().to_string();
    assert!(p.contains("untagged: keep:1"), "{p}");
    assert!(p.contains(&format!("deleted: {tagged}")), "{p}");
    assert!(image_ids(&d).is_empty());
    assert!(
        leftovers(&d.data_root()).is_empty(),
        "{:?}",
        leftovers(&d.data_root())
    );
}

#[test]
fn bad_archives_fail_clearly_and_leave_nothing() {
    let limit: u64 = 4 << 20;
    let d = TestDaemon::builder()
        .config_json(serde_json::json!({ "max-layer-size": limit }))
        .start();
    let busybox = d.busybox_tar();
    let work = d.dir().join("bad");
    std::fs::create_dir_all(&work).expect("mkdir");
    let good = work.join("good.tar");
    let good_id = berth_testimg::docker_archive::write(&good, &[&busybox], "good:1", &["sh"])
        .expect("archive");
    let good_bytes = std::fs::read(&good).expect("read");
    let load = |bytes: &[u8], expect: &str| {
        let r = d.docker_stdin(&["load", "-q"], bytes);
        assert_ne!(r.status, 0, "load of a bad archive succeeded: {}", r.stdout);
        assert!(
            r.stderr.contains(expect),
            "expected {expect:?} in: {}",
            r.stderr
        );
        assert!(image_ids(&d).is_empty(), "{:?}", image_ids(&d));
        let left = leftovers(&d.data_root());
        assert!(left.is_empty(), "left behind: {left:?}");
    };
    // Truncated in the middle of the layer.
    load(&good_bytes[..good_bytes.len() / 2], "invalid");
    // A diff_id that does not match the layer.
    let diff = berth_core::Digest::of(&std::fs::read(&busybox).expect("tar"));
    let mut wrong = good_bytes.clone();
    let at = wrong
        .windows(64)
        .position(|w| w == diff.hex().as_bytes())
        .expect("diff_id in config");
    wrong[at] = if wrong[at] == b'0' { b'1' } else { b'0' };
    load(&wrong, "digest mismatch");
    // Entries that leave the archive.
    load(
        &raw_tar(&[("../../etc/evil", tar::EntryType::Regular, "", b"x")]),
        "escapes the archive",
    );
    load(
        &raw_tar(&[(
            "manifest.json",
            tar::EntryType::Symlink,
            "../../../etc/passwd",
            b"",
        )]),
        "outside the archive",
    );
    // Layers that try to write outside their root.
    let cases: [(&str, Vec<u8>); 2] = [
        (
            "traversal",
            raw_tar(&[("../../../tmp/berth-evil", tar::EntryType::Regular, "", b"x")]),
        ),
        (
            "symlink",
            raw_tar(&[
                ("escape", tar::EntryType::Symlink, "/tmp", b""),
                ("escape/berth-evil", tar::EntryType::Regular, "", b"x"),
            ]),
        ),
    ];
    for (name, layer) in cases {
        let lp = work.join(format!("{name}.tar"));
        std::fs::write(&lp, layer).expect("write layer");
        let arch = work.join(format!("{name}-archive.tar"));
        berth_testimg::docker_archive::write(&arch, &[&busybox, &lp], "evil:1", &["sh"])
            .expect("archive");
        load(&std::fs::read(&arch).expect("read"), "refusing");
        assert!(!Path::new("/tmp/berth-evil").exists());
    }
    // A tar bomb: a small gzip layer that inflates beyond max-layer-size.
    let bomb = work.join("bomb.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&bomb).expect("bomb"));
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(limit * 2);
        h.set_cksum();
        b.append_data(
            &mut h,
            "zeros.bin",
            std::io::Read::take(std::io::repeat(0), limit * 2),
        )
        .expect("bomb entry");
        b.finish().expect("bomb finish");
    }
    let st = Command::new("gzip")
        .arg("-k")
        .arg("-1")
        .arg(&bomb)
        .status()
        .expect("gzip");
    assert!(st.success());
    let gz = work.join("bomb.tar.gz");
    assert!(std::fs::metadata(&gz).expect("gz").len() < limit / 8);
    let r = d.docker(&["import", &gz.display().to_string(), "bomb:1"]);
    assert_ne!(r.status, 0);
    assert!(r.stderr.contains("configured limit"), "{}", r.stderr);
    assert!(image_ids(&d).is_empty());
    assert!(
        leftovers(&d.data_root()).is_empty(),
        "{:?}",
        leftovers(&d.data_root())
    );
    // And the good archive still loads with the expected ID afterwards.
    let r = d.docker_stdin(&["load"], &good_bytes);
    assert!(r.ok().contains("Loaded image: good:1"), "{}", r.stdout);
    assert_eq!(image_ids(&d), vec![good_id]);
}

#[test]
fn python_sdk_lists_saves_and_loads() {
    let d = TestDaemon::start();
    let tar = d.busybox_tar().display().to_string();
    let id = d
        .docker(&["import", "-c", "CMD [\"sh\"]", &tar, "py:1"])
        .ok()
        .trim()
        .to_string();
    let script = r#"
imgs = c.images.list()
assert any('py:1' in i.tags for i in imgs), imgs
img = c.images.get('py:1')
data = b''.join(img.save(named=True))
hist = img.history()
assert hist[0]['Id'] == img.id, hist
c.images.remove('py:1')
assert not c.images.list()
loaded = c.images.load(data)
print(loaded[0].id, loaded[0].tags)
"#;
    let out = d.python(script);
    assert_eq!(out.ok().trim(), format!("{id} ['py:1']"));
}

#[test]
fn import_from_stdin_compressed_keeps_the_layer_id() {
    let d = TestDaemon::start();
    let tar = d.busybox_tar();
    let plain = std::fs::read(&tar).expect("read");
    let st = Command::new("gzip")
        .arg("-k")
        .arg("-f")
        .arg(&tar)
        .status()
        .expect("gzip");
    assert!(st.success());
    let gz = std::fs::read(tar.with_extension("tar.gz")).expect("gz");
    let id = d
        .docker_stdin(&["import", "-c", "WORKDIR /tmp", "-", "gz:1"], &gz)
        .ok()
        .trim()
        .to_string();
    // The layer is the uncompressed tar: its diff_id is the sha256 of the plain bytes.
    let want = berth_core::Digest::of(&plain).to_string();
    let fmt = "{{json .RootFS.Layers}}|{{.Config.WorkingDir}}|{{.Comment}}";
    let got = d.docker(&["image", "inspect", "--format", fmt, &id]);
    assert_eq!(
        got.ok().trim(),
        format!("[\"{want}\"]|/tmp|Imported from -")
    );
    let bad = d.docker_stdin(&["import", "-c", "RUN true", "-", "bad:1"], &gz);
    assert_ne!(bad.status, 0);
    assert!(bad.stderr.to_lowercase().contains("run"), "{}", bad.stderr);
    assert_eq!(image_ids(&d), vec![id]);
}
