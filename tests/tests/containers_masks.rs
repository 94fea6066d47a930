//! Masked folders (`/proc/acpi`, `/sys/firmware`) and, with cgroup v1, the tmpfs at
//! `/sys/fs/cgroup` come from read-only mounts that the containers made in berthd's template
//! namespace share (`runtime/src/shared_mounts.rs`): in every container each masked folder is
//! still an empty read-only tmpfs nobody can write to; a container that cannot share them (a
//! host folder bound with `-v`, `CAP_SYS_ADMIN`) has its own; what a container with
//! `CAP_SYS_ADMIN` writes into its own never shows in another; the host's namespace never
//! holds the shared mounts, and removing the containers leaves no mount behind. The template
//! is also staged (`core/src/stage.rs`): a `chroot` escape ends in the container's own `/`.

use berth_tests::TestDaemon;
use std::collections::BTreeMap;

/// Docker's masked folders that are folders on this host (the container's `/proc` and `/sys`
/// show the host's).
fn masked_folders() -> Vec<&'static str> {
    ["/proc/asound", "/proc/acpi", "/proc/scsi", "/sys/firmware"]
        .into_iter()
        .filter(|p| std::path::Path::new(p).is_dir())
        .collect()
}

/// Prints, for each folder: its entries, whether a file and a folder can be made in it, and
/// its mountinfo line.
const PROBE: &str = r#"
for d in "$@"; do
  echo "$d entries: $(ls -A "$d" | wc -l)"
  touch "$d/x" 2>/dev/null && echo "$d write: ok" || echo "$d write: denied"
  mkdir "$d/y" 2>/dev/null && echo "$d mkdir: ok" || echo "$d mkdir: denied"
  echo "$d mount: $(awk -v p="$d" '$5 == p' /proc/self/mountinfo)"
done
"#;

/// One mount as a container sees it.
#[derive(Debug)]
struct Seen {
    entries: String,
    write: String,
    mkdir: String,
    /// `major:minor` of its file system.
    dev: String,
    /// Per-mount options.
    opts: String,
    /// File system type.
    fstype: String,
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key:?} in {out}"))
}

/// Runs the probe over `dirs` in container `name` (`extra`: more `run` arguments).
fn probe(d: &TestDaemon, name: &str, extra: &[&str], dirs: &[&str]) -> BTreeMap<String, Seen> {
    let mut args = vec!["run", "--rm", "--network", "none", "--name", name];
    args.extend(extra);
    args.extend(["busybox", "sh", "-c", PROBE, "probe"]);
    args.extend(dirs);
    let out = d.docker(&args).ok().to_string();
    dirs.iter()
        .map(|dir| {
            let line = field(&out, &format!("{dir} mount:")).to_string();
            let f: Vec<&str> = line.split(' ').collect();
            let after = line.split(" - ").nth(1).unwrap_or("");
            let seen = Seen {
                entries: field(&out, &format!("{dir} entries:")).to_string(),
                write: field(&out, &format!("{dir} write:")).to_string(),
                mkdir: field(&out, &format!("{dir} mkdir:")).to_string(),
                dev: f.get(2).unwrap_or(&"").to_string(),
                opts: f.get(5).unwrap_or(&"").to_string(),
                fstype: after.split(' ').next().unwrap_or("").to_string(),
            };
            (dir.to_string(), seen)
        })
        .collect()
}

/// Every masked folder empty, read-only, a tmpfs that cannot be written; their devices.
#[track_caller]
fn assert_masked(who: &str, seen: &BTreeMap<String, Seen>, masks: &[&str]) -> Vec<String> {
    masks
        .iter()
        .map(|m| {
            let s = &seen[*m];
            assert_eq!(s.entries, "0", "{who}: {m} empty: {s:?}");
            assert_eq!(s.write, "denied", "{who}: {m} not writable: {s:?}");
            assert_eq!(s.mkdir, "denied", "{who}: {m} not writable: {s:?}");
            assert_eq!(s.fstype, "tmpfs", "{who}: {m} a tmpfs: {s:?}");
            assert!(s.opts.split(',').any(|o| o == "ro"), "{who}: {m} ro: {s:?}");
            s.dev.clone()
        })
        .collect()
}

#[test]
fn masked_folders_stay_empty_and_read_only_whoever_shares_them() {
    let masks = masked_folders();
    assert!(!masks.is_empty(), "no masked folder on this host");
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mut dirs = masks.clone();
    if v1 {
        dirs.push("/sys/fs/cgroup");
    }
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    // A container running meanwhile: the shared mounts are in use.
    let keep = d.sleeper("keep");

    let a = probe(&d, "ma", &[], &dirs);
    let b = probe(&d, "mb", &[], &dirs);
    let (dev_a, dev_b) = (
        assert_masked("a", &a, &masks),
        assert_masked("b", &b, &masks),
    );
    // One empty tmpfs masks every folder of every container made in the template.
    assert!(dev_a.iter().all(|x| *x == dev_a[0]), "{a:?}");
    assert_eq!(dev_a, dev_b, "shared by containers: {a:?} {b:?}");
    if v1 {
        let (ca, cb) = (&a["/sys/fs/cgroup"], &b["/sys/fs/cgroup"]);
        assert_eq!(ca.fstype, "tmpfs", "{ca:?}");
        assert!(ca.opts.split(',').any(|o| o == "ro"), "{ca:?}");
        assert_eq!(ca.write, "denied", "{ca:?}");
        assert_eq!(ca.dev, cb.dev, "the v1 cgroup tmpfs shared: {ca:?} {cb:?}");
    }

    // A host folder bound with -v: made in berthd's own namespace, with a tmpfs of its own.
    let host_dir = tempfile::tempdir().expect("tempdir");
    let bind = format!("{}:/h", host_dir.path().display());
    let c = probe(&d, "mc", &["-v", &bind], &dirs);
    let dev_c = assert_masked("c", &c, &masks);
    assert!(dev_c.iter().all(|x| *x == dev_c[0]), "{c:?}");
    assert_ne!(dev_c[0], dev_a[0], "-v: its own tmpfs: {c:?}");

    // CAP_SYS_ADMIN could remount a shared mount writable: such a container has its own,
    // and what it writes there stays there.
    let admin = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "sh",
        "-c",
        &format!(
            "for m in {}; do mount -o remount,rw $m && touch $m/planted && echo planted; done",
            masks.join(" ")
        ),
    ]);
    assert_eq!(
        admin.ok().lines().count(),
        masks.len(),
        "its own masks are its to remount: {admin:?}"
    );
    let e = probe(&d, "me", &[], &dirs);
    assert_eq!(assert_masked("e", &e, &masks), dev_a, "{e:?}");

    // berthd's and the host's namespace never hold them: only the running container's rootfs.
    let mounts = d.host_mounts();
    assert!(
        mounts
            .iter()
            .all(|m| m.to_string_lossy().contains(&keep[..12])),
        "{mounts:?}"
    );
    d.docker(&["rm", "-f", &keep]).ok();
    let t = std::time::Instant::now();
    while !d.host_mounts().is_empty() && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(d.host_mounts().is_empty(), "{:?}", d.host_mounts());
}

/// A process in the container's mount namespace, run on a thread of the test (filesystem
/// information of its own) as root, so that it can do all a container's process with
/// `CAP_SYS_CHROOT` (Docker's default set keeps it) can: the entries of its `/`, and those of
/// the `/` it ends in after the classic escape — `chroot` into a subfolder, `..` until nothing
/// changes, `chroot` there.
fn escape(pid: &str) -> (Vec<String>, Vec<String>) {
    use std::os::fd::AsRawFd;
    let ns = format!("/proc/{pid}/ns/mnt");
    std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_FS) affects this thread only; setns into a mount namespace
        // needs filesystem information of its own.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_FS) }, 0, "unshare");
        let f = std::fs::File::open(&ns).expect("the container's mount namespace");
        // SAFETY: setns on an open namespace descriptor, for this thread only.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNS) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let list = || {
            let mut v: Vec<String> = std::fs::read_dir("/")
                .expect("read /")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let inside = list();
        std::fs::create_dir("/escape-probe").expect("mkdir");
        std::os::unix::fs::chroot("/escape-probe").expect("chroot");
        for _ in 0..64 {
            std::env::set_current_dir("..").expect("cd ..");
        }
        std::os::unix::fs::chroot(".").expect("chroot .");
        (inside, list())
    })
    .join()
    .expect("escape thread")
}

/// The container's rootfs becomes its `/` by moving mounts in a copy of berthd's *staged*
/// template (`core/src/stage.rs`), not by `pivot_root`; runc, given the host's tree on the
/// stage, still uses its own `pivot_root`. Either way a `chroot` escape ends in the container's
/// own `/`, never in the host's tree or the stage beneath it, and an `exec` starts there.
#[test]
fn a_chroot_escape_ends_in_the_containers_own_root() {
    let d = TestDaemon::builder().storage_driver("overlay2").start();
    d.import_busybox();
    let mut runtimes = vec!["native"];
    if std::path::Path::new("/usr/sbin/runc").exists() {
        runtimes.push("runc");
    } else {
        eprintln!("/usr/sbin/runc not installed (apt-get install runc): runc skipped");
    }
    for rt in runtimes {
        let name = format!("esc-{rt}");
        let id = d
            .docker(&[
                "run",
                "-d",
                "--runtime",
                rt,
                "--name",
                &name,
                "--network",
                "none",
                "busybox",
                "sleep",
                "300",
            ])
            .ok()
            .trim()
            .to_string();
        let pid = d.container_pid(&id);
        let (inside, escaped) = escape(&pid);
        assert!(inside.iter().any(|e| e == "bin"), "{rt}: {inside:?}");
        let mut expected = inside.clone();
        expected.push("escape-probe".into());
        expected.sort();
        assert_eq!(escaped, expected, "{rt}: escaped to another root");
        // The container's own view: the same, and no mount of the host's.
        let seen = d
            .docker(&["exec", &id, "sh", "-c", "ls / ; cat /proc/self/mountinfo"])
            .ok()
            .to_string();
        assert!(seen.contains("escape-probe"), "{rt}: {seen}");
        assert!(!seen.contains(" /host "), "{rt}: {seen}");
        d.docker(&["rm", "-f", &id]).ok();
    }
    // This host supports the staged template: berthd did not fall back to pivot_root.
    assert!(!d.log().contains("switched with pivot_root"), "{}", d.log());
}
