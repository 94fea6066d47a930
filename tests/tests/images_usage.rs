//! Images and the containers that use them, through the docker CLI: `rmi` refuses an image a
//! container uses (Docker's texts), `commit` makes a child image with history and parent,
//! image events, `diff` and `commit` holding only the container's own changes (not the
//! runtime's mount points, which live in the init layer), and a `kill -9` of berthd in the
//! middle of a load leaves a store that restarts with every complete image and nothing
//! half-made.

use berth_tests::TestDaemon;
use std::path::Path;
use std::time::{Duration, Instant};

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..12]
}

#[test]
fn rmi_respects_containers_and_commit_makes_children() {
    let d = TestDaemon::start();
    d.import_busybox();
    let base = d
        .docker(&["image", "inspect", "--format", "{{.Id}}", "busybox"])
        .ok()
        .trim()
        .to_string();
    let cid = d
        .docker(&["create", "busybox", "sh"])
        .ok()
        .trim()
        .to_string();
    let r = d.docker(&["rmi", "busybox"]);
    assert_ne!(r.status, 0);
    let want = format!(
        "conflict: unable to remove repository reference \"busybox\" (must force) - container {} is using its referenced image {}",
        &cid[..12],
        short(&base)
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    let r = d.docker(&["rmi", short(&base)]);
    assert!(
        r.stderr.contains(&format!(
            "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
            short(&base),
            &cid[..12]
        )),
        "{}",
        r.stderr
    );
    // Commit the (unchanged) container with a change and a message.
    let child = d
        .docker(&[
            "commit",
            "-c",
            "ENV STEP=2",
            "-m",
            "snapshot",
            "-a",
            "tester",
            &cid,
            "child:1",
        ])
        .ok()
        .trim()
        .to_string();
    let fmt = "{{.Parent}}|{{.Author}}|{{json .Config.Env}}|{{len .RootFS.Layers}}";
    let got = d.docker(&["image", "inspect", "--format", fmt, "child:1"]);
    let got = got.ok().trim().to_string();
    assert!(got.starts_with(&format!("{base}|tester|")), "{got}");
    assert!(got.contains("STEP=2"), "{got}");
    let hist = d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Comment}}",
        "child:1",
    ]);
    let rows: Vec<String> = hist.ok().lines().map(str::to_string).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0], format!("{child}|snapshot"));
    assert!(rows[1].starts_with(&base), "{rows:?}");
    // The parent has a child now: even force cannot delete it by ID.
    d.docker(&["rm", &cid]).ok();
    let r = d.docker(&["rmi", "-f", short(&base)]);
    assert!(
        r.stderr
            .contains("(cannot be forced) - image has dependent child images"),
        "{}",
        r.stderr
    );
    // rmi of the child prunes nothing tagged; the events tell what happened.
    let text = d.docker(&["rmi", "child:1"]).ok().to_string();
    assert!(text.contains(&format!("Deleted: {child}")), "{text}");
    // The CLI sends whole seconds: end the replay just after now.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs() + 1)
        .unwrap_or(0)
        .to_string();
    let ev = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let ev = ev.ok().to_string();
    // As dockerd's, `untag` names the image ID, not the tag.
    let untag = format!("untag {child}");
    for want in ["import", untag.as_str(), "delete"] {
        assert!(ev.contains(want), "missing {want:?} in events:\n{ev}");
    }
}

/// Loads big enough that berthd is still busy when it gets SIGKILL.
#[test]
fn kill_9_during_load_leaves_a_consistent_store() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let keep = d
        .docker(&["image", "inspect", "--format", "{{.Id}}", "busybox"])
        .ok()
        .trim()
        .to_string();
    let work = d.dir().join("big");
    std::fs::create_dir_all(&work).expect("mkdir");
    let mut layers = Vec::new();
    for i in 0..4u64 {
        let l = work.join(format!("l{i}.tar"));
        berth_testimg::bulk::layer_tar(
            &l,
            i,
            &[(
                format!("blob{i}.bin"),
                48 << 20,
                berth_testimg::bulk::Fill::Random,
            )],
        )
        .expect("layer");
        layers.push(l);
    }
    let refs: Vec<&Path> = layers.iter().map(|p| p.as_path()).collect();
    let arch = work.join("big.tar");
    berth_testimg::docker_archive::write(&arch, &refs, "big:1", &["sh"]).expect("archive");
    let mut load = d
        .docker_cmd(&["load", "-q", "-i", &arch.display().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker load");
    // Wait (a hang guard, not a timing assertion) until the load has written something.
    let root = d.data_root();
    let busy = || {
        let spooling = std::fs::read_dir(root.join("image/tmp"))
            .map(|r| r.count() > 0)
            .unwrap_or(false);
        let applying = std::fs::read_dir(root.join("image/layers"))
            .map(|r| {
                r.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            })
            .unwrap_or(false);
        spooling || applying
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !busy() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    d.kill9();
    let _ = load.wait();
    d.restart();
    let ids = d
        .docker(&["images", "-a", "-q", "--no-trunc"])
        .ok()
        .to_string();
    let ids: Vec<&str> = ids.lines().collect();
    assert!(ids.contains(&keep.as_str()), "{ids:?}");
    // The big image is either absent or complete (never half there).
    if ids.len() > 1 {
        let n = d.docker(&[
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            "big:1",
        ]);
        assert_eq!(n.ok().trim(), "4");
    }
    let layers_dir: Vec<String> = std::fs::read_dir(root.join("image/layers"))
        .expect("layers")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        layers_dir.iter().all(|n| !n.starts_with(".tmp-")),
        "{layers_dir:?}"
    );
    assert_eq!(
        layers_dir.len(),
        if ids.len() > 1 { 5 } else { 1 },
        "{layers_dir:?}"
    );
    let tmp: Vec<_> = std::fs::read_dir(root.join("image/tmp"))
        .expect("tmp")
        .collect();
    assert!(tmp.is_empty());
    // The store still works: the busybox image loads again after a round trip.
    let out = work.join("keep.tar");
    d.docker(&["save", "-o", &out.display().to_string(), "busybox"])
        .ok();
    d.docker(&["rmi", "busybox"]).ok();
    d.docker(&["load", "-i", &out.display().to_string()]).ok();
    let id = d.docker(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    assert_eq!(id.ok().trim(), keep);
}

/// The names of the entries of the last layer of `image`, read from a `docker save`.
fn top_layer_entries(d: &TestDaemon, image: &str) -> Vec<String> {
    let tar_path = d.dir().join(format!("{}.tar", image.replace(':', "_")));
    let path = tar_path.display().to_string();
    d.docker(&["save", "-o", &path, image]).ok();
    let read = |p: &std::path::Path| -> Option<Vec<(String, Vec<u8>)>> {
        let mut a = tar::Archive::new(std::fs::File::open(p).ok()?);
        let mut out = Vec::new();
        for e in a.entries().ok()? {
            let mut e = e.ok()?;
            let name = e.path().ok()?.display().to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).ok()?;
            out.push((name, data));
        }
        Some(out)
    };
    let entries = read(&tar_path).unwrap_or_default();
    let manifest: serde_json::Value = entries
        .iter()
        .find(|(n, _)| n == "manifest.json")
        .and_then(|(_, b)| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let layers = manifest[0]["Layers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let top = layers.last().and_then(|v| v.as_str()).unwrap_or_default();
    let Some((_, bytes)) = entries.iter().find(|(n, _)| n == top) else {
        panic!("no layer {top} in the saved archive");
    };
    let mut a = tar::Archive::new(&bytes[..]);
    let mut names: Vec<String> = a
        .entries()
        .map(|es| {
            es.flatten()
                .filter_map(|e| e.path().ok().map(|p| p.display().to_string()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn diff_and_commit_hold_only_the_containers_own_changes() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker(&[
        "run",
        "--name",
        "ch",
        "busybox",
        "sh",
        "-c",
        "echo hi > /f; rm /etc/group",
    ])
    .ok();
    // Docker's answer: the runtime's mount points (/proc, /etc/hosts, ...) live in the init
    // layer, not among the container's changes.
    assert_eq!(
        d.docker(&["diff", "ch"]).ok(),
        "C /etc\nD /etc/group\nA /f\n"
    );
    d.docker(&["commit", "ch", "ch:1"]).ok();
    assert_eq!(
        top_layer_entries(&d, "ch:1"),
        ["etc", "etc/.wh.group", "f"],
        "the committed layer holds the changes only"
    );
    assert_eq!(d.docker(&["run", "--rm", "ch:1", "cat", "/f"]).ok(), "hi\n");
    // The init layer goes with the last image using its parent layer.
    d.docker(&["rm", "ch"]).ok();
    d.docker(&["rmi", "ch:1", "busybox"]).ok();
    let driver_dir = d.data_root().join("overlay2");
    let left: Vec<String> = std::fs::read_dir(&driver_dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with("-init"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "init layers left: {left:?}");
}

#[test]
fn ps_size_and_system_df_count_containers_and_volumes() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker(&[
        "run",
        "--name",
        "sz",
        "-v",
        "vol1:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /data/x; echo hi > /y",
    ])
    .ok();
    // Docker's sizes: the bytes of the files the container wrote (folders not counted).
    let size = d
        .docker(&["ps", "-a", "-s", "--format", "{{.Size}}"])
        .ok()
        .trim()
        .to_string();
    assert!(size.starts_with("3B (virtual "), "{size}");
    let df = d
        .docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}",
        ])
        .ok()
        .to_string();
    assert!(df.contains("Containers 1 0 3B"), "{df}");
    assert!(df.contains("Local Volumes 1 1 100kB"), "{df}");
    let v = d.docker(&["system", "df", "-v"]).ok().to_string();
    assert!(v.contains("Exited (0)") && v.contains("vol1"), "{v}");
}
