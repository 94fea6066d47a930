//! Other host users (issue #15): berthd's data root and exec root are `0710 root:root`, as
//! Docker's, fixed at every start (also on an existing, too open data root), so a non-root
//! user (`nobody`, through `setpriv`) can list neither containers' folders, layer folders nor
//! volumes, and cannot read a file a container wrote into its rootfs. Containers run as
//! `nobody` still work, with their volumes.

use berth_tests::TestDaemon;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// (owner, group, mode bits) of `p`.
fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(p).expect("stat");
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// Runs `args` as nobody (uid and gid 65534, no supplementary groups): (success, output).
fn as_nobody(args: &[&str]) -> (bool, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .expect("run setpriv");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every path under `dir` (links not followed) whose name is `name`.
fn find(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_name() == name {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            find(&p, name, out);
        }
    }
}

/// The daemon's folder is a private temp dir: open it, so that only berthd's own modes stand
/// between nobody and the data.
fn open_test_dir(d: &TestDaemon) {
    chmod(d.dir(), 0o755);
}

#[test]
fn roots_are_0710_root_at_every_start() {
    let mut d = TestDaemon::start();
    open_test_dir(&d);
    assert_eq!(owner_mode(&d.data_root()), (0, 0, 0o710));
    assert_eq!(owner_mode(&d.exec_root()), (0, 0, 0o710));
    // An existing data root made too open is fixed at the next start, its folders too.
    d.stop();
    chmod(&d.data_root(), 0o777);
    chmod(&d.data_root().join("containers"), 0o755);
    d.restart();
    assert_eq!(owner_mode(&d.data_root()), (0, 0, 0o710));
    assert_eq!(owner_mode(&d.data_root().join("containers")).2, 0o710);
    let (ok, out) = as_nobody(&["ls", &d.data_root().display().to_string()]);
    assert!(!ok, "nobody lists the data root: {out}");
    d.docker(&["version"]).ok();
}

#[test]
fn nobody_reaches_no_container_layer_or_volume() {
    let d = TestDaemon::start();
    open_test_dir(&d);
    d.import_busybox();
    d.docker(&[
        "run",
        "--name",
        "writer",
        "-v",
        "secrets:/data",
        "busybox",
        "sh",
        "-c",
        "echo rootfs-secret > /secret-in-rootfs.txt; echo volume-secret > /data/secret-in-volume.txt",
    ])
    .ok();
    let root = d.data_root();
    let mut files = Vec::new();
    find(&root, "secret-in-rootfs.txt", &mut files);
    find(&root, "secret-in-volume.txt", &mut files);
    assert!(
        files.len() >= 2,
        "the container's files on the host: {files:?}"
    );
    for f in &files {
        let (ok, out) = as_nobody(&["cat", &f.display().to_string()]);
        assert!(
            !ok && !out.contains("-secret\n"),
            "nobody reads {f:?}: {out}"
        );
    }
    let mut folders = vec![root.join("containers"), root.join("volumes")];
    let driver = d.docker(&["info", "--format", "{{.Driver}}"]);
    folders.push(root.join(driver.ok().trim()));
    folders.push(d.exec_root().join("containers"));
    // Their own folders are not for others either (as Docker's): the container's folders,
    // the volume's folder.
    let id = d.docker(&["inspect", "--format", "{{.Id}}", "writer"]);
    let id = id.ok().trim().to_string();
    assert_eq!(owner_mode(&root.join("containers").join(&id)).2, 0o710);
    assert_eq!(owner_mode(&root.join("volumes").join("secrets")).2, 0o710);
    for f in &folders {
        assert!(f.is_dir(), "{f:?}");
        assert_eq!(owner_mode(f), (0, 0, 0o710), "{f:?}");
        let (ok, out) = as_nobody(&["ls", &f.display().to_string()]);
        assert!(!ok, "nobody lists {f:?}: {out}");
    }
    d.docker(&["version"]).ok();
}

/// `-u nobody` with a volume on storage driver `driver`.
fn nobody_runs_with_a_volume(driver: &str) {
    let d = TestDaemon::builder().storage_driver(driver).start();
    open_test_dir(&d);
    d.import_busybox();
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "busybox",
        "chmod",
        "777",
        "/data",
    ])
    .ok();
    let out = d.docker(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "id -u; echo from-nobody > /data/f; cat /data/f; cat /etc/passwd >/dev/null && echo rootfs-ok",
    ]);
    assert_eq!(out.ok(), "65534\nfrom-nobody\nrootfs-ok\n");
    // Read back by another container, as root.
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out.ok(), "from-nobody\n");
    d.docker(&["version"]).ok();
}

#[test]
fn containers_run_as_nobody_still_work_with_volumes() {
    nobody_runs_with_a_volume("overlay2");
}

#[test]
fn containers_run_as_nobody_still_work_on_vfs() {
    nobody_runs_with_a_volume("vfs");
}
