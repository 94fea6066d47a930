//! Atomic writes across the daemon's stores (`berth_core::atomic`): after real use no temp
//! file is left anywhere in the data root, and the temp files a `kill -9` mid-write would
//! leave (planted here in the container, network, image and init-layer stores) are swept
//! when berthd starts again, with every record intact and the engine ID unchanged.

use berth_core::atomic::is_temp_name;
use berth_tests::TestDaemon;
use std::path::{Path, PathBuf};

/// Every temp name ([`is_temp_name`]) under `dir`, not following symlinks.
fn temps_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if is_temp_name(&e.file_name()) {
                out.push(e.path());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
    out
}

/// The folder named `name` somewhere under `dir` (first found).
fn find_dir(dir: &Path, name: &str) -> PathBuf {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name() == name {
                    return e.path();
                }
                todo.push(e.path());
            }
        }
    }
    panic!("no folder {name} under {}", dir.display());
}

#[test]
fn no_temp_left_and_leftovers_swept_after_kill9() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let id_before = d.docker(&["info", "-f", "{{.ID}}"]).ok().trim().to_string();
    d.docker(&["volume", "create", "atomvol"]).ok();
    d.docker(&["network", "create", "atomnet"]).ok();
    let cid = d
        .docker(&["create", "--name", "atomc", "busybox", "true"])
        .ok()
        .trim()
        .to_string();
    d.docker(&["start", "-a", "atomc"]).ok();

    let root = d.data_root();
    let left = temps_under(&root);
    assert!(left.is_empty(), "temp files left after use: {left:?}");

    // What a berthd killed between create and rename leaves behind.
    let planted = [
        root.join("containers")
            .join(&cid)
            .join(".config.v2.json.tmp-4194000-7"),
        root.join("network/networks")
            .join(".abc.json.tmp-4194000-8"),
        find_dir(&root.join("image"), "imagedb").join(".def.json.tmp-4194000-9"),
        root.join("init-layers").join(".x-init.tmp-4194000-10"),
    ];
    for p in &planted {
        std::fs::write(p, b"{\"half\":").expect("plant a leftover");
    }
    d.kill9();
    d.restart();

    for p in &planted {
        assert!(!p.exists(), "leftover not swept: {}", p.display());
    }
    let left = temps_under(&root);
    assert!(left.is_empty(), "temp files left after restart: {left:?}");
    let id_after = d.docker(&["info", "-f", "{{.ID}}"]).ok().trim().to_string();
    assert_eq!(id_before, id_after, "engine ID kept");
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.Name}}", "atomc"])
            .ok()
            .trim(),
        "/atomc"
    );
    d.docker(&["volume", "inspect", "atomvol"]).ok();
    d.docker(&["network", "inspect", "atomnet"]).ok();
    d.docker(&["start", "-a", "atomc"]).ok();
    d.docker(&["rm", "atomc"]).ok();
    d.docker(&["network", "rm", "atomnet"]).ok();
    d.docker(&["volume", "rm", "atomvol"]).ok();
    d.docker(&["version"]).ok();
}

#[test]
fn berth_save_o_writes_the_file_whole_and_leaves_no_temp() {
    let d = TestDaemon::start();
    d.import_busybox();
    let out_dir = d.dir().join("saves");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let out = out_dir.join("bb.tar");
    let out_s = out.display().to_string();
    d.berth(&["save", "-o", &out_s, "busybox"]).ok();
    let tar = std::fs::read(&out).expect("saved archive");
    assert!(tar.len() > 1024, "archive too small: {}", tar.len());
    // Replacing it goes through a temp file too, and a missing image leaves the old file.
    d.berth(&["save", "-o", &out_s, "busybox"]).ok();
    let failed = d.berth(&["save", "-o", &out_s, "no-such-image:nope"]);
    assert_ne!(failed.status, 0, "saving a missing image fails");
    assert_eq!(std::fs::read(&out).expect("still there"), tar);
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["bb.tar"],
        "only the archive in {}",
        out_dir.display()
    );
    d.docker(&["version"]).ok();
}
