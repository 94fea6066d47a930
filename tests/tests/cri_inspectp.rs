//! `crictl inspectp` (a verbose `PodSandboxStatus`) against berthd shows an `info` document
//! shaped as containerd's: the pod init's PID (the record's, a live `berth-pod-init`), its
//! state, the runtime, the pod config as given, and the CNI result of a pod on a CNI network
//! (a private bridge, [`CniNet`]); a host-network pod has no CNI result and no init of its own
//! when its PID mode is the host's; a stopped pod's process is `deleted` (PID 0), as
//! containerd's. Skipped without crictl or the CNI plugins.

use berth_tests::{pod_record, CniNet, Crictl, TestDaemon};
use serde_json::json;

fn write(d: &TestDaemon, name: &str, v: &serde_json::Value) -> String {
    let p = d.dir().join(name);
    std::fs::write(&p, v.to_string()).expect("write config");
    p.display().to_string()
}

#[test]
fn inspectp_shows_containerds_verbose_info() {
    if !CniNet::available() {
        eprintln!("skipped: the CNI plugins are not installed (apt-get install containernetworking-plugins)");
        return;
    }
    let net = CniNet::new(20, 21);
    let d = TestDaemon::builder()
        .config_json(net.daemon_config())
        .start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    let cfg = write(
        &d,
        "pod.json",
        &json!({
            "metadata": {"name": "insp", "namespace": "ns-i", "uid": "uid-insp", "attempt": 2},
            "hostname": "insp-host",
            "log_directory": d.dir().join("pod-logs"),
            "labels": {"app": "insp"},
            "linux": {}
        }),
    );
    let pod = c.ok(&["runp", &cfg]).trim().to_string();
    let st = c.json(&["inspectp", "-o", "json", &pod]);
    let info = &st["info"];
    let pid = info["pid"].as_i64().unwrap_or(0);
    assert!(pid > 1, "{st}");
    assert_eq!(pid, pod_record(&d, &pod)["initPid"].as_i64().unwrap_or(0));
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "berth-pod-init");
    assert_eq!(info["processStatus"], "running", "{st}");
    assert_eq!(info["netNamespaceClosed"], false, "{st}");
    assert_eq!(info["runtimeType"], "native", "{st}");
    // The config as kubelet sent it.
    let config = &info["config"];
    assert_eq!(config["metadata"]["name"], "insp", "{st}");
    assert_eq!(config["metadata"]["attempt"], 2, "{st}");
    assert_eq!(config["hostname"], "insp-host", "{st}");
    assert_eq!(config["labels"]["app"], "insp", "{st}");
    // The CNI result names the address the status shows.
    let ip = st["status"]["network"]["ip"].as_str().unwrap_or_default();
    assert_eq!(ip, format!("{}.20", net.prefix), "{st}");
    let result = info["cniResult"].to_string();
    assert!(result.contains(ip), "{result}");
    assert!(result.contains("cniVersion"), "{result}");
    // Not verbose (crictl's --quiet): no info.
    let plain = c.ok(&["inspectp", "-o", "json", "-q", &pod]);
    assert!(!plain.contains("\"info\""), "{plain}");

    c.ok(&["stopp", &pod]);
    let st = c.json(&["inspectp", "-o", "json", &pod]);
    // containerd's, once the sandbox task is deleted at stop.
    assert_eq!(st["info"]["processStatus"], "deleted", "{st}");
    assert_eq!(st["info"]["pid"], 0, "{st}");
    assert_eq!(st["info"]["netNamespaceClosed"], true, "{st}");
    assert!(st["info"]["cniResult"].is_null(), "DEL done: {st}");
    c.ok(&["rmp", &pod]);

    // The host's network and PID namespace: no CNI result, no init.
    let host = write(
        &d,
        "host.json",
        &json!({
            "metadata": {"name": "hostnet", "namespace": "ns-i", "uid": "uid-h", "attempt": 0},
            "log_directory": d.dir().join("pod-logs"),
            "linux": {"security_context": {"namespace_options": {"network": 2, "pid": 2}}}
        }),
    );
    let pod = c.ok(&["runp", &host]).trim().to_string();
    let st = c.json(&["inspectp", "-o", "json", &pod]);
    assert_eq!(st["info"]["pid"], 0, "{st}");
    assert!(st["info"]["cniResult"].is_null(), "{st}");
    assert_eq!(st["info"]["processStatus"], "running", "{st}");
    assert_eq!(
        st["info"]["config"]["linux"]["security_context"]["namespace_options"]["network"], 2,
        "{st}"
    );
    c.ok(&["rmp", "-f", &pod]);
}
