//! CRI stats, resources and the image filesystem, driven by the real `crictl` (cri-tools
//! v1.26.1) against a test daemon: `stats` (CPU time and a rate from two samples, memory
//! working set, the writable layer, filters by ID, pod and label), `statsp` (a pod's
//! containers added up, process count, the interfaces of its network namespace), resources
//! given at `create` and changed by `update` (cpuset included) as the container's cgroup shows
//! them, and
//! `imagefsinfo`. Skipped, with a message, without crictl.

use berth_tests::{Crictl, TestDaemon};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).expect("write config");
    p.display().to_string()
}

/// A protobuf `UInt64Value` as crictl's JSON shows it (`{"value":"123"}`); none when absent.
fn u64_of(v: &Value) -> Option<u64> {
    let v = &v["value"];
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// The host path of `file` in the cgroup of process `pid` for the v1 controller `ctrl` (or
/// the v2 folder).
fn cgroup_file(pid: &str, ctrl: &str, v1: &str, v2: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == ctrl) {
            return Path::new("/sys/fs/cgroup")
                .join(ctrls)
                .join(path.trim_start_matches('/'))
                .join(v1);
        }
    }
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a v1 controller or the v2 line");
    Path::new("/sys/fs/cgroup")
        .join(path.trim_start_matches('/'))
        .join(v2)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// `crictl stats -o json ARGS`'s list.
fn stats(c: &Crictl, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["stats", "-a", "-o", "json"];
    all.extend_from_slice(args);
    c.json(&all)["stats"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter_map(|s| s["attributes"]["id"].as_str().map(str::to_string))
        .collect()
}

/// Runs `ip ARGS` in the network namespace pinned at `ns`.
fn ip_in(ns: &Path, args: &[&str]) {
    let st = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("ip")
        .args(args)
        .status()
        .expect("nsenter ip");
    assert!(st.success(), "ip {args:?}");
}

#[test]
fn stats_resources_and_image_fs_through_crictl() {
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();
    let pod = json!({
        "metadata": {"name": "stats", "namespace": "default", "uid": "uid-s", "attempt": 0},
        "log_directory": d.dir().join("pod-logs"),
        "labels": {"app": "stats"}
    });
    let pod_cfg = write(d.dir(), "pod.json", &pod);
    let p = c.ok(&["runp", &pod_cfg]).trim().to_string();

    // Resources at create: memory, CFS quota and period, shares, pids (unified pids.max).
    let busy = json!({
        "metadata": {"name": "busy"},
        "image": {"image": "busybox"},
        "command": ["sh", "-c",
            "dd if=/dev/zero of=/fill bs=1024 count=3072 2>/dev/null; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000"],
        "labels": {"role": "busy"},
        "linux": {"resources": {
            "memory_limit_in_bytes": 96 << 20,
            "cpu_period": 100_000,
            "cpu_quota": 50_000,
            "cpu_shares": 512,
            "unified": {"pids.max": "64"}
        }}
    });
    let idle = json!({
        "metadata": {"name": "idle"},
        "image": {"image": "busybox"},
        "command": ["sleep", "1000"],
        "labels": {"role": "idle"}
    });
    let a = c
        .ok(&["create", &p, &write(d.dir(), "busy.json", &busy), &pod_cfg])
        .trim()
        .to_string();
    let b = c
        .ok(&["create", &p, &write(d.dir(), "idle.json", &idle), &pod_cfg])
        .trim()
        .to_string();

    // A created container has its writable layer but no CPU or memory figures yet.
    let created = stats(&c, &["--id", &b]);
    assert_eq!(ids(&created), vec![b.clone()], "{created:?}");
    assert!(created[0]["cpu"].is_null(), "{created:?}");

    c.ok(&["start", &a]);
    c.ok(&["start", &b]);
    // The busy container has filled its layer and counted once its loop is done.
    let mut tries = 0;
    while !c
        .ok(&[
            "exec",
            "-s",
            &a,
            "sh",
            "-c",
            "ps | grep -q 'sleep 1000' && echo up",
        ])
        .contains("up")
    {
        tries += 1;
        assert!(tries < 120, "the busy container never settled");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", &a])
        .ok()
        .trim()
        .to_string();
    let cg = |ctrl: &str, v1: &str, v2: &str| read(&cgroup_file(&pid, ctrl, v1, v2));
    assert_eq!(
        cg("memory", "memory.limit_in_bytes", "memory.max"),
        (96u64 << 20).to_string()
    );
    let quota = cg("cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota == "50000" || quota == "50000 100000", "{quota}");
    assert_eq!(cg("pids", "pids.max", "pids.max"), "64");

    // Container stats: cumulative CPU, memory, the writable layer (3 MiB written).
    let one = stats(&c, &["--id", &a]);
    assert_eq!(ids(&one), vec![a.clone()], "{one:?}");
    let s = &one[0];
    assert_eq!(s["attributes"]["metadata"]["name"], "busy", "{s}");
    assert_eq!(s["attributes"]["labels"]["role"], "busy", "{s}");
    let cpu0 = u64_of(&s["cpu"]["usageCoreNanoSeconds"]).expect("cpu");
    assert!(cpu0 > 0, "{s}");
    assert!(
        s["cpu"]["timestamp"].as_str().is_some_and(|t| t != "0")
            || s["cpu"]["timestamp"].as_i64().is_some_and(|t| t > 0),
        "{s}"
    );
    let ws = u64_of(&s["memory"]["workingSetBytes"]).expect("working set");
    assert!(ws > 0, "{s}");
    let avail = u64_of(&s["memory"]["availableBytes"]).expect("available with a limit");
    assert_eq!(avail + ws, 96 << 20, "{s}");
    let layer = u64_of(&s["writableLayer"]["usedBytes"]).expect("layer");
    assert!(layer >= 3 << 20, "{s}");
    assert!(
        u64_of(&s["writableLayer"]["inodesUsed"]).unwrap_or(0) >= 1,
        "{s}"
    );
    // A second sample gives the rate.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let again = stats(&c, &["--id", &a]);
    assert!(
        u64_of(&again[0]["cpu"]["usageNanoCores"]).is_some(),
        "{again:?}"
    );

    // Filters: by pod, by label, by a label nobody has.
    let mut by_pod = ids(&stats(&c, &["--pod", &p]));
    by_pod.sort();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(by_pod, both);
    assert_eq!(ids(&stats(&c, &["--label", "role=idle"])), vec![b.clone()]);
    assert!(stats(&c, &["--label", "role=none"]).is_empty());

    // Update: memory, CPU quota, shares as the cgroup shows them.
    c.ok(&[
        "update",
        "--memory",
        &(128u64 << 20).to_string(),
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        "--cpu-share",
        "256",
        &a,
    ]);
    assert_eq!(
        cg("memory", "memory.limit_in_bytes", "memory.max"),
        (128u64 << 20).to_string()
    );
    let quota = cg("cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota == "20000" || quota == "20000 100000", "{quota}");
    let s = &stats(&c, &["--id", &a])[0];
    let (ws, avail) = (
        u64_of(&s["memory"]["workingSetBytes"]).unwrap_or(0),
        u64_of(&s["memory"]["availableBytes"]).unwrap_or(0),
    );
    assert_eq!(ws + avail, 128 << 20, "{s}");
    // The cpuset, alone (the other limits stay).
    c.ok(&["update", "--cpuset-cpus", "0", "--cpuset-mems", "0", &a]);
    assert_eq!(cg("cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    assert_eq!(cg("cpuset", "cpuset.mems", "cpuset.mems"), "0");
    assert_eq!(
        cg("memory", "memory.limit_in_bytes", "memory.max"),
        (128u64 << 20).to_string()
    );

    // Pod stats: the containers added up, processes, and the interfaces of the pod's network
    // namespace (a veth pair made in it here, both ends inside, so nothing leaves it).
    let ns = d.exec_root().join("cri/pods").join(&p).join("net");
    ip_in(
        &ns,
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
        ],
    );
    ip_in(&ns, &["addr", "add", "10.231.0.1/24", "dev", "eth0"]);
    ip_in(&ns, &["link", "set", "eth0", "up"]);
    ip_in(&ns, &["link", "set", "peer0", "up"]);
    // ARP requests for a neighbour that is not there: bytes out of eth0.
    let _ = c.run(&["exec", "-s", &a, "ping", "-c", "2", "-W", "1", "10.231.0.2"]);
    let pods = c.json(&["statsp", "-o", "json", "--id", &p]);
    let ps = &pods["stats"][0];
    assert_eq!(ps["attributes"]["id"], p.as_str(), "{pods}");
    assert_eq!(ps["attributes"]["metadata"]["name"], "stats", "{pods}");
    let linux = &ps["linux"];
    let pod_cpu = u64_of(&linux["cpu"]["usageCoreNanoSeconds"]).expect("pod cpu");
    assert!(pod_cpu >= cpu0, "{pods}");
    assert!(
        u64_of(&linux["memory"]["workingSetBytes"]).unwrap_or(0) > 0,
        "{pods}"
    );
    // sleep, and the other container's sleep.
    assert!(
        u64_of(&linux["process"]["processCount"]).unwrap_or(0) >= 2,
        "{pods}"
    );
    let mut in_pod = ids(linux["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]));
    in_pod.sort();
    assert_eq!(in_pod, both, "{pods}");
    let net = &linux["network"];
    assert_eq!(net["defaultInterface"]["name"], "eth0", "{pods}");
    assert!(
        u64_of(&net["defaultInterface"]["txBytes"]).unwrap_or(0) > 0,
        "{pods}"
    );
    let others: Vec<&str> = net["interfaces"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(others, vec!["peer0"], "{pods}");
    let by_label = c.json(&["statsp", "-o", "json", "--label", "app=stats"]);
    assert_eq!(
        by_label["stats"].as_array().map(Vec::len),
        Some(1),
        "{by_label}"
    );
    let none = c.json(&["statsp", "-o", "json", "--label", "app=other"]);
    assert!(none["stats"].as_array().is_none_or(Vec::is_empty), "{none}");

    // The image filesystem: the storage driver's folder in the data root, in use.
    let fs = c.json(&["imagefsinfo", "-o", "json"]);
    let mount = fs["status"]["fsId"]["mountpoint"].as_str().unwrap_or("");
    assert!(
        mount.starts_with(&d.data_root().display().to_string()),
        "{fs}"
    );
    assert!(u64_of(&fs["status"]["usedBytes"]).unwrap_or(0) > 0, "{fs}");

    // A stopped container: no CPU or memory figures; its layer is still there.
    c.ok(&["stop", "--timeout", "1", &a]);
    let s = &stats(&c, &["--id", &a])[0];
    assert!(s["cpu"].is_null() && s["memory"].is_null(), "{s}");
    assert!(
        u64_of(&s["writableLayer"]["usedBytes"]).unwrap_or(0) >= 3 << 20,
        "{s}"
    );
    // An unknown container or pod is NotFound.
    assert!(
        !c.run(&["statsp", "--id", "nope"]).success() || {
            let v = c.json(&["statsp", "-o", "json", "--id", "nope"]);
            v["stats"].as_array().is_none_or(Vec::is_empty)
        }
    );

    c.ok(&["rmp", "-f", &p]);
    assert!(d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty());
}
