//! Issue #15, hostile image layers: `docker load` of images whose layers hold `../` entries,
//! absolute paths, an entry written through a symlink to a host canary, hard links to host
//! files, and a symlink replaced by a file in a later layer — with overlay2 and vfs. The
//! canary stays untouched, each load works confined or fails cleanly, and berthd answers.

use berth_tests::hostile::Canary;
use berth_tests::TestDaemon;
use std::path::{Path, PathBuf};

/// Appends an entry whose name (and link target) is written raw, as a hostile tool would
/// (the tar crate refuses `..` and absolute names).
fn raw(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Symlink {
        0o777
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    let bytes = name.as_bytes();
    assert!(
        bytes.len() < 100 && link.is_none_or(|l| l.len() < 100),
        "names fit"
    );
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).expect("append");
}

/// The hostile layers: (case name, layers above the busybox rootfs, what a container of
/// the image should print for `cat /probe` when the load succeeds).
/// One hostile image: its name, its layers above busybox, what `cat /probe` prints.
type Case = (&'static str, Vec<Vec<u8>>, Option<&'static str>);

/// One layer: a tar of raw entries (kind, name, link target, data).
fn layer(entries: &[(tar::EntryType, &str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (kind, name, link, data) in entries {
        raw(&mut b, *kind, name, *link, data);
    }
    b.into_inner().expect("tar")
}

fn cases(canary: &Path) -> Vec<Case> {
    use tar::EntryType::{Link, Regular, Symlink};
    let c = canary.display().to_string();
    let crel = c.trim_start_matches('/').to_string();
    let up = "../../../../../../../../../..";
    let secret = format!("{c}/secret");
    vec![
        (
            "dotdot",
            vec![layer(&[(
                Regular,
                &format!("{up}/{crel}/dotdot"),
                None,
                b"x",
            )])],
            None,
        ),
        // An absolute name is taken inside the layer, as Docker does.
        (
            "absolute",
            vec![layer(&[
                (Regular, &format!("{c}/absolute"), None, b"abs"),
                (Regular, "probe", None, b"absolute-inside"),
            ])],
            Some("absolute-inside"),
        ),
        (
            "write-through-symlink",
            vec![layer(&[
                (Symlink, "a", Some(&c), b""),
                (Regular, "a/x", None, b"through-the-link"),
            ])],
            None,
        ),
        (
            "hardlink-absolute",
            vec![layer(&[(Link, "hard-abs", Some(&secret), b"")])],
            None,
        ),
        (
            "hardlink-dotdot",
            vec![layer(&[(
                Link,
                "hard-up",
                Some(&format!("{up}/{crel}/secret")),
                b"",
            )])],
            None,
        ),
        // A symlink to the canary's secret, then a file of the same name in the next layer.
        (
            "symlink-then-file",
            vec![
                layer(&[(Symlink, "probe", Some(&secret), b"")]),
                layer(&[(Regular, "probe", None, b"replaced-in-layer-2")]),
            ],
            Some("replaced-in-layer-2"),
        ),
        // A hard link whose target is a symlink to the canary: links the symlink, never the
        // host file.
        (
            "hardlink-to-symlink",
            vec![layer(&[
                (Symlink, "tosecret", Some(&secret), b""),
                (Link, "probe", Some("tosecret"), b""),
            ])],
            None,
        ),
    ]
}

fn play(driver: &str) {
    let d = TestDaemon::builder().storage_driver(driver).start();
    let canary = Canary::new(&format!("layers-{driver}"));
    let base = d.busybox_tar();
    for (name, layers, expect) in cases(canary.dir()) {
        let mut paths = vec![base.clone()];
        for (i, l) in layers.iter().enumerate() {
            let p = d.dir().join(format!("{name}-{i}.tar"));
            std::fs::write(&p, l).expect("layer");
            paths.push(p);
        }
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let image = d.dir().join(format!("{name}-image.tar"));
        let tag = format!("hostile-{name}:latest");
        berth_testimg::docker_archive::write(&image, &refs, &tag, &["sh"]).expect("image");
        let loaded = d.docker(&["load", "-i", &image.display().to_string()]);
        eprintln!(
            "{driver}/{name}: load {}",
            if loaded.success() {
                "worked"
            } else {
                loaded.stderr.trim()
            }
        );
        canary.assert_untouched();
        d.docker(&["version"]).ok();
        if loaded.success() {
            let out = d.docker(&[
                "run",
                "--rm",
                "--network",
                "none",
                &tag,
                "sh",
                "-c",
                "cat /probe 2>&1; true",
            ]);
            canary.assert_untouched();
            if let Some(want) = expect {
                assert_eq!(out.ok().trim(), want, "{driver}/{name}");
            }
            assert!(
                !out.stdout.contains("host-secret-untouched"),
                "{driver}/{name}: the container read the host's file"
            );
            d.docker(&["rmi", "-f", &tag]).ok();
        } else {
            assert!(
                expect.is_none(),
                "{driver}/{name}: a harmless image failed to load: {}",
                loaded.stderr
            );
            assert!(
                !loaded.stderr.trim().is_empty(),
                "{driver}/{name}: says why"
            );
        }
    }
    canary.assert_untouched();
    d.docker(&["version"]).ok();
}

#[test]
fn hostile_layers_overlay2() {
    play("overlay2");
}

#[test]
fn hostile_layers_vfs() {
    play("vfs");
}
