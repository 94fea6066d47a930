//! The network API (issue 6) driven by the stock docker CLI: predefined networks, create with
//! duplicate refusal, inspect/ls filters, connect/disconnect of a running container on a user
//! bridge on the test's own subnet, Docker's refusals for predefined and in-use networks, prune,
//! and a restart keeping user networks. Traffic only to the test's own containers.

mod network_support;

use berth_tests::TestDaemon;
use network_support::{link_exists, Guard};

#[test]
fn user_networks_through_the_docker_cli() {
    let mut d = TestDaemon::start();
    let mut guard = Guard::new(&d);
    d.import_busybox();
    let n: String = d.subnet().split('.').nth(2).unwrap_or("2").to_string();
    let subnet = format!("10.214.{n}.0/24");

    let ls = d.docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    let ls = ls.ok().to_string();
    for line in ["bridge bridge local", "host host local", "none null local"] {
        assert!(ls.contains(line), "{ls}");
    }

    let id = d
        .docker(&[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--label",
            "team=blue",
            "app",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let br = format!("br-{}", &id[..12]);
    guard.user_bridges.push(br.clone());
    assert!(link_exists(&br));
    let dup = d.docker(&["network", "create", "app"]);
    assert_ne!(dup.status, 0);
    assert!(
        dup.stderr.contains("network with name app already exists"),
        "{}",
        dup.stderr
    );

    let sub = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Labels.team}}",
        "app",
    ]);
    // As dockerd: the configuration as given (no gateway was), not the one IPAM picked.
    assert_eq!(sub.ok().trim(), format!("{subnet}  blue"));
    let filtered = d.docker(&[
        "network",
        "ls",
        "-q",
        "--no-trunc",
        "--filter",
        "label=team=blue",
    ]);
    assert_eq!(filtered.ok().trim(), id);
    let custom = d.docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "type=custom",
    ]);
    assert_eq!(custom.ok().trim(), "app");
    let bridge_subnet = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "bridge",
    ]);
    assert_eq!(bridge_subnet.ok().trim(), d.subnet());

    // Connect a running container: a second interface on the user network.
    d.docker(&["run", "-d", "--name", "web1", "busybox", "sleep", "300"])
        .ok();
    d.docker(&["network", "connect", "app", "web1"]).ok();
    let ip = d.docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.app.IPAddress}}",
        "web1",
    ]);
    assert_eq!(ip.ok().trim(), format!("10.214.{n}.2"));
    let addr = d.docker(&["exec", "web1", "ip", "-4", "addr", "show", "eth1"]);
    assert!(
        addr.ok().contains(&format!("10.214.{n}.2/24")),
        "{}",
        addr.stdout
    );
    let ping = d.docker(&[
        "exec",
        "web1",
        "ping",
        "-c1",
        "-W2",
        &format!("10.214.{n}.1"),
    ]);
    assert!(ping.success(), "{}", ping.stderr);
    let members = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        "app",
    ]);
    assert_eq!(members.ok().trim(), format!("web1 10.214.{n}.2/24"));

    // Refusals, as Docker words them.
    let rm = d.docker(&["network", "rm", "app"]);
    assert_ne!(rm.status, 0);
    assert!(rm.stderr.contains("has active endpoints"), "{}", rm.stderr);
    let rm = d.docker(&["network", "rm", "bridge"]);
    assert!(
        rm.stderr
            .contains("bridge is a pre-defined network and cannot be removed"),
        "{}",
        rm.stderr
    );
    let missing = d.docker(&["network", "inspect", "nosuchnet"]);
    assert!(
        missing.stderr.contains("network nosuchnet not found"),
        "{}",
        missing.stderr
    );

    // A restart keeps the user network, its bridge and the lease.
    d.kill9();
    d.restart();
    assert!(link_exists(&br), "user bridge survives a restart");
    let again = d.docker(&["network", "inspect", "-f", "{{.Id}}", "app"]);
    assert_eq!(again.ok().trim(), id);

    d.docker(&["rm", "-f", "web1"]).ok();
    d.docker(&["network", "rm", "app"]).ok();
    assert!(!link_exists(&br), "bridge removed with the network");
    let state = d.data_root().join(format!("network/bridge/{id}.json"));
    assert!(!state.exists());

    // prune removes unused custom networks only.
    let other = format!("10.215.{n}.0/24");
    let id2 = d
        .docker(&["network", "create", "--subnet", &other, "spare"])
        .ok()
        .trim()
        .to_string();
    guard.user_bridges.push(format!("br-{}", &id2[..12]));
    // `until` in Docker's forms: a network made since is kept; a bad value is refused.
    for until in ["until=1h", "until=2001-01-01", "until=1000000000"] {
        let kept = d.docker(&["network", "prune", "-f", "--filter", until]);
        assert!(!kept.ok().contains("spare"), "{until}: {}", kept.stdout);
    }
    let bad = d.docker(&["network", "prune", "-f", "--filter", "until=soon"]);
    assert!(
        bad.stderr
            .contains("failed to parse value as time or duration: \"soon\""),
        "{}",
        bad.stderr
    );
    let pruned = d.docker(&["network", "prune", "-f", "--filter", "until=-1m"]);
    assert!(pruned.ok().contains("spare"), "{}", pruned.stdout);
    let ls = d
        .docker(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .to_string();
    assert_eq!(ls.lines().count(), 3, "{ls}");
}
