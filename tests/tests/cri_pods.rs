//! CRI pod sandboxes and their containers, driven by the real `crictl` (cri-tools v1.26.1)
//! against a test daemon: `runp` (hostname, DNS, labels), `create`/`start`/`ps`/`inspect`,
//! `exec -s` (exit code, timeout), `logs` from the CRI-format file at the path the request
//! names, two containers sharing the pod's network, IPC, UTS and PID namespaces and sysctls,
//! `hostNetwork`, then `stop`/`stopp`/`rmp` (idempotent) leaving nothing behind: no container,
//! no pinned namespace. Its daemon has no CNI configuration, so pods are loopback-only (CNI
//! networks: `cri_cni`). Skipped, with a message, without crictl.

use berth_tests::{Crictl, TestDaemon};
use serde_json::json;
use std::path::Path;

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).expect("write config");
    p.display().to_string()
}

/// `ls -L` of a namespace link inside the container: its inode.
fn ns_of(c: &Crictl, id: &str, kind: &str) -> String {
    c.ok(&[
        "exec",
        "-s",
        id,
        "readlink",
        &format!("/proc/self/ns/{kind}"),
    ])
    .trim()
    .to_string()
}

#[test]
fn a_pod_runs_containers_in_its_namespaces_and_goes_away_cleanly() {
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();
    let logs = d.dir().join("pod-logs");
    let pod = json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1", "attempt": 0},
        "hostname": "web-host",
        "log_directory": logs,
        "dns_config": {"servers": ["10.96.0.10"], "searches": ["svc.cluster.local"], "options": ["ndots:5"]},
        "labels": {"app": "web"},
        "linux": {"sysctls": {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "80"}}
    });
    let pod_cfg = write(d.dir(), "pod.json", &pod);
    let p = c.ok(&["runp", &pod_cfg]).trim().to_string();
    assert_eq!(p.len(), 64, "{p}");
    // The same metadata again is refused (kubelet's name reservation).
    assert!(!c.run(&["runp", &pod_cfg]).success());
    let pods = c.json(&["pods", "-o", "json", "--label", "app=web"]);
    assert_eq!(pods["items"][0]["id"], p.as_str(), "{pods}");
    assert_eq!(pods["items"][0]["state"], "SANDBOX_READY", "{pods}");

    let ctr = |name: &str, cmd: &str| {
        json!({
            "metadata": {"name": name},
            "image": {"image": "busybox"},
            "command": ["sh", "-c", cmd],
            "log_path": format!("{name}/0.log"),
            "labels": {"role": name},
            "annotations": {"note": "kept"},
            "linux": {"security_context": {"supplemental_groups": [1234]}}
        })
    };
    let main = write(
        d.dir(),
        "main.json",
        &ctr("main", "echo hello; echo oops >&2; exec sleep 1000"),
    );
    let side = write(d.dir(), "side.json", &ctr("side", "exec sleep 1000"));
    let a = c.ok(&["create", &p, &main, &pod_cfg]).trim().to_string();
    let b = c.ok(&["create", &p, &side, &pod_cfg]).trim().to_string();
    assert_eq!(
        c.json(&["inspect", "-o", "json", &a])["status"]["state"],
        "CONTAINER_CREATED"
    );
    c.ok(&["start", &a]);
    c.ok(&["start", &b]);
    let ps = c.json(&["ps", "-o", "json", "--pod", &p, "--state", "running"]);
    assert_eq!(ps["containers"].as_array().map(Vec::len), Some(2), "{ps}");
    let st = c.json(&["inspect", "-o", "json", &a]);
    assert_eq!(st["status"]["labels"]["role"], "main", "{st}");
    assert_eq!(st["status"]["annotations"]["note"], "kept", "{st}");
    assert_eq!(st["status"]["metadata"]["name"], "main", "{st}");
    // The Docker API sees the same container, named as dockershim named them.
    let names = d.docker(&["ps", "--format", "{{.Names}}"]).ok().to_string();
    assert!(names.contains("k8s_main_web_default_uid-1_0"), "{names}");

    // Hostname, DNS, loopback-only network, namespaces shared by the pod's containers.
    assert_eq!(c.ok(&["exec", "-s", &a, "hostname"]).trim(), "web-host");
    let resolv = c.ok(&["exec", "-s", &a, "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(resolv.contains("search svc.cluster.local"), "{resolv}");
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    // Supplemental groups, for the container's process and its execs (as dockerd's
    // `--group-add` reaches `docker exec`).
    let groups = c.ok(&["exec", "-s", &a, "id", "-G"]);
    assert!(groups.split_whitespace().any(|g| g == "1234"), "{groups}");
    // The pod's sysctls, in its IPC and network namespaces.
    for (path, want) in [
        ("/proc/sys/kernel/shm_rmid_forced", "1"),
        ("/proc/sys/net/ipv4/ip_unprivileged_port_start", "80"),
    ] {
        assert_eq!(
            c.ok(&["exec", "-s", &b, "cat", path]).trim(),
            want,
            "{path}"
        );
    }
    let links = c.ok(&["exec", "-s", &a, "cat", "/proc/net/dev"]);
    assert!(links.contains("lo:") && !links.contains("eth0"), "{links}");
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(ns_of(&c, &a, kind), ns_of(&c, &b, kind), "{kind} shared");
    }
    assert_eq!(
        ns_of(&c, &a, "pid"),
        ns_of(&c, &b, "pid"),
        "the pod's PID namespace (the CRI's default)"
    );

    // ExecSync: output, exit code, timeout.
    let bad = c.run(&[
        "exec",
        "-s",
        &a,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert!(!bad.success());
    assert!(bad.stderr.contains("exited with 3"), "{}", bad.stderr);
    let slow = c.run(&["exec", "-s", "--timeout", "1", &a, "sleep", "30"]);
    assert!(
        !slow.success() && slow.stderr.contains("timed out"),
        "{slow:?}"
    );

    // Logs in the CRI format at <log_directory>/<log_path>.
    let file = std::fs::read_to_string(logs.join("main/0.log")).expect("CRI log file");
    let lines: Vec<&str> = file.lines().collect();
    assert!(
        lines.iter().any(|l| l.ends_with(" stdout F hello")),
        "{file}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(" stderr F oops")),
        "{file}"
    );
    let out = c.run(&["logs", &a]);
    assert_eq!(out.stdout.trim(), "hello");
    assert_eq!(out.stderr.trim(), "oops");

    // Stop: exited with the kill's status; stopp twice and rmp twice are fine.
    c.ok(&["stop", "--timeout", "1", &a]);
    let st = c.json(&["inspect", "-o", "json", &a]);
    assert_eq!(st["status"]["state"], "CONTAINER_EXITED", "{st}");
    c.ok(&["stopp", &p]);
    c.ok(&["stopp", &p]);
    assert_eq!(
        c.json(&["inspectp", "-o", "json", &p])["status"]["state"],
        "SANDBOX_NOTREADY"
    );
    let pinned = d.exec_root().join("cri/pods").join(&p);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(
        !mounts.contains(&pinned.display().to_string()),
        "pins released"
    );
    c.ok(&["rmp", &p]);
    let gone = c.json(&["pods", "-o", "json"]);
    assert_eq!(gone["items"].as_array().map(Vec::len), Some(0), "{gone}");
    let all = d.docker(&["ps", "-a", "-q"]).ok().to_string();
    assert!(
        all.trim().is_empty(),
        "the pod's containers are removed: {all}"
    );
    assert!(!pinned.exists());
}

#[test]
fn a_host_network_pod_shares_the_hosts_network() {
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();
    let pod = json!({
        "metadata": {"name": "hostnet", "namespace": "kube-system", "uid": "uid-2"},
        "linux": {"security_context": {"namespace_options": {"network": 2}}}
    });
    let pod_cfg = write(d.dir(), "pod.json", &pod);
    let p = c.ok(&["runp", &pod_cfg]).trim().to_string();
    let ctr = json!({
        "metadata": {"name": "probe"},
        "image": {"image": "busybox"},
        "command": ["sleep", "1000"]
    });
    let cfg = write(d.dir(), "ctr.json", &ctr);
    let id = c.ok(&["create", &p, &cfg, &pod_cfg]).trim().to_string();
    c.ok(&["start", &id]);
    let host_net = std::fs::read_link("/proc/self/ns/net").expect("host netns");
    assert_eq!(
        ns_of(&c, &id, "net"),
        host_net.display().to_string(),
        "the host's network namespace"
    );
    let st = c.json(&["inspectp", "-o", "json", &p]);
    assert_eq!(
        st["status"]["linux"]["namespaces"]["options"]["network"], "NODE",
        "{st}"
    );
    c.ok(&["rmp", "-f", &p]);
    assert!(d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty());
}
