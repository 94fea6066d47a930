//! Round trips with the real Docker engine (Debian's dockerd, started by the test with its own
//! data root, exec root, socket and no networking): `docker save` from the real engine loads
//! into berthd with the same image ID, berthd's save loads back into the real engine with the
//! same ID and files, and an OCI image-layout tarball made by skopeo loads with the ID its
//! config digest names. Skipped, with a message, when dockerd or skopeo is missing.

use berth_tests::TestDaemon;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOCKER: &str = "/usr/local/bin/docker";

/// A private dockerd, stopped (by PID) and removed when dropped.
struct RealEngine {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RealEngine {
    fn start() -> Option<RealEngine> {
        let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(dockerd) = dockerd else {
            eprintln!("SKIP: dockerd is not installed; the real-engine round trip is not tested");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("berth-realdocker-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        let p = dir.path();
        std::fs::write(p.join("daemon.json"), "{}").expect("daemon.json");
        let log = std::fs::File::create(p.join("dockerd.log")).expect("log");
        let child = Command::new(dockerd)
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("dockerd.pid"))
            .arg("--config-file")
            .arg(p.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", p.join("docker.sock").display()))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .args(["--ip6tables=false", "--storage-driver", "vfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning dockerd");
        let mut e = RealEngine {
            dir,
            child: Some(child),
        };
        // A hang guard, not a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !e.docker(&["version"]).0 {
            if Instant::now() > deadline {
                panic!("dockerd did not come up: {}", e.log());
            }
            if let Some(Ok(Some(st))) = e.child.as_mut().map(Child::try_wait) {
                panic!("dockerd exited with {st}: {}", e.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(e)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the docker CLI against the real engine: (success, stdout, stderr).
    fn docker(&self, args: &[&str]) -> (bool, String, String) {
        let o = Command::new(DOCKER)
            .arg("-H")
            .arg(format!("unix://{}", self.path("docker.sock").display()))
            .args(args)
            .env("DOCKER_CONFIG", self.path("docker-config"))
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("running docker");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.docker(args);
        assert!(ok, "real docker {args:?} failed: {err}\n{out}");
        out
    }
}

impl Drop for RealEngine {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on the dockerd we spawned; no memory is involved.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Detach anything dockerd mounted under its folders before they are removed.
        let root = self.dir.path().display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
    }
}

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
