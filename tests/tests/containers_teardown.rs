//! A stopped container's filesystem goes down off the hot path (`daemon/src/containers/
//! teardown.rs`): `run --rm` answers once the container is gone from the store, and its
//! rootfs, rw layer and folders are removed in the background; a container started again right
//! after it exited gets its rw layer back intact (the new mount waits for the old one's flush).
//! `docker rm` answers once the container is gone too, and a berthd crash before the files
//! are gone loses nothing: the next start purges them.

use berth_tests::TestDaemon;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The entries of the overlay driver's folder (layers, `l`).
fn layers(d: &TestDaemon) -> BTreeSet<String> {
    std::fs::read_dir(d.data_root().join("overlay2"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `f` for up to 10 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_rm_frees_the_name_at_once_and_leaves_nothing_behind() {
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    // The image's init layer is made by the first create.
    let first = d.docker(&["create", "--name", "first", "busybox", "true"]);
    let first = first.ok().trim().to_string();
    d.docker(&["rm", "first"]).ok();
    // Its rw layer may still be on its way out.
    let mut before = layers(&d);
    before.remove(&first);
    for _ in 0..3 {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            "again",
            "-v",
            "/anon",
            "busybox",
            "sh",
            "-c",
            "echo x > /anon/f; echo done",
        ]);
        assert_eq!(out.ok(), "done\n");
    }
    assert!(d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty());
    eventually("the rw layers of the --rm containers are removed", || {
        layers(&d) == before
    });
    assert!(d.host_mounts().is_empty(), "{:?}", d.host_mounts());
    let empty =
        |dir: std::path::PathBuf| std::fs::read_dir(dir).map_or(true, |mut rd| rd.next().is_none());
    eventually("the container folders are removed", || {
        empty(d.data_root().join("containers")) && empty(d.exec_root().join("containers"))
    });
    assert!(
        d.docker(&["volume", "ls", "-q"]).ok().trim().is_empty(),
        "anonymous volumes of --rm containers are removed"
    );
}

#[test]
fn start_right_after_exit_finds_the_rw_layer_intact() {
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let script = "echo x >> /n; wc -l < /n";
    let out = d.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        "keep",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.ok().trim(), "1");
    for n in 2..=5 {
        let out = d.docker(&["start", "-a", "keep"]);
        assert_eq!(out.ok().trim(), n.to_string(), "run {n}");
    }
    d.docker(&["rm", "keep"]).ok();
    eventually("no mounts left", || d.host_mounts().is_empty());
}

#[test]
fn rm_leaves_nothing_behind_even_when_berthd_dies_before_the_files_are_gone() {
    let mut d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let first = d.docker(&["create", "--name", "first", "busybox", "true"]);
    let first = first.ok().trim().to_string();
    d.docker(&["rm", "first"]).ok();
    let mut before = layers(&d);
    before.remove(&first);
    let empty =
        |dir: std::path::PathBuf| std::fs::read_dir(dir).map_or(true, |mut rd| rd.next().is_none());

    // rm -f of running containers: gone at once for clients; their files follow.
    let ids: Vec<String> = (0..3).map(|i| d.sleeper(&format!("s{i}"))).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    d.docker(&args).ok();
    assert!(d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty());
    d.sleeper("s0");
    d.docker(&["rm", "-f", "s0"]).ok();
    eventually("the removed containers' rw layers go", || {
        layers(&d) == before
    });
    eventually("and their folders and mounts", || {
        empty(d.data_root().join("containers"))
            && empty(d.exec_root().join("containers"))
            && d.host_mounts().is_empty()
    });

    // berthd dies right after `rm` took the record out of the store (its folder renamed to
    // a tombstone, `teardown::bury`) and before the files went: the next start purges them
    // and the container stays removed.
    let id = d.docker(&["create", "--name", "doomed", "busybox", "true"]);
    let id = id.ok().trim().to_string();
    d.kill9();
    let containers = d.data_root().join("containers");
    std::fs::rename(
        containers.join(&id),
        containers.join(format!(".removed-{id}")),
    )
    .expect("burying the record");
    d.restart();
    assert!(d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty());
    eventually("the tombstone and the rw layer are purged", || {
        layers(&d) == before && empty(d.data_root().join("containers"))
    });
    d.docker(&["create", "--name", "doomed", "busybox", "true"])
        .ok();
}
