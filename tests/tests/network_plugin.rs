//! A third-party network driver (issue 6): the out-of-tree `null-network` example, built here
//! against `berth-plugins` only and named in daemon.json's `plugins`, serves `docker network
//! create -d null`; a container on such a network has only its loopback device, and the
//! network is removed cleanly. No traffic at all.

#[path = "../../plugins/tests/support/mod.rs"]
mod plugin_fixtures;

use berth_tests::TestDaemon;
use plugin_fixtures::libs;
use serde_json::{json, Value};

#[test]
fn null_network_plugin_gives_containers_only_loopback() {
    let lib = &libs().null;
    let d = TestDaemon::builder()
        .config_json(json!({"plugins": {"drivers": {"null": lib}}}))
        .start();
    d.import_busybox();

    let (code, _, body) = d.request("GET", "/info", None);
    assert_eq!(code, 200, "{body}");
    let info: Value = serde_json::from_str(&body).expect("info JSON");
    let plugins = info["BerthPlugins"].as_array().cloned().unwrap_or_default();
    assert!(
        plugins.iter().any(|p| p["Name"] == "null-network"
            && p["Driver"] == "null"
            && p["Kind"] == "network"),
        "{plugins:?}"
    );

    let id = d
        .docker(&["network", "create", "-d", "null", "x"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let drv = d.docker(&["network", "inspect", "-f", "{{.Driver}}", "x"]);
    assert_eq!(drv.ok().trim(), "null");
    let bad = d.docker(&[
        "network",
        "create",
        "-d",
        "null",
        "--subnet",
        "10.9.9.0/24",
        "y",
    ]);
    assert!(bad.stderr.contains("null driver"), "{}", bad.stderr);

    let links = d.docker(&[
        "run",
        "--rm",
        "--network",
        "x",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links.ok().split_whitespace().collect::<Vec<_>>(), ["lo"]);

    // While a container is on it, it is in use; afterwards it goes.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "idle",
        "--network",
        "x",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let member = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}}{{end}}",
        "x",
    ]);
    assert_eq!(member.ok().trim(), "idle");
    let ip = d.docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.x.IPAddress}}",
        "idle",
    ]);
    assert_eq!(ip.ok().trim(), "");
    let busy = d.docker(&["network", "rm", "x"]);
    assert!(
        busy.stderr.contains("has active endpoints"),
        "{}",
        busy.stderr
    );
    d.docker(&["rm", "-f", "idle"]).ok();
    d.docker(&["network", "rm", "x"]).ok();
    let ls = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.ok().lines().any(|l| l == "x"), "{}", ls.stdout);
}
