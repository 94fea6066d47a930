//! Hostile images stay contained (issue #15, item 1: the container rootfs set-up): images
//! whose `/etc`, `/dev`, `/etc/hosts`, `/etc/resolv.conf`, volume paths, bind-mount parents
//! and working folder are symlinks to a host folder (absolute, or climbing with `..`), and
//! whose `/etc/passwd` is `/dev/zero` or a fifo. Each attack is played for real through the
//! docker CLI; the host folder (a canary under the test's own temp dir) must stay empty, and
//! berthd must keep answering.

use berth_tests::TestDaemon;
use std::io::Read;
use std::path::{Path, PathBuf};

/// An entry added to the busybox rootfs.
enum Extra<'a> {
    /// A symlink at the path, to the target.
    Link(&'a str, String),
    /// A fifo at the path.
    Fifo(&'a str),
}

/// Imports the busybox rootfs as `name`, without the entries `drop` says and with `extras`,
/// with `docker import -c` `changes`.
fn import(
    d: &TestDaemon,
    name: &str,
    drop: &dyn Fn(&str) -> bool,
    extras: &[Extra<'_>],
    changes: &[&str],
) {
    let src = d.busybox_tar();
    let dest = d.dir().join(format!("{name}.tar"));
    let file = std::fs::File::create(&dest).expect("tar file");
    let mut out = tar::Builder::new(file);
    let mut input = tar::Archive::new(std::fs::File::open(&src).expect("busybox tar"));
    for entry in input.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").display().to_string();
        if drop(path.trim_end_matches('/')) {
            continue;
        }
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read entry");
        out.append(&header, data.as_slice()).expect("append");
    }
    for e in extras {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        match e {
            Extra::Link(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                out.append_link(&mut h, path, target).expect("link");
            }
            Extra::Fifo(path) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                out.append_data(&mut h, path, std::io::empty())
                    .expect("fifo");
            }
        }
    }
    out.into_inner().expect("finish tar");
    let mut args = vec!["import"];
    for c in changes {
        args.extend(["-c", c]);
    }
    let dest = dest.display().to_string();
    args.extend([dest.as_str(), name]);
    d.docker(&args).ok();
}

/// The host folder the images point at: empty, under the test daemon's folder.
fn canary(d: &TestDaemon) -> PathBuf {
    let c = d.dir().join("canary");
    std::fs::create_dir_all(&c).expect("canary");
    c
}

/// `../../../../../../../../<canary>`: climbs out of any rootfs to the canary.
fn climbing(canary: &Path) -> String {
    format!(
        "{}{}",
        "../".repeat(16),
        canary.display().to_string().trim_start_matches('/')
    )
}

#[track_caller]
fn assert_contained(d: &TestDaemon, canary: &Path, what: &str) {
    let found: Vec<_> = std::fs::read_dir(canary)
        .expect("canary")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert!(
        found.is_empty(),
        "{what}: made {found:?} in the host folder"
    );
    d.docker(&["version"]).ok();
}

/// `docker run --rm --network none [args] image [cmd]`.
fn run(d: &TestDaemon, args: &[&str], image: &str, cmd: &[&str]) -> berth_tests::Output {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    all.push(image);
    all.extend_from_slice(cmd);
    d.docker(&all)
}

/// `/etc` (absolute and climbing) and `/dev` symlinks to the canary, `/etc/hosts` and
/// `/etc/resolv.conf` symlinks into it: the init layer, the `/dev` set-up and the bind
/// targets stay in the rootfs.
fn etc_and_dev_links(d: &TestDaemon) {
    let c = canary(d);
    let abs = c.display().to_string();
    let under = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    import(
        d,
        "etc-abs",
        &|p| under(p, "etc"),
        &[Extra::Link("etc", abs.clone())],
        &[],
    );
    import(
        d,
        "dev-abs",
        &|p| under(p, "dev"),
        &[Extra::Link("dev", abs.clone())],
        &[],
    );
    import(
        d,
        "etc-files",
        &|p| matches!(p, "etc/hosts" | "etc/resolv.conf" | "etc/hostname"),
        &[
            Extra::Link("etc/hosts", format!("{abs}/hosts")),
            Extra::Link("etc/resolv.conf", format!("{abs}/resolv.conf")),
            Extra::Link("etc/hostname", format!("{abs}/hostname")),
        ],
        &[],
    );
    // The layer importer refuses a symlink that climbs out of the layer, and so does a
    // commit: the container makes it in its own rw layer, and is started again.
    let script = format!("rm /etc && ln -s {} /etc", climbing(&c));
    let made = [
        "run",
        "--name",
        "etc-rel",
        "--network",
        "host",
        "etc-abs",
        "sh",
        "-c",
    ];
    d.docker(&[&made[..], &[script.as_str()]].concat()).ok();
    assert_contained(d, &c, "making the climbing /etc");
    for _ in 0..2 {
        let out = d.docker(&["start", "-a", "etc-rel"]);
        assert_contained(d, &c, "restarting with a climbing /etc");
        out.ok();
    }
    d.docker(&["rm", "etc-rel"]).ok();
    for image in ["etc-abs", "dev-abs", "etc-files"] {
        let out = run(
            d,
            &[],
            image,
            &["sh", "-c", "ls /dev /etc >/dev/null; echo ok > /dev/null"],
        );
        assert_contained(d, &c, image);
        out.ok();
        // With a bridge network too (hosts, resolv.conf written with an address).
        let out = d.docker(&["run", "--rm", image, "cat", "/etc/hosts"]);
        assert_contained(d, &c, image);
        assert!(out.ok().contains("localhost"), "{image}: {}", out.stdout);
    }
}

#[test]
fn etc_dev_and_bind_targets_stay_in_the_rootfs() {
    let d = TestDaemon::start();
    etc_and_dev_links(&d);
}

#[test]
fn volumes_binds_and_workdir_through_links_stay_in_the_rootfs() {
    let d = TestDaemon::start();
    let c = canary(&d);
    let abs = c.display().to_string();
    import(
        &d,
        "vol-link",
        &|_| false,
        &[Extra::Link("data", abs.clone())],
        &["VOLUME /data"],
    );
    import(
        &d,
        "links",
        &|_| false,
        &[
            Extra::Link("link", abs.clone()),
            Extra::Link("wd", abs.clone()),
        ],
        &[],
    );
    // The image's VOLUME (anonymous volume) and a named one, both seeded from `/data` and
    // mounted there: `/data` names `<canary>` inside the rootfs.
    run(&d, &[], "vol-link", &["sh", "-c", "echo x > /data/f"]).ok();
    assert_contained(&d, &c, "VOLUME /data");
    run(
        &d,
        &["-v", "vol:/data"],
        "links",
        &["sh", "-c", "echo x > /data/f"],
    )
    .ok();
    assert_contained(&d, &c, "-v vol:/data");
    let out = run(&d, &["-v", "vol:/data"], "vol-link", &["cat", "/data/f"]);
    assert_eq!(out.ok(), "x\n");
    // A bind mount under a symlinked folder.
    let host = d.dir().join("hostdir");
    std::fs::create_dir_all(&host).expect("hostdir");
    std::fs::write(host.join("in"), "from host\n").expect("in");
    let bind = format!("{}:/link/x", host.display());
    let out = run(&d, &["-v", &bind], "links", &["cat", "/link/x/in"]);
    assert_contained(&d, &c, "-v hostdir:/link/x");
    assert_eq!(out.ok(), "from host\n");
    // The working folder.
    let out = run(
        &d,
        &["-w", "/wd/sub"],
        "links",
        &["sh", "-c", "pwd; touch here"],
    );
    assert_contained(&d, &c, "-w /wd/sub");
    // `/wd` names `<canary>` inside the container (busybox's `pwd` shows the real path).
    assert_eq!(out.ok(), format!("{abs}/sub\n"));
}

/// Reads berthd's resident set size in KiB.
fn rss_kib(d: &TestDaemon) -> u64 {
    let pid = d.pid().expect("berthd pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn hostile_passwd_fails_cleanly() {
    let d = TestDaemon::start();
    d.import_busybox();
    let drop_passwd = |p: &str| p == "etc/passwd";
    import(
        &d,
        "zero",
        &drop_passwd,
        &[Extra::Link("etc/passwd", "/dev/zero".into())],
        &[],
    );
    import(&d, "fifo", &drop_passwd, &[Extra::Fifo("etc/passwd")], &[]);
    let before = rss_kib(&d);
    for image in ["zero", "fifo"] {
        let out = run(&d, &["-u", "nobody"], image, &["true"]);
        assert!(!out.success(), "{image}: {out:?}");
        assert!(
            out.stderr.contains("unable to find user nobody"),
            "{image}: {}",
            out.stderr
        );
        // A numeric user needs no passwd file.
        run(&d, &["-u", "1000"], image, &["true"]).ok();
        d.docker(&["version"]).ok();
    }
    // In a running container, /dev/zero is the real device: `exec -u` refuses it too.
    let id = d
        .docker(&["run", "-d", "--network", "none", "zero", "sleep", "300"])
        .ok()
        .trim()
        .to_string();
    let out = d.docker(&["exec", "-d", "-u", "nobody", &id, "true"]);
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains("unable to find user nobody"),
        "{}",
        out.stderr
    );
    d.docker(&["exec", &id, "true"]).ok();
    d.docker(&["rm", "-f", &id]).ok();
    let after = rss_kib(&d);
    assert!(
        after < before + 64 * 1024,
        "berthd grew from {before} to {after} KiB"
    );
    assert_eq!(d.request("GET", "/_ping", None).0, 200);
}

#[test]
fn vfs_driver_keeps_links_in_the_rootfs() {
    let d = TestDaemon::builder().storage_driver("vfs").start();
    etc_and_dev_links(&d);
}
