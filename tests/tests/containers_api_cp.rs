//! `docker cp` / `berth cp` / docker-py archives against berthd (issue 4): both directions on
//! running and stopped containers, renames, folders, `-` tar streams, `-a`, `-L`, writes
//! into a named volume, Docker's 404 text, and symlinks that cannot leave the container.

use berth_tests::TestDaemon;
use std::path::Path;
use std::process::Stdio;

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, s).expect("write");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn cp_both_directions() {
    let d = TestDaemon::start();
    d.import_busybox();
    let host = d.dir().join("cp-host");
    write(&host.join("f.txt"), "hello");
    write(&host.join("dir/a"), "A");
    write(&host.join("dir/sub/b"), "B");
    let out = d.dir().join("cp-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let (h, o) = (host.display().to_string(), out.display().to_string());
    d.docker(&[
        "run",
        "-d",
        "--name",
        "cc",
        "-v",
        "cpvol:/data",
        "busybox",
        "sh",
        "-c",
        "ln -s /etc /lnk; ln -s ../../../../../../../.. /tmp/up; mkdir /tmp/isdir; sleep 1000",
    ])
    .ok();
    // Into a folder, under a new name, a whole folder, into a volume.
    d.docker(&["cp", &format!("{h}/f.txt"), "cc:/tmp/"]).ok();
    d.docker(&["cp", &format!("{h}/f.txt"), "cc:/tmp/renamed.txt"])
        .ok();
    d.docker(&["cp", &format!("{h}/dir"), "cc:/tmp/"]).ok();
    d.docker(&["cp", &format!("{h}/dir"), "cc:/tmp/newdir"])
        .ok();
    d.docker(&["cp", &format!("{h}/f.txt"), "cc:/data/"]).ok();
    let seen = d
        .docker(&["exec", "cc", "sh", "-c", "cat /tmp/f.txt /tmp/renamed.txt /tmp/dir/a /tmp/dir/sub/b /tmp/newdir/sub/b /data/f.txt"])
        .ok()
        .to_string();
    assert_eq!(seen, "hellohelloABBhello");
    let mp = d
        .docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", "cpvol"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(
        read(&Path::new(&mp).join("f.txt")),
        "hello",
        "landed in the volume"
    );
    // Out: a file, through a symlinked folder, a folder under a new name.
    d.docker(&["cp", "cc:/tmp/renamed.txt", &o]).ok();
    assert_eq!(read(&out.join("renamed.txt")), "hello");
    d.docker(&["cp", "cc:/lnk/passwd", &format!("{o}/hn")]).ok();
    assert!(!read(&out.join("hn")).trim().is_empty());
    d.docker(&["cp", "cc:/tmp/dir", &format!("{o}/got")]).ok();
    assert_eq!(read(&out.join("got/sub/b")), "B");
    // -L copies the link's target; without it the link itself.
    d.docker(&["cp", "-L", "cc:/lnk", &format!("{o}/etc-copy")])
        .ok();
    assert!(out.join("etc-copy/passwd").is_file());
    d.docker(&["cp", "cc:/lnk", &format!("{o}/lnk")]).ok();
    assert_eq!(
        std::fs::read_link(out.join("lnk")).ok(),
        Some("/etc".into())
    );
    // A missing path: Docker's 404 text.
    let missing = d.docker(&["cp", "cc:/nope", &o]);
    assert_ne!(missing.status, 0);
    assert!(
        missing
            .stderr
            .contains("Could not find the file /nope in container cc"),
        "{}",
        missing.stderr
    );
    // A directory may not replace a file.
    d.docker(&["exec", "cc", "sh", "-c", "echo x > /tmp/dir2"])
        .ok();
    std::fs::create_dir_all(host.join("dir2")).expect("mkdir");
    let clash = d.docker(&["cp", &format!("{h}/dir2"), "cc:/tmp/"]);
    assert!(clash.stderr.contains("cannot overwrite"), "{clash:?}");
    // Symlinks resolve inside the container: /tmp/up/<host path> is not the host's file.
    write(&d.dir().join("host-secret"), "HOST");
    let secret = format!("cc:/tmp/up{}", d.dir().join("host-secret").display());
    let esc = d.docker(&["cp", &secret, &o]);
    assert!(esc.stderr.contains("Could not find the file"), "{esc:?}");
    assert!(!out.join("host-secret").exists());
    let into = format!("cc:/tmp/up{}/", d.dir().display());
    let esc_in = d.docker(&["cp", &format!("{h}/f.txt"), &into]);
    assert_ne!(esc_in.status, 0, "{esc_in:?}");
    assert!(
        !d.dir().join("f.txt").exists(),
        "nothing written on the host"
    );
    // Tar streams with `-`.
    let tar = d
        .docker_cmd(&["cp", "cc:/tmp/f.txt", "-"])
        .stdout(Stdio::piped())
        .output()
        .expect("docker cp -");
    assert!(tar.status.success());
    let mut ar = tar::Archive::new(tar.stdout.as_slice());
    let names: Vec<String> = ar
        .entries()
        .expect("tar")
        .filter_map(|e| e.ok()?.path().ok().map(|p| p.display().to_string()))
        .collect();
    assert_eq!(names, ["f.txt"]);
    let mut b = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_size(3);
    hd.set_mode(0o644);
    hd.set_cksum();
    b.append_data(&mut hd, "streamed.txt", &b"abc"[..])
        .expect("tar");
    let data = b.into_inner().expect("tar");
    d.docker_stdin(&["cp", "-", "cc:/tmp"], &data).ok();
    assert_eq!(
        d.docker(&["exec", "cc", "cat", "/tmp/streamed.txt"]).ok(),
        "abc"
    );
    // A stopped container, both ways.
    d.docker(&["stop", "-t", "0", "cc"]).ok();
    d.docker(&["cp", "cc:/tmp/f.txt", &format!("{o}/stopped.txt")])
        .ok();
    assert_eq!(read(&out.join("stopped.txt")), "hello");
    d.docker(&["cp", &format!("{h}/f.txt"), "cc:/tmp/while-stopped"])
        .ok();
    d.docker(&["cp", &format!("{h}/dir/a"), "cc:/data/a"]).ok();
    assert_eq!(
        read(&Path::new(&mp).join("a")),
        "A",
        "volume of a stopped container"
    );
    d.docker(&["start", "cc"]).ok();
    assert_eq!(
        d.docker(&["exec", "cc", "cat", "/tmp/while-stopped"]).ok(),
        "hello"
    );
    d.docker(&["rm", "-f", "cc"]).ok();
}

#[test]
fn cp_archive_owner_python_and_berth() {
    let d = TestDaemon::start();
    d.import_busybox();
    let host = d.dir().join("cp-host");
    write(&host.join("f.txt"), "hello");
    let h = host.display().to_string();
    d.docker(&[
        "run", "-d", "--name", "cu", "-u", "nobody", "busybox", "sleep", "1000",
    ])
    .ok();
    // -a: owned by the container's user; otherwise the archive's owner (root here).
    d.docker(&["cp", "-a", &format!("{h}/f.txt"), "cu:/tmp/a.txt"])
        .ok();
    d.docker(&["cp", &format!("{h}/f.txt"), "cu:/tmp/plain.txt"])
        .ok();
    let owners = d
        .docker(&[
            "exec",
            "cu",
            "stat",
            "-c",
            "%u:%g",
            "/tmp/a.txt",
            "/tmp/plain.txt",
        ])
        .ok()
        .to_string();
    assert_eq!(owners, "65534:65534\n0:0\n");
    // docker-py: get_archive (with its stat) and put_archive.
    let py = d.python(
        "import io, tarfile\nct = c.containers.get('cu')\nbits, st = ct.get_archive('/tmp/plain.txt')\nraw = b''.join(bits)\nt = tarfile.open(fileobj=io.BytesIO(raw))\nprint(st['name'], st['size'], t.getnames(), t.extractfile('plain.txt').read().decode())\nbuf = io.BytesIO()\nw = tarfile.open(fileobj=buf, mode='w')\ni = tarfile.TarInfo('py.txt'); i.size = 2\nw.addfile(i, io.BytesIO(b'py')); w.close()\nprint(ct.put_archive('/tmp', buf.getvalue()))",
    );
    assert_eq!(py.ok().trim(), "plain.txt 5 ['plain.txt'] hello\nTrue");
    assert_eq!(d.docker(&["exec", "cu", "cat", "/tmp/py.txt"]).ok(), "py");
    // berth cp: both directions.
    let out = d.dir().join("berth-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    d.berth(&["cp", &format!("{h}/f.txt"), "cu:/tmp/berth.txt"])
        .ok();
    d.berth(&["cp", "cu:/tmp/berth.txt", &out.display().to_string()])
        .ok();
    assert_eq!(read(&out.join("berth.txt")), "hello");
    let missing = d.berth(&["cp", "cu:/nope", &out.display().to_string()]);
    assert!(
        missing
            .stderr
            .contains("Could not find the file /nope in container cu"),
        "{missing:?}"
    );
    d.docker(&["rm", "-f", "cu"]).ok();
}
