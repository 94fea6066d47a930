//! Round trips with the real Docker engine (Debian's dockerd, started by the test with its own
//! data root, exec root, socket and no networking): `docker save` from the real engine loads
//! into berthd with the same image ID, berthd's save loads back into the real engine with the
//! same ID and files, and an OCI image-layout tarball made by skopeo loads with the ID its
//! config digest names. Skipped, with a message, when dockerd or skopeo is missing.

use berth_tests::{RealEngine, TestDaemon};
use std::path::Path;
use std::process::Command;

fn inspect_id(d: &TestDaemon, name: &str) -> String {
    d.docker(&["image", "inspect", "--format", "{{.Id}}", name])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn real_engine_save_loads_with_the_same_id_and_back() {
    let Some(real) = RealEngine::start() else {
        return;
    };
    let d = TestDaemon::start();
    let rootfs = d.busybox_tar().display().to_string();
    // Real engine → berthd (the real engine writes its own archive layout).
    let real_id = real
        .ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            "-m",
            "from the real engine",
            &rootfs,
            "bb:real",
        ])
        .trim()
        .to_string();
    let real_save = real.path("real.tar").display().to_string();
    real.ok(&["save", "-o", &real_save, "bb:real"]);
    let loaded = d.docker(&["load", "-i", &real_save]).ok().to_string();
    assert!(loaded.contains("Loaded image: bb:real"), "{loaded}");
    assert_eq!(inspect_id(&d, "bb:real"), real_id);
    let fmt = "{{.Comment}}|{{json .Config.Cmd}}|{{json .RootFS.Layers}}";
    assert_eq!(
        d.docker(&["image", "inspect", "--format", fmt, "bb:real"])
            .ok(),
        real.ok(&["image", "inspect", "--format", fmt, "bb:real"])
    );
    // berthd → real engine: an image made by berthd keeps its ID and files.
    let ours = d
        .docker(&["import", "-c", "ENV WHO=berth", &rootfs, "bb:berth"])
        .ok()
        .trim()
        .to_string();
    let our_save = real.path("berth.tar").display().to_string();
    d.docker(&["save", "-o", &our_save, "bb:berth", "bb:real"])
        .ok();
    real.ok(&["rmi", "bb:real"]);
    let back = real.ok(&["load", "-i", &our_save]);
    assert!(back.contains("Loaded image: bb:berth"), "{back}");
    assert!(back.contains("Loaded image: bb:real"), "{back}");
    for (name, id) in [("bb:berth", &ours), ("bb:real", &real_id)] {
        let got = real.ok(&["image", "inspect", "--format", "{{.Id}}", name]);
        assert_eq!(got.trim(), id.as_str(), "{name}");
    }
    // The files: export a (never started) container of the round-tripped image.
    let cid = real.ok(&["create", "bb:berth", "sh"]).trim().to_string();
    let export = real.path("export.tar");
    real.ok(&["export", "-o", &export.display().to_string(), &cid]);
    let mut ours_files = member_sizes(Path::new(&rootfs));
    let mut theirs = member_sizes(&export);
    theirs.retain(|(n, _)| ours_files.iter().any(|(o, _)| o == n));
    ours_files.sort();
    theirs.sort();
    assert_eq!(theirs, ours_files);
    real.ok(&["rm", &cid]);
}

/// (path, size) of the regular files in a tarball.
fn member_sizes(tar_path: &Path) -> Vec<(String, u64)> {
    let mut ar = tar::Archive::new(std::fs::File::open(tar_path).expect("open"));
    ar.entries()
        .expect("entries")
        .filter_map(Result::ok)
        .filter(|e| e.header().entry_type().is_file())
        .map(|e| {
            let p = e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            (
                p.trim_start_matches("./").to_string(),
                e.header().size().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn oci_layout_from_skopeo_loads_with_its_config_digest() {
    if !Path::new("/usr/bin/skopeo").exists() {
        eprintln!("SKIP: skopeo is not installed; the OCI layout load is not tested");
        return;
    }
    let d = TestDaemon::start();
    let work = d.dir().join("oci");
    std::fs::create_dir_all(&work).expect("mkdir");
    let archive = work.join("docker.tar");
    berth_testimg::docker_archive::write(&archive, &[&d.busybox_tar()], "bb:oci", &["sh"])
        .expect("archive");
    let oci = work.join("oci.tar");
    let st = Command::new("skopeo")
        .arg("copy")
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("oci-archive:{}", oci.display()))
        .status()
        .expect("skopeo");
    assert!(st.success(), "skopeo copy failed");
    // The expected ID: the config digest the OCI manifest names.
    let unpacked = work.join("unpacked");
    std::fs::create_dir_all(&unpacked).expect("mkdir");
    tar::Archive::new(std::fs::File::open(&oci).expect("open"))
        .unpack(&unpacked)
        .expect("unpack");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("index.json")).expect("index"))
            .expect("json");
    let mdigest = index["manifests"][0]["digest"].as_str().expect("digest");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(unpacked.join("blobs/sha256").join(&mdigest[7..])).expect("manifest"),
    )
    .expect("json");
    let want = manifest["config"]["digest"]
        .as_str()
        .expect("config")
        .to_string();
    let out = d
        .docker(&["load", "-i", &oci.display().to_string()])
        .ok()
        .to_string();
    assert!(out.contains("Loaded image"), "{out}");
    assert!(
        d.docker(&["images", "-q", "--no-trunc"])
            .ok()
            .contains(&want),
        "expected {want} after loading the OCI layout: {out}"
    );
    // And it saves back out and loads again with the same ID.
    let again = work.join("again.tar");
    d.docker(&["save", "-o", &again.display().to_string(), &want])
        .ok();
    d.docker(&["rmi", "-f", &want]).ok();
    let out = d
        .docker(&["load", "-i", &again.display().to_string()])
        .ok()
        .to_string();
    assert!(
        out.contains(&format!("Loaded image ID: {want}")) || out.contains("Loaded image:"),
        "{out}"
    );
    assert_eq!(inspect_id(&d, &want), want);
}
