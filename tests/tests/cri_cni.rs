//! CRI pods on a CNI network, with the real `crictl` and Debian's standard CNI plugins
//! (bridge, host-local, portmap) on a private bridge and /24 ([`CniNet`]): pods get an address
//! on the bridge (`crictl inspectp` shows it), reach each other (ping, wget to busybox httpd),
//! a host port reaches a pod's server from the host through 127.0.0.1, the host reaches the
//! pod's address; StopPodSandbox runs DEL, which frees the address (a range of two addresses
//! proves a new pod reuses it) and portmap's rules, also for a pod made before berthd was
//! killed and restarted; `Status` says NetworkReady=false (`NetworkPluginNotReady`) without a
//! configuration; a pod whose ADD berthd never saw finish (killed during it) is stopped with
//! DEL all the same. Skipped, with a message, without crictl or the plugins.

use berth_tests::{crictl_bin, free_port, CniNet, Crictl, TestDaemon, CNI_BIN_DIR};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).expect("write config");
    p.display().to_string()
}

/// The body of `GET /` from `addr`, retried until it answers (a hang guard of 30 s, not a
/// timing assertion: the server may still be starting).
fn http_get(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let attempt = (|| -> std::io::Result<String> {
            let sa = addr
                .parse()
                .map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
            let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(body) if body.contains("200") => return body,
            Ok(body) => last = body,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("GET http://{addr}/ never answered: {last}");
}

fn pod_ip(c: &Crictl, pod: &str) -> String {
    let st = c.json(&["inspectp", "-o", "json", pod]);
    st["status"]["network"]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn pod_config(d: &TestDaemon, name: &str, ports: serde_json::Value) -> String {
    let pod = json!({
        "metadata": {"name": name, "namespace": "cni", "uid": format!("uid-{name}"), "attempt": 0},
        "hostname": name,
        "log_directory": d.dir().join("pod-logs"),
        "port_mappings": ports,
        "linux": {}
    });
    write(d.dir(), &format!("{name}-pod.json"), &pod)
}

fn container_config(d: &TestDaemon, name: &str, cmd: &str) -> String {
    let ctr = json!({
        "metadata": {"name": name},
        "image": {"image": "busybox"},
        "command": ["sh", "-c", cmd],
        "linux": {}
    });
    write(d.dir(), &format!("{name}-ctr.json"), &ctr)
}

/// Runs a pod with one container running `cmd`; answers (pod, container).
fn pod_with(
    c: &Crictl,
    d: &TestDaemon,
    name: &str,
    ports: serde_json::Value,
    cmd: &str,
) -> (String, String) {
    let pod_cfg = pod_config(d, name, ports);
    let p = c.ok(&["runp", &pod_cfg]).trim().to_string();
    let ctr = container_config(d, name, cmd);
    let id = c.ok(&["create", &p, &ctr, &pod_cfg]).trim().to_string();
    c.ok(&["start", &id]);
    (p, id)
}

const WEB: &str = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www";

#[test]
fn pods_join_a_cni_network_reach_each_other_and_publish_host_ports() {
    if !CniNet::available() {
        eprintln!("skipped: the CNI plugins are not installed (apt-get install containernetworking-plugins)");
        return;
    }
    // Two addresses only (.10 and .11): the third pod gets one only if DEL freed it.
    let net = CniNet::new(10, 11);
    let mut d = TestDaemon::builder()
        .config_json(net.daemon_config())
        .start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();

    let info = c.json(&["info", "-o", "json"]);
    let conds = info["status"]["conditions"].to_string();
    assert!(
        conds.contains(r#""status":true,"type":"NetworkReady""#)
            || conds.contains(r#""type":"NetworkReady","status":true"#),
        "{info}"
    );

    let host_port = free_port();
    let (a, _) = pod_with(
        &c,
        &d,
        "web-a",
        json!([{"container_port": 8080, "host_port": host_port}, {"container_port": 9090}]),
        WEB,
    );
    let (b, b_ctr) = pod_with(&c, &d, "web-b", json!([]), WEB);
    let (ip_a, ip_b) = (pod_ip(&c, &a), pod_ip(&c, &b));
    let mut ips = [ip_a.clone(), ip_b.clone()];
    ips.sort();
    assert_eq!(
        ips,
        [format!("{}.10", net.prefix), format!("{}.11", net.prefix)],
        "pod addresses on the test network"
    );
    assert!(net.reserved(&ip_a) && net.reserved(&ip_b));
    assert_eq!(net.bridge_ports().len(), 2, "{:?}", net.bridge_ports());
    // The pod's interface is eth0 with its address.
    let addr = c.ok(&["exec", "-s", &b_ctr, "ip", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet {ip_b}/24")), "{addr}");

    // Pod to pod: ping and HTTP.
    c.ok(&["exec", "-s", &b_ctr, "ping", "-c", "1", "-W", "5", &ip_a]);
    let got = c.ok(&[
        "exec",
        "-s",
        &b_ctr,
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{ip_a}:8080/"),
    ]);
    assert_eq!(got.trim(), "hello-from-web-a");
    // Host to pod, by its address and by the host port on 127.0.0.1 (portmap).
    assert!(http_get(&format!("{ip_a}:8080")).contains("hello-from-web-a"));
    assert!(http_get(&format!("127.0.0.1:{host_port}")).contains("hello-from-web-a"));
    // ... and on another of the host's addresses (the bridge's gateway address).
    let gateway = format!("{}.1:{host_port}", net.prefix);
    assert!(http_get(&gateway).contains("hello-from-web-a"));
    // Only the mapping with a host port is published.
    assert_eq!(net.portmap_rules().len(), 1, "{:?}", net.portmap_rules());

    // No address left: a third pod fails cleanly (nothing of it left behind).
    let full = pod_config(&d, "web-full", json!([]));
    assert!(!c.run(&["runp", &full]).success());
    assert_eq!(net.bridge_ports().len(), 2, "{:?}", net.bridge_ports());
    let folders: Vec<_> = std::fs::read_dir(d.exec_root().join("cri/pods"))
        .expect("pod folders")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(folders.len(), 2, "only the two pods' folders: {folders:?}");

    // DEL at stop frees the address and the host port; stop and remove stay idempotent.
    c.ok(&["stopp", &a]);
    assert!(!net.reserved(&ip_a), "{ip_a} still reserved");
    assert!(net.portmap_rules().is_empty(), "{:?}", net.portmap_rules());
    assert_eq!(net.bridge_ports().len(), 1, "{:?}", net.bridge_ports());
    assert_eq!(pod_ip(&c, &a), "");
    c.ok(&["stopp", &a]);
    c.ok(&["rmp", &a]);
    let (cpod, _) = pod_with(&c, &d, "web-c", json!([]), "exec sleep 1000");
    assert_eq!(pod_ip(&c, &cpod), ip_a, "the freed address is reused");

    // After berthd is killed (-9) and started again, the record still knows how to undo the
    // attachment.
    d.kill9();
    d.restart();
    assert_eq!(pod_ip(&c, &b), ip_b);
    c.ok(&["stopp", &b]);
    c.ok(&["stopp", &cpod]);
    assert!(!net.reserved(&ip_a) && !net.reserved(&ip_b));
    assert!(net.bridge_ports().is_empty(), "{:?}", net.bridge_ports());
    c.ok(&["rmp", &b]);
    c.ok(&["rmp", &cpod]);

    // Without a configuration the network is not ready (as containerd), and pods still run
    // (loopback only), as hostNetwork pods do.
    std::fs::remove_file(net.conf_file()).expect("removing the conflist");
    let info = c.json(&["info", "-o", "json"]);
    let conds = info["status"]["conditions"].to_string();
    assert!(conds.contains("NetworkPluginNotReady"), "{info}");
    let lo = pod_config(&d, "lo-only", json!([]));
    let p = c.ok(&["runp", &lo]).trim().to_string();
    assert_eq!(pod_ip(&c, &p), "");
    c.ok(&["rmp", "-f", &p]);
}

/// Waits (60 s at most: a hang guard) until `f` holds.
fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_pod_whose_add_was_cut_short_by_a_crash_is_still_torn_down() {
    if !CniNet::available() {
        eprintln!("skipped: the CNI plugins are not installed (apt-get install containernetworking-plugins)");
        return;
    }
    let net = CniNet::new(10, 10);
    // The standard plugins, then `slow`, whose ADD never ends (it notes its PID first).
    let bin = net.dir().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    for p in ["bridge", "host-local", "portmap"] {
        std::os::unix::fs::symlink(Path::new(CNI_BIN_DIR).join(p), bin.join(p)).expect("symlink");
    }
    let started = net.dir().join("slow-started");
    let slow = format!(
        "#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = ADD ]; then echo $$ > {}; exec sleep 120; fi\n",
        started.display()
    );
    std::fs::write(bin.join("slow"), slow).expect("write slow");
    std::process::Command::new("chmod")
        .args(["755", &bin.join("slow").display().to_string()])
        .status()
        .expect("chmod");
    let mut conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(net.conf_file()).expect("read conflist"))
            .expect("conflist");
    if let Some(plugins) = conf["plugins"].as_array_mut() {
        plugins.push(json!({"type": "slow"}));
    }
    std::fs::write(net.conf_file(), conf.to_string()).expect("write conflist");
    let mut d = TestDaemon::builder()
        .config_json(json!({"cri": {"cni-conf-dir": net.conf_dir(), "cni-bin-dir": bin}}))
        .start();
    let (Some(c), Some(crictl)) = (Crictl::for_daemon(&d), crictl_bin()) else {
        return;
    };
    let pod_cfg = pod_config(&d, "cut", json!([]));
    let mut runp = std::process::Command::new(crictl)
        .args(["--runtime-endpoint", c.endpoint(), "runp", &pod_cfg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("crictl runp");
    wait_for("the slow plugin's ADD", || {
        std::fs::read_to_string(&started).is_ok_and(|s| s.ends_with('\n'))
    });
    let ip = format!("{}.10", net.prefix);
    assert!(net.reserved(&ip));
    d.kill9();
    let _ = runp.kill();
    let _ = runp.wait();
    if let Ok(pid) = std::fs::read_to_string(&started)
        .unwrap_or_default()
        .trim()
        .parse()
    {
        // SAFETY: kill(2) on the slow plugin's PID (still alive: it sleeps 120 s); no memory
        // is touched.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    d.restart();
    let pods = c.json(&["pods", "-o", "json"]);
    assert_eq!(pods["items"][0]["state"], "SANDBOX_NOTREADY", "{pods}");
    let id = pods["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    c.ok(&["stopp", &id]);
    assert!(!net.reserved(&ip), "{ip} still reserved after DEL");
    assert!(net.bridge_ports().is_empty(), "{:?}", net.bridge_ports());
    c.ok(&["rmp", &id]);
}
