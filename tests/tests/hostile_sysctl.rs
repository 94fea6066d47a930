//! Hostile sysctls (issue #15): a container may set only the sysctls the kernel keeps per
//! namespace, in a namespace of its own (runc's rules). `kernel.core_pattern` (a host-wide
//! value that would run a program as root on the host) and `net.*` with `--network host` are
//! refused at start with Docker's error; the host's values never change; the allowed ones are
//! set inside the container only. The init refuses the same keys in a spec that did not
//! come through berthd (defence in depth).

mod runtime_support;

use berth_tests::TestDaemon;
use serde_json::{json, Value};

fn host_value(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", key.replace('.', "/"))).expect("read sysctl")
}

/// Creates a container with `host_config` over the API and starts it: (start status, body).
fn create_and_start(d: &TestDaemon, host_config: Value) -> (u16, String) {
    let body = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config});
    let (code, _, out) = d.request("POST", "/containers/create", Some(&body.to_string()));
    assert_eq!(code, 201, "create: {out}");
    let id = serde_json::from_str::<Value>(&out).expect("create JSON")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    let (code, _, out) = d.request("POST", &format!("/containers/{id}/start"), None);
    (code, out)
}

#[test]
fn core_pattern_is_refused_and_the_host_keeps_its_value() {
    let before = host_value("kernel.core_pattern");
    let d = TestDaemon::start();
    d.import_busybox();
    // The docker CLI refuses it itself (exit 125), as with Docker.
    let out = d.docker(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.core_pattern=|/tmp/x",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status, 125, "{}", out.stderr);
    // Through the API it reaches berthd, which refuses the start with runc's text.
    let (code, body) = create_and_start(&d, json!({"Sysctls": {"kernel.core_pattern": "|/tmp/x"}}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("sysctl \\\"kernel.core_pattern\\\" is not in a separate kernel namespace"),
        "{body}"
    );
    // Other host-wide keys, and a key that climbs out of /proc/sys, likewise.
    for key in [
        "kernel.modprobe",
        "vm.overcommit_memory",
        "net/../kernel/core_pattern",
    ] {
        let (code, body) = create_and_start(&d, json!({"Sysctls": {key: "x"}}));
        assert_eq!(code, 400, "{key}: {body}");
    }
    assert_eq!(host_value("kernel.core_pattern"), before);
    d.docker(&["version"]).ok();
}

#[test]
fn net_sysctls_in_the_host_network_are_refused() {
    let before = host_value("net.ipv4.ip_forward");
    let flipped = if before.trim() == "1" { "0" } else { "1" };
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        &format!("net.ipv4.ip_forward={flipped}"),
        "busybox",
        "true",
    ]);
    assert_eq!(out.status, 125, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"),
        "{}",
        out.stderr
    );
    // Joining a container that itself runs in the host's network is the same.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "hostnet",
        "--network",
        "host",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:hostnet",
        "--sysctl",
        &format!("net.ipv4.ip_forward={flipped}"),
        "busybox",
        "true",
    ]);
    assert_eq!(out.status, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains("not allowed in host network namespace"),
        "{}",
        out.stderr
    );
    assert_eq!(host_value("net.ipv4.ip_forward"), before);
    d.docker(&["rm", "-f", "hostnet"]).ok();
    d.docker(&["version"]).ok();
}

#[test]
fn namespaced_sysctls_are_set_inside_only() {
    let ping = host_value("net.ipv4.ping_group_range");
    let shmmax = host_value("kernel.shmmax");
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ping_group_range=0 0",
        "--sysctl",
        "kernel.shmmax=12345678",
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ping_group_range",
        "/proc/sys/kernel/shmmax",
    ]);
    let got: Vec<String> = out
        .ok()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got, ["0 0", "12345678"]);
    // Another container's network namespace (not the host's) may be tuned too, as with runc.
    let x = d.sleeper("netowner");
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:netowner",
        "--sysctl",
        "net.ipv4.ping_group_range=0 1",
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ping_group_range",
    ]);
    let got = out.ok().split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(got, "0 1");
    d.docker(&["rm", "-f", &x]).ok();
    assert_eq!(host_value("net.ipv4.ping_group_range"), ping);
    assert_eq!(host_value("kernel.shmmax"), shmmax);
    d.docker(&["version"]).ok();
}

#[test]
fn the_init_refuses_host_sysctls_in_a_spec_from_elsewhere() {
    let core = host_value("kernel.core_pattern");
    let forward = host_value("net.ipv4.ip_forward");
    let flipped = if forward.trim() == "1" { "0" } else { "1" };
    let cases = [
        (
            "sy-core",
            "kernel.core_pattern",
            "|/tmp/x",
            false,
            "is not in a separate kernel namespace",
        ),
        (
            "sy-dots",
            "net/../kernel/core_pattern",
            "|/tmp/x",
            false,
            "is not a valid sysctl name",
        ),
        (
            "sy-net",
            "net.ipv4.ip_forward",
            flipped,
            true,
            "not allowed in host network namespace",
        ),
    ];
    for (tag, key, value, host_net, why) in cases {
        let c = runtime_support::Ctr::new(tag);
        let mut o = c.opts(&["true"]);
        o.sysctls.insert(key.into(), value.into());
        if host_net {
            o.netns = berth_runtime::spec::NetNs::Host;
        }
        c.write_spec(&o);
        c.write_monitor_json(json!({"kind": "native"}), false, false);
        let ready = c.spawn();
        if ready["ok"] == true {
            let start = c.cmd_or_eof(json!({"cmd": "start"}));
            assert_ne!(start["ok"], true, "{key}: {start}");
            let exit = c.exit_record();
            let err = exit["error"].as_str().unwrap_or_default();
            assert!(err.contains(why), "{key}: {exit}");
        } else {
            let err = ready["error"].as_str().unwrap_or_default();
            assert!(err.contains(why), "{key}: {ready}");
        }
    }
    assert_eq!(host_value("kernel.core_pattern"), core);
    assert_eq!(host_value("net.ipv4.ip_forward"), forward);
}
