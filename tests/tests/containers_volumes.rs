//! Volumes and mounts through the stock docker CLI (issue 4): bind mounts (`-v` and
//! `--mount`, read-only enforced), named volumes (`volume create/ls/inspect/rm/prune`, created
//! on first use and seeded from the image), anonymous volumes from an image's `VOLUME`
//! (removed by `rm -v` and `--rm`, kept by a plain `rm`), `--tmpfs` and `--mount type=tmpfs`,
//! `--volumes-from` (also `:ro`), and Docker's error for removing a volume in use.

use berth_tests::TestDaemon;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// `docker run --rm --network none [args...] busybox sh -c script`.
fn sh(d: &TestDaemon, args: &[&str], script: &str) -> berth_tests::Output {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    all.extend(["busybox", "sh", "-c", script]);
    d.docker(&all)
}

/// `docker inspect -f <fmt> <name>`, trimmed.
fn inspect(d: &TestDaemon, fmt: &str, name: &str) -> String {
    d.docker(&["inspect", "-f", fmt, name])
        .ok()
        .trim()
        .to_string()
}

fn volume_names(d: &TestDaemon) -> Vec<String> {
    d.docker(&["volume", "ls", "-q"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    let d = daemon();
    let host = d.dir().join("hostdir");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("in"), "from host\n").expect("write");
    let h = host.display().to_string();
    let out = sh(
        &d,
        &["-v", &format!("{h}:/data")],
        "cat /data/in; echo from ctr > /data/out",
    );
    assert_eq!(out.ok(), "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap_or_default(),
        "from ctr\n"
    );
    // `:ro` and `--mount ...,readonly`: readable, not writable.
    for flag in [
        format!("-v={h}:/data:ro"),
        format!("--mount=type=bind,source={h},target=/data,readonly"),
    ] {
        let out = sh(&d, &[&flag], "cat /data/in; touch /data/new");
        assert_ne!(out.status, 0, "{flag}: {out:?}");
        assert_eq!(out.stdout, "from host\n", "{flag}");
        assert!(
            out.stderr.contains("Read-only file system"),
            "{flag}: {}",
            out.stderr
        );
        assert!(!host.join("new").exists(), "{flag}");
    }
    // inspect's Mounts, as Docker shows a read-only bind.
    d.docker(&[
        "create",
        "--name",
        "bnd",
        "-v",
        &format!("{h}:/data:ro"),
        "busybox",
    ])
    .ok();
    assert_eq!(
        inspect(
            &d,
            "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}}{{end}}",
            "bnd"
        ),
        format!("bind {h} /data false")
    );
    // A missing source with --mount is refused as Docker does; with -v it is created.
    let missing = d.dir().join("nope").display().to_string();
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={missing},target=/x"),
        "busybox",
        "true",
    ]);
    assert_eq!(out.status, 125, "{out:?}");
    assert!(
        out.stderr
            .contains("invalid mount config for type \"bind\": bind source path does not exist"),
        "{}",
        out.stderr
    );
    sh(&d, &["-v", &format!("{missing}:/x")], "true").ok();
    assert!(std::path::Path::new(&missing).is_dir());
}

#[test]
fn named_volumes_commands_first_use_and_seeding() {
    let d = daemon();
    assert_eq!(d.docker(&["volume", "create", "v1"]).ok(), "v1\n");
    assert_eq!(volume_names(&d), ["v1"]);
    let info = d
        .docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Mountpoint}}",
            "v1",
        ])
        .ok()
        .trim()
        .to_string();
    let mountpoint = d.data_root().join("volumes/v1/_data");
    assert_eq!(info, format!("v1 local local {}", mountpoint.display()));
    // Data outlives the container that wrote it.
    sh(&d, &["-v", "v1:/data"], "echo kept > /data/f").ok();
    assert_eq!(sh(&d, &["-v", "v1:/data"], "cat /data/f").ok(), "kept\n");
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("f")).unwrap_or_default(),
        "kept\n"
    );
    // Created on first use and seeded from the image's content at that path (-v and --mount).
    let out = sh(&d, &["-v", "seeded:/etc"], "cat /etc/group");
    assert!(out.ok().starts_with("root:x:0:"), "{}", out.stdout);
    let out = sh(
        &d,
        &["--mount", "type=volume,source=seeded2,target=/etc"],
        "ls /etc",
    );
    assert!(out.ok().contains("passwd"), "{}", out.stdout);
    let names = volume_names(&d);
    assert!(
        names.contains(&"seeded".to_string()) && names.contains(&"seeded2".to_string()),
        "{names:?}"
    );
    assert!(d.data_root().join("volumes/seeded/_data/passwd").exists());
    // A volume with content is not seeded again: what the container wrote stays.
    sh(&d, &["-v", "seeded:/etc"], "echo mine > /etc/group").ok();
    assert_eq!(
        sh(&d, &["-v", "seeded:/etc"], "cat /etc/group").ok(),
        "mine\n"
    );
    // `--mount ...,readonly` on a volume.
    let ro = sh(
        &d,
        &["--mount", "type=volume,source=v1,target=/data,readonly"],
        "touch /data/x",
    );
    assert_ne!(ro.status, 0);
    assert!(ro.stderr.contains("Read-only file system"), "{ro:?}");

    // Removing a volume in use (even by a stopped container) is refused with Docker's error.
    let id = d
        .docker(&["create", "--name", "user", "-v", "v1:/data", "busybox"])
        .ok()
        .trim()
        .to_string();
    let rm = d.docker(&["volume", "rm", "v1"]);
    assert_eq!(rm.status, 1);
    assert_eq!(
        rm.stderr.trim(),
        format!("Error response from daemon: remove v1: volume is in use - [{id}]")
    );
    d.docker(&["rm", "user"]).ok();
    assert_eq!(d.docker(&["volume", "rm", "v1"]).ok(), "v1\n");
    let gone = d.docker(&["volume", "inspect", "v1"]);
    assert_eq!(gone.status, 1);
    assert!(gone.stderr.contains("no such volume"), "{}", gone.stderr);
    assert!(!mountpoint.exists());

    // prune: anonymous volumes by default (API >= 1.42), named ones too with --all.
    d.docker(&["run", "--name", "an", "-v", "/anon", "busybox", "true"])
        .ok();
    let anon = inspect(&d, "{{range .Mounts}}{{.Name}}{{end}}", "an");
    assert_eq!(anon.len(), 64, "{anon}");
    d.docker(&["rm", "an"]).ok();
    assert!(volume_names(&d).contains(&anon), "plain rm keeps it");
    let pruned = d.docker(&["volume", "prune", "-f"]).ok().to_string();
    assert!(pruned.contains(&anon), "{pruned}");
    let names = volume_names(&d);
    assert!(!names.contains(&anon) && names.contains(&"seeded".to_string()));
    d.docker(&["volume", "prune", "-af"]).ok();
    assert!(volume_names(&d).is_empty());
}

#[test]
fn anonymous_volumes_from_the_image() {
    let d = daemon();
    // An image with `VOLUME /data` whose /data holds a file, by commit.
    d.docker(&[
        "run",
        "--name",
        "base",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo seed > /data/s",
    ])
    .ok();
    d.docker(&["commit", "-c", "VOLUME /data", "base", "withvol"])
        .ok();
    d.docker(&["rm", "base"]).ok();
    assert_eq!(
        inspect(&d, "{{json .Config.Volumes}}", "withvol"),
        r#"{"/data":{}}"#
    );
    // Each container gets its own anonymous volume, seeded from the image.
    d.docker(&["run", "-d", "--name", "a1", "withvol", "sleep", "300"])
        .ok();
    let m = inspect(
        &d,
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
        "a1",
    );
    let parts: Vec<&str> = m.split(' ').collect();
    assert_eq!(parts.len(), 4, "{m}");
    assert_eq!((parts[0], parts[2], parts[3]), ("volume", "/data", "true"));
    let v1 = parts[1].to_string();
    assert_eq!(v1.len(), 64, "{m}");
    assert_eq!(d.docker(&["exec", "a1", "cat", "/data/s"]).ok(), "seed\n");
    let labels = d
        .docker(&["volume", "inspect", "-f", "{{json .Labels}}", &v1])
        .ok()
        .to_string();
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");
    // rm -v removes it.
    d.docker(&["rm", "-f", "-v", "a1"]).ok();
    assert!(!volume_names(&d).contains(&v1));
    // --rm removes it too; a plain rm keeps it.
    d.docker(&["run", "--rm", "withvol", "true"]).ok();
    assert!(volume_names(&d).is_empty(), "{:?}", volume_names(&d));
    d.docker(&["run", "--name", "a2", "withvol", "true"]).ok();
    let v2 = inspect(&d, "{{range .Mounts}}{{.Name}}{{end}}", "a2");
    d.docker(&["rm", "a2"]).ok();
    assert_eq!(volume_names(&d), [v2]);
    // A named volume at the image's VOLUME path replaces the anonymous one.
    sh(&d, &["-v", "over:/data"], "true").ok();
    let names = volume_names(&d);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"over".to_string()));
}

#[test]
fn tmpfs_mounts() {
    let d = daemon();
    let out = sh(
        &d,
        &[
            "--tmpfs",
            "/t1:size=1m,mode=1777",
            "--mount",
            "type=tmpfs,target=/t2,tmpfs-size=2097152",
        ],
        "grep -E ' /t[12] ' /proc/mounts; echo x > /t1/f && cat /t1/f; stat -c %a /t1",
    );
    let text = out.ok();
    let t1 = text
        .lines()
        .find(|l| l.contains(" /t1 "))
        .unwrap_or_default();
    let t2 = text
        .lines()
        .find(|l| l.contains(" /t2 "))
        .unwrap_or_default();
    assert!(
        t1.starts_with("tmpfs /t1 tmpfs rw") && t1.contains("size=1024k"),
        "{text}"
    );
    assert!(
        t2.starts_with("tmpfs /t2 tmpfs rw") && t2.contains("size=2048k"),
        "{text}"
    );
    assert!(text.ends_with("x\n1777\n"), "{text}");
    // Nothing of a tmpfs reaches a volume list.
    assert!(volume_names(&d).is_empty());
}

#[test]
fn volumes_from_another_container() {
    let d = daemon();
    d.docker(&[
        "run",
        "--name",
        "src",
        "--network",
        "none",
        "-v",
        "shared:/s",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo hi > /s/f; echo there > /anon/g",
    ])
    .ok();
    assert_eq!(
        sh(&d, &["--volumes-from", "src"], "cat /s/f /anon/g").ok(),
        "hi\nthere\n"
    );
    // `:ro` makes every inherited mount read-only.
    let ro = sh(&d, &["--volumes-from", "src:ro"], "cat /s/f; touch /s/x");
    assert_ne!(ro.status, 0);
    assert_eq!(ro.stdout, "hi\n");
    assert!(ro.stderr.contains("Read-only file system"), "{ro:?}");
    // An unknown container is an error (125).
    let bad = sh(&d, &["--volumes-from", "nosuch"], "true");
    assert_eq!(bad.status, 125, "{bad:?}");
    assert!(bad.stderr.contains("nosuch"), "{}", bad.stderr);
    d.docker(&["rm", "-v", "src"]).ok();
    assert_eq!(volume_names(&d), ["shared"], "rm -v spares named volumes");
}
