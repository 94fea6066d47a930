//! `docker stats` and docker-py `stats` against berthd (issue 4): real figures from the
//! container's cgroup (memory usage and limit, CPU %, PIDs, network and block I/O), one-shot
//! and streaming; `docker ps --filter` as Docker filters.

use berth_tests::TestDaemon;
use serde_json::Value;

#[test]
fn stats_show_real_figures() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "st",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/tmp/fill bs=1M count=8 2>/dev/null; while true; do :; done",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = d
        .docker(&["stats", "--no-stream", "--format", "{{json .}}"])
        .ok()
        .to_string();
    let v: Value = serde_json::from_str(out.lines().next().unwrap_or("")).expect("json line");
    assert_eq!(v["Name"], "st");
    assert!(
        v["MemUsage"].as_str().unwrap_or("").ends_with("/ 64MiB"),
        "{v}"
    );
    let cpu: f64 = v["CPUPerc"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches('%')
        .parse()
        .unwrap_or(0.0);
    assert!(cpu > 10.0, "a busy loop shows CPU: {v}");
    assert_eq!(v["PIDs"], "1", "{v}");
    assert!(v["NetIO"].as_str().unwrap_or("").contains(" / "), "{v}");
    let bio = v["BlockIO"].as_str().unwrap_or("");
    // This VM's kernel accounts no block I/O in any blkio cgroup (all `Total 0`), so only the
    // shape can be checked here.
    assert!(bio.contains(" / "), "{v}");
    let py = d.python(
        "s = c.containers.get('st').stats(stream=False)\nm = s['memory_stats']\nprint(m['limit'], m['usage'] > 1 << 20, s['pids_stats']['current'], s['cpu_stats']['cpu_usage']['total_usage'] > s['precpu_stats']['cpu_usage']['total_usage'], 'eth0' in s['networks'])",
    );
    assert_eq!(py.ok().trim(), format!("{} True 1 True True", 64u64 << 20));
    // Streaming: a frame about every second until the client hangs up.
    let mut child = d
        .docker_cmd(&["stats", "--format", "{{.Name}} {{.PIDs}}", "st"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker stats");
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let _ = child.kill();
    let got = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&got.stdout);
    let frames = text.matches("st 1").count();
    assert!(frames >= 2, "several frames: {text:?}");
    d.docker(&["rm", "-f", "st"]).ok();
}

fn ps(d: &TestDaemon, args: &[&str]) -> Vec<String> {
    let mut a = vec!["ps", "--format", "{{.Names}}"];
    a.extend_from_slice(args);
    let mut v: Vec<String> = d.docker(&a).ok().lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn ps_filters_as_docker() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker(&["network", "create", "fnet"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "f1",
        "-l",
        "tier=web",
        "-v",
        "fvol:/data",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "f2",
        "--network",
        "fnet",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.docker(&["run", "--name", "f3", "busybox", "sh", "-c", "exit 3"]);
    d.docker(&["create", "--name", "f4", "busybox"]).ok();
    let all = ["f1", "f2", "f3", "f4"];
    assert_eq!(ps(&d, &["-a"]), all);
    assert_eq!(ps(&d, &["-a", "--filter", "before=f3"]), ["f1", "f2"]);
    assert_eq!(ps(&d, &["-a", "--filter", "since=f2"]), ["f3", "f4"]);
    assert_eq!(ps(&d, &["--filter", "volume=fvol"]), ["f1"]);
    assert_eq!(ps(&d, &["--filter", "volume=/data"]), ["f1"]);
    assert_eq!(ps(&d, &["--filter", "network=fnet"]), ["f2"]);
    assert_eq!(ps(&d, &["-a", "--filter", "exited=3"]), ["f3"]);
    // A status filter lists stopped containers without -a, as Docker does.
    assert_eq!(ps(&d, &["--filter", "status=exited"]), ["f3"]);
    assert_eq!(ps(&d, &["--filter", "status=created"]), ["f4"]);
    assert_eq!(ps(&d, &["--filter", "label=tier=web"]), ["f1"]);
    assert_eq!(ps(&d, &["--filter", "label=tier"]), ["f1"]);
    assert_eq!(ps(&d, &["-a", "--filter", "name=^/f1$"]), ["f1"]);
    assert_eq!(ps(&d, &["-a", "--filter", "ancestor=busybox"]), all);
    assert_eq!(ps(&d, &["--filter", "health=none"]), ["f1", "f2"]);
    assert!(ps(&d, &["--filter", "health=healthy"]).is_empty());
    assert_eq!(ps(&d, &["--filter", "is-task=false"]), ["f1", "f2"]);
    let id = d.docker(&["inspect", "-f", "{{.Id}}", "f2"]).ok()[..8].to_string();
    assert_eq!(ps(&d, &["--filter", &format!("id={id}")]), ["f2"]);
    let bad = d.docker(&["ps", "--filter", "status=sleepy"]);
    assert!(
        bad.stderr.contains("invalid filter 'status=sleepy'"),
        "{bad:?}"
    );
    let bad = d.docker(&["ps", "--filter", "colour=red"]);
    assert!(bad.stderr.contains("invalid filter 'colour'"), "{bad:?}");
    let bad = d.docker(&["ps", "--filter", "before=nope"]);
    assert!(bad.stderr.contains("No such container: nope"), "{bad:?}");
    d.docker(&["rm", "-f", "f1", "f2", "f3", "f4"]).ok();
    d.docker(&["network", "rm", "fnet"]).ok();
}
