//! A container flooding its log (issue #15): with `--log-opt max-size=1m --log-opt
//! max-file=2` a container writing 100 MB to stdout leaves at most two files of about 1 MiB
//! (`<id>-json.log` and `.1`, as Docker's json-file driver) and `docker logs` still reads
//! them; daemon.json's `log-opts` bound the logs of containers that give none; bad log
//! drivers and options are refused at create with Docker's texts; berthd still answers.

use berth_tests::TestDaemon;
use serde_json::json;
use std::path::PathBuf;

/// The log files of container `id` and their sizes.
fn log_files(d: &TestDaemon, id: &str) -> Vec<(String, u64)> {
    let dir: PathBuf = d.data_root().join("containers").join(id);
    let mut out: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .expect("container dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                e.metadata().map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn json_file_logs_rotate_and_stay_bounded() {
    let d = TestDaemon::builder()
        .config_json(json!({"log-opts": {"max-size": "64k", "max-file": "3"}}))
        .start();
    d.import_busybox();
    let line = "x".repeat(199);
    let flood = format!("yes {line} | head -c 100000000; echo; echo the-end");
    let id = d
        .docker(&[
            "run",
            "-d",
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "max-file=2",
            "busybox",
            "sh",
            "-c",
            &flood,
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(d.docker(&["wait", &id]).ok().trim(), "0");
    let files = log_files(&d, &id);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [format!("{id}-json.log"), format!("{id}-json.log.1")],
        "{files:?}"
    );
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    assert!(
        total <= 2 * (1 << 20) + 4096,
        "{total} bytes of logs: {files:?}"
    );
    // docker logs reads what is on disk, rotated file included.
    let tail = d.docker(&["logs", "--tail", "2", &id]);
    let tail = tail.ok();
    assert!(tail.ends_with("\nthe-end\n"), "{tail:?}");
    assert_eq!(tail.lines().count(), 2, "{tail:?}");
    let all = d.docker(&["logs", &id]);
    let lines = all.ok().lines().count();
    assert!(lines > 1 << 20 >> 8, "both files read: {lines} lines");
    assert!(lines < (2 << 20) / 200, "{lines} lines");
    assert!(d
        .docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", &id])
        .ok()
        .contains(r#""max-size":"1m""#));

    // daemon.json's log-opts are the default of a container that gives none.
    let id2 = d
        .docker(&[
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            &format!("yes {line} | head -c 2000000"),
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(d.docker(&["wait", &id2]).ok().trim(), "0");
    let lc = d.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", &id2]);
    let lc: serde_json::Value = serde_json::from_str(lc.ok().trim()).expect("LogConfig");
    assert_eq!(
        lc,
        json!({"Type": "json-file", "Config": {"max-size": "64k", "max-file": "3"}})
    );
    let files = log_files(&d, &id2);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files.iter().all(|(_, s)| *s <= (64 << 10) + 1024),
        "{files:?}"
    );

    // Refused at create, with Docker's texts.
    for (args, want) in [
        (vec!["--log-opt", "max-size=abc"], "invalid size: 'abc'"),
        (
            vec!["--log-opt", "max-file=0"],
            "max-file cannot be less than 1",
        ),
        (
            vec!["--log-opt", "foo=bar"],
            "unknown log opt 'foo' for json-file log driver",
        ),
        (
            vec!["--log-driver", "syslog"],
            "error looking up logging plugin syslog: plugin \"syslog\" not found",
        ),
    ] {
        let mut a = vec!["create"];
        a.extend(args);
        a.extend(["busybox", "true"]);
        let out = d.docker(&a);
        assert_ne!(out.status, 0, "{a:?}: {out:?}");
        assert!(out.stderr.contains(want), "{a:?}: {out:?}");
    }
    // --log-driver none keeps no log at all.
    let id3 = d
        .docker(&["run", "-d", "--log-driver", "none", "busybox", "echo", "hi"])
        .ok()
        .trim()
        .to_string();
    d.docker(&["wait", &id3]).ok();
    assert!(log_files(&d, &id3).is_empty());
    let out = d.docker(&["logs", &id3]);
    assert!(
        out.stderr
            .contains("configured logging driver does not support reading"),
        "{out:?}"
    );
    d.docker(&["version"]).ok();
}

#[test]
fn bad_log_opts_in_daemon_json_stop_berthd_at_start() {
    let d = TestDaemon::builder()
        .config_json(json!({"log-opts": {"max-size": "abc"}}))
        .prepare();
    let mut child = d
        .berthd_command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn berthd");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    let status = status.expect("berthd must refuse to start");
    assert!(!status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid size: 'abc'"), "{err}");
}

#[test]
fn logs_follow_across_rotations() {
    let d = TestDaemon::start();
    d.import_busybox();
    let id = d
        .docker(&[
            "create",
            "--log-opt",
            "max-size=8k",
            "--log-opt",
            "max-file=50",
            "busybox",
            "sh",
            "-c",
            "sleep 1; i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done",
        ])
        .ok()
        .trim()
        .to_string();
    // The container waits a second before it writes: the follower is there by then.
    d.docker(&["start", &id]).ok();
    let out = d.docker(&["logs", "-f", &id]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(
        lines.len(),
        3000,
        "every line, in order, across the rotations"
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line-{i}"));
    }
    let files = log_files(&d, &id);
    assert!(files.len() > 5, "it rotated: {files:?}");
}
