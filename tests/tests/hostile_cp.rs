//! Issue #15, `docker cp` against a hostile container: the CVE-2018-15664 race (a container
//! that keeps swapping the destination folder for a symlink to `/` or to a host canary
//! while files are copied in and out), copies out of symlinks that name host files, and
//! copies into a stopped container whose destination is a symlink to a host path. Each
//! attack is played for real; the host's `/` and a canary folder stay untouched and berthd
//! keeps answering.

use berth_tests::hostile::{contains, run_attacker, unique, Canary};
use berth_tests::TestDaemon;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A tar holding one regular file.
fn one_file_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, name, content).expect("append");
    b.into_inner().expect("tar")
}

/// One HTTP request with a binary body over berthd's socket: (status, body).
fn request(sock: &Path, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return (0, Vec::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body).is_err() {
        return (0, Vec::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, raw);
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < eol + 2 + n {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[(eol + 4 + n).min(b.len())..];
    }
    out
}

/// The entries of a tar: (path, link target, content).
fn entries(tar_bytes: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(tar_bytes);
    let Ok(list) = ar.entries() else {
        return out;
    };
    for e in list {
        let Ok(mut e) = e else { break };
        let path = e
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let link = e
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        let mut data = Vec::new();
        let _ = e.read_to_end(&mut data);
        out.push((path, link, data));
    }
    out
}

#[test]
fn cp_race_with_a_swapping_folder_stays_inside() {
    let d = TestDaemon::start();
    d.import_busybox();
    let canary = Canary::new("cp-race");
    let c = canary.path();
    // /w is, in turn: a real folder, a symlink to /, a folder, a symlink to the canary's
    // host path (which exists in the container too, so it resolves there).
    let script = format!(
        "mkdir -p {c}; while :; do \
           rm -rf /w.d; mkdir /w.d; rm -f /w; mv -T /w.d /w; \
           ln -sfn / /w.l; rm -rf /w; mv -T /w.l /w; \
           rm -rf /w.d; mkdir /w.d; rm -f /w; mv -T /w.d /w; \
           ln -sfn {c} /w.l; rm -rf /w; mv -T /w.l /w; \
         done"
    );
    run_attacker(&d, "racer", &script);
    // The swap really happens: /w is seen both as a folder and as a symlink.
    let (mut seen_dir, mut seen_link) = (false, false);
    for _ in 0..200 {
        let out = d.docker(&[
            "exec",
            "racer",
            "sh",
            "-c",
            "if [ -L /w ]; then echo L; elif [ -d /w ]; then echo D; fi",
        ]);
        match out.stdout.trim() {
            "L" => seen_link = true,
            "D" => seen_dir = true,
            _ => {}
        }
        if seen_dir && seen_link {
            break;
        }
    }
    assert!(
        seen_dir && seen_link,
        "the container swaps /w (dir {seen_dir}, link {seen_link})"
    );

    let name = unique("cp-in");
    let tar = one_file_tar(&name, b"written-by-docker-cp");
    let put = "/containers/racer/archive?path=/w/";
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..1000 {
        match request(d.socket(), "PUT", put, &tar).0 {
            200 => ok += 1,
            0 => panic!("berthd stopped answering:\n{}", d.log()),
            _ => failed += 1,
        }
    }
    // Some through the docker CLI.
    let src = d.dir().join(&name);
    std::fs::write(&src, "written-by-docker-cli").expect("source");
    let src_s = src.display().to_string();
    for _ in 0..20 {
        let _ = d.docker(&["cp", &src_s, "racer:/w/"]);
    }
    // Reading while it swaps: a GET of /w/ never carries a host file.
    let (mut gets, mut statuses) = (0, std::collections::BTreeMap::new());
    for _ in 0..500 {
        let (status, body) = request(d.socket(), "GET", "/containers/racer/archive?path=/w/", &[]);
        *statuses.entry(status).or_insert(0) += 1;
        if status == 200 {
            gets += 1;
            assert!(
                !contains(&body, b"host-secret-untouched"),
                "a GET of the swapping folder read the host canary"
            );
            if gets == 20 {
                break;
            }
        }
    }
    eprintln!("PUT: {ok} copied, {failed} refused; GET statuses: {statuses:?}");
    let on_host = Path::new("/").join(&name);
    let escaped = on_host.exists();
    let _ = std::fs::remove_file(&on_host);
    assert!(
        !escaped,
        "docker cp wrote {} on the host",
        on_host.display()
    );
    canary.assert_untouched();
    assert!(ok > 0, "no copy succeeded ({failed} failed)");
    assert!(gets > 0, "no GET succeeded: {statuses:?}");
    // The copies landed inside the container.
    let inside = d
        .docker(&[
            "exec",
            "racer",
            "sh",
            "-c",
            &format!("ls /{name} {c}/{name} 2>/dev/null; true"),
        ])
        .ok()
        .to_string();
    assert!(
        inside.contains(&name),
        "the copies are in the container: {inside:?}"
    );
    d.docker(&["version"]).ok();
    d.docker(&["rm", "-f", "racer"]).ok();
}

#[test]
fn cp_out_archives_symlinks_not_host_files() {
    let d = TestDaemon::start();
    d.import_busybox();
    let canary = Canary::new("cp-out");
    let c = canary.path();
    let script = format!(
        "ln -s {c}/secret /link; ln -s /etc/shadow /shadow; mkdir /dir; ln -s / /dir/up; \
         ln -s {c} /dir/canary; echo in-ctr > /dir/f; sleep 1000"
    );
    run_attacker(&d, "outc", &script);
    // Wait for the script to have made its links.
    for _ in 0..100 {
        if d.docker(&["exec", "outc", "test", "-e", "/dir/f"])
            .success()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in ["/link", "/shadow"] {
        let (status, body) = request(
            d.socket(),
            "GET",
            &format!("/containers/outc/archive?path={p}"),
            &[],
        );
        assert_eq!(status, 200, "GET {p}");
        let e = entries(&body);
        assert_eq!(e.len(), 1, "{p}: one entry, the symlink: {e:?}");
        assert!(
            e[0].2.is_empty(),
            "{p}: no content read through the symlink"
        );
        assert!(!contains(&body, b"host-secret-untouched"));
    }
    let (status, body) = request(d.socket(), "GET", "/containers/outc/archive?path=/dir", &[]);
    assert_eq!(status, 200);
    let e = entries(&body);
    let names: Vec<&str> = e.iter().map(|(p, _, _)| p.as_str()).collect();
    assert!(
        names.contains(&"dir/up") && names.contains(&"dir/canary"),
        "{names:?}"
    );
    assert!(e.len() <= 5, "the walk stayed in /dir: {names:?}");
    assert!(!contains(&body, b"host-secret-untouched"));
    // Through the docker CLI, into a host folder: the symlink is recreated, nothing read.
    let out = d.dir().join("cp-out");
    std::fs::create_dir_all(&out).expect("out");
    let o = out.display().to_string();
    d.docker(&["cp", "outc:/link", &o]).ok();
    let m = std::fs::symlink_metadata(out.join("link")).expect("copied");
    assert!(
        m.file_type().is_symlink(),
        "docker cp copied the link, not the host file"
    );
    // -L follows the link inside the container, where the canary path does not exist.
    let follow = d.docker(&["cp", "-L", "outc:/link", &format!("{o}/followed")]);
    assert!(!follow.success(), "nothing to follow inside the container");
    assert!(!out.join("followed").exists());
    canary.assert_untouched();
    d.docker(&["version"]).ok();
    d.docker(&["rm", "-f", "outc"]).ok();
}

#[test]
fn cp_into_a_stopped_container_through_a_symlink_lands_inside() {
    let d = TestDaemon::start();
    d.import_busybox();
    let canary = Canary::new("cp-stopped");
    let c = canary.path();
    let script = format!("mkdir -p {c}; ln -s {c} /w; ln -s / /up");
    d.docker(&[
        "run",
        "--name",
        "stopped",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &script,
    ])
    .ok();
    let src = d.dir().join("payload");
    std::fs::write(&src, "payload").expect("payload");
    let s = src.display().to_string();
    d.docker(&["cp", &s, "stopped:/w/"]).ok();
    d.docker(&["cp", &s, "stopped:/w/renamed"]).ok();
    d.docker(&["cp", &s, "stopped:/up/"]).ok();
    let tar = one_file_tar("api-put", b"payload");
    assert_eq!(
        request(
            d.socket(),
            "PUT",
            "/containers/stopped/archive?path=/w",
            &tar
        )
        .0,
        200
    );
    canary.assert_untouched();
    assert!(
        !Path::new("/payload").exists(),
        "docker cp wrote into the host's /"
    );
    // Everything is inside the container, where its symlinks lead there.
    let (status, body) = request(
        d.socket(),
        "GET",
        &format!("/containers/stopped/archive?path={c}"),
        &[],
    );
    assert_eq!(status, 200);
    let names: Vec<String> = entries(&body).into_iter().map(|e| e.0).collect();
    for n in ["payload", "renamed", "api-put"] {
        assert!(names.iter().any(|p| p.ends_with(n)), "{n} in {names:?}");
    }
    let (status, _) = request(
        d.socket(),
        "HEAD",
        "/containers/stopped/archive?path=/payload",
        &[],
    );
    assert_eq!(
        status, 200,
        "the copy through /up landed in the container's /"
    );
    d.docker(&["version"]).ok();
    d.docker(&["rm", "-f", "stopped"]).ok();
}

#[test]
fn cp_archive_mode_reads_the_user_database_inside_the_container() {
    let d = TestDaemon::start();
    d.import_busybox();
    // The container's /etc/passwd names a host device: `docker cp -a` must not read it
    // through a host path (an endless /dev/zero would take berthd's memory).
    d.docker(&[
        "run",
        "-d",
        "--name",
        "zero",
        "-u",
        "nobody",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "sleep 1000",
    ])
    .ok();
    d.docker(&[
        "exec",
        "-u",
        "root",
        "zero",
        "sh",
        "-c",
        "rm /etc/passwd; ln -s /dev/zero /etc/passwd",
    ])
    .ok();
    let src = d.dir().join("a.txt");
    std::fs::write(&src, "a").expect("source");
    let out = d.docker(&["cp", "-a", &src.display().to_string(), "zero:/tmp/"]);
    assert!(!out.success(), "no user database to resolve nobody with");
    assert!(out.stderr.contains("nobody"), "{}", out.stderr);
    d.docker(&["version"]).ok();
    d.docker(&["rm", "-f", "zero"]).ok();
}
