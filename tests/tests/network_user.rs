//! Containers started on user networks with the stock docker CLI (issue 6): `--network NAME`
//! joins at start, `--network-alias` and `--ip` (Docker's refusals on the default bridge and on
//! networks without a configured subnet), `network connect --alias --ip`, what `inspect` shows,
//! name/alias resolution through the embedded DNS at 127.0.0.11 and isolation from another
//! network, and that removal leaves nothing in `ip link`, the nft ruleset or the IPAM state.
//! Traffic only to the test's own containers.

mod network_support;

use berth_tests::TestDaemon;
use network_support::{leases, sh, Guard};
use serde_json::json;
use std::process::Command;

/// A user network on `subnet`; its bridge is registered with the guard.
fn network(d: &TestDaemon, g: &mut Guard, name: &str, subnet: Option<&str>) -> String {
    let mut args = vec!["network", "create"];
    if let Some(s) = subnet {
        args.extend(["--subnet", s]);
    }
    args.push(name);
    let id = d.docker(&args).ok().trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    g.user_bridges.push(format!("br-{}", &id[..12]));
    id
}

/// A busybox web server on `app` (serving /etc) with the alias `www`.
fn web(d: &TestDaemon, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--network", "app", "--name", name];
    args.extend(["--network-alias", "www"]);
    args.extend(extra);
    args.extend(["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    d.docker(&args).ok();
}

fn inspect(d: &TestDaemon, format: &str, what: &str) -> String {
    d.docker(&["inspect", "-f", format, what])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name_and_alias() {
    let n: String;
    let pools;
    {
        let probe = TestDaemon::builder().prepare();
        n = probe.subnet().split('.').nth(2).unwrap_or("2").to_string();
        pools =
            json!({"default-address-pools": [{"base": format!("10.219.{n}.0/24"), "size": 24}]});
    }
    let mut d = TestDaemon::builder().config_json(pools).start();
    let mut g = Guard::new(&d);
    d.import_busybox();
    let app_subnet = format!("10.216.{n}.0/24");
    let app = network(&d, &mut g, "app", Some(&app_subnet));
    let other = network(&d, &mut g, "other", Some(&format!("10.217.{n}.0/24")));

    // Docker's refusals, before anything is created.
    let bad = d.docker(&["run", "--ip", "10.1.2.3", "busybox", "true"]);
    assert!(
        bad.stderr
            .contains("user specified IP address is supported on user defined networks only"),
        "{}",
        bad.stderr
    );
    let bad = d.docker(&["run", "--network-alias", "x", "busybox", "true"]);
    // (the CLI itself refuses this one before asking the daemon)
    assert!(
        bad.stderr.contains("network-scoped alias"),
        "{}",
        bad.stderr
    );
    let bad = d.docker(&["run", "--network", "nosuchnet", "busybox", "true"]);
    assert!(
        bad.stderr.contains("network nosuchnet not found"),
        "{}",
        bad.stderr
    );
    let pooled = network(&d, &mut g, "pooled", None);
    let bad = d.docker(&[
        "run",
        "--network",
        "pooled",
        "--ip",
        &format!("10.219.{n}.9"),
        "busybox",
        "true",
    ]);
    assert!(
        bad.stderr.contains("user specified IP address is supported only when connecting to networks with user configured subnets"),
        "{}",
        bad.stderr
    );

    // Two web servers on `app`, one with a fixed address; both answer to the alias `www`.
    let fixed = format!("10.216.{n}.77");
    web(&d, "web1", &[]);
    web(&d, "web2", &["--ip", &fixed]);
    assert_eq!(
        inspect(&d, "{{.NetworkSettings.Networks.app.IPAddress}}", "web2"),
        fixed
    );
    assert_eq!(
        inspect(
            &d,
            "{{.NetworkSettings.Networks.app.IPAMConfig.IPv4Address}} {{.NetworkSettings.Networks.app.Aliases}} {{.NetworkSettings.Networks.app.Gateway}} {{.NetworkSettings.Networks.app.NetworkID}}",
            "web2"
        ),
        format!("{fixed} [www] 10.216.{n}.1 {app}")
    );
    let ep = inspect(
        &d,
        "{{.NetworkSettings.Networks.app.EndpointID}} {{.NetworkSettings.Networks.app.MacAddress}}",
        "web1",
    );
    assert!(ep.len() > 64 && ep.contains("02:42:"), "{ep}");
    let ip1 = inspect(&d, "{{.NetworkSettings.Networks.app.IPAddress}}", "web1");
    assert!(ip1.starts_with(&format!("10.216.{n}.")), "{ip1}");
    let taken = d.docker(&["run", "--network", "app", "--ip", &fixed, "busybox", "true"]);
    assert_ne!(taken.status, 0);
    assert!(
        taken.stderr.contains("Address already in use"),
        "{}",
        taken.stderr
    );

    // Traffic by address between the two.
    let ping = d.docker(&["exec", "web1", "ping", "-c1", "-W2", &fixed]);
    assert!(ping.success(), "{}", ping.stderr);

    // Names through the embedded DNS: container name, alias, short id.
    let resolv = d.docker(&["exec", "web1", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.ok().contains("nameserver 127.0.0.11"),
        "{}",
        resolv.stdout
    );
    let hosts = d.docker(&["exec", "web2", "cat", "/etc/hosts"]);
    assert!(
        hosts.ok().contains(&format!("{fixed}\t")),
        "{}",
        hosts.stdout
    );
    let ping = d.docker(&["exec", "web1", "ping", "-c1", "-W2", "web2"]);
    assert!(ping.success(), "{}", ping.stderr);
    assert!(ping.stdout.contains(&fixed), "{}", ping.stdout);
    let host1 = inspect(&d, "{{.Config.Hostname}}", "web1");
    let got = d.docker(&["exec", "web2", "wget", "-qO-", "http://web1/hostname"]);
    assert_eq!(got.ok().trim(), host1);
    let got = d.docker(&["exec", "web1", "wget", "-qO-", "http://www/hostname"]);
    assert!(!got.ok().trim().is_empty());
    let id2 = inspect(&d, "{{.Id}}", "web2");
    let ping = d.docker(&["exec", "web1", "ping", "-c1", "-W2", &id2[..12]]);
    assert!(ping.stdout.contains(&fixed), "{}", ping.stdout);
    // The default bridge keeps the host's resolvers.
    let plain = d.docker(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!plain.ok().contains("127.0.0.11"), "{}", plain.stdout);

    // Another network can neither resolve nor reach them (its unknown names go to --dns
    // 127.0.0.1, on this host, where nothing answers).
    d.docker(&[
        "run",
        "-d",
        "--network",
        "other",
        "--dns",
        "127.0.0.1",
        "--name",
        "outsider",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let cut = d.docker(&["exec", "outsider", "ping", "-c1", "-W1", &fixed]);
    assert_ne!(cut.status, 0, "another network can't reach app");
    let cut = d.docker(&["exec", "outsider", "ping", "-c1", "-W1", "web2"]);
    assert!(
        cut.stderr.contains("bad address"),
        "{} {}",
        cut.stdout,
        cut.stderr
    );

    // A stopped container keeps its endpoint configuration and gets it back at start.
    d.docker(&["stop", "-t", "1", "web2"]).ok();
    assert_eq!(
        inspect(
            &d,
            "{{.NetworkSettings.Networks.app.IPAddress}}|{{.NetworkSettings.Networks.app.Aliases}}",
            "web2"
        ),
        "|[www]"
    );
    d.docker(&["start", "web2"]).ok();
    assert_eq!(
        inspect(&d, "{{.NetworkSettings.Networks.app.IPAddress}}", "web2"),
        fixed
    );

    // A crash of berthd: the names still resolve after the restart.
    d.kill9();
    d.restart();
    let ping = d.docker(&["exec", "web2", "ping", "-c1", "-W2", "web1"]);
    assert!(
        ping.stdout.contains(&ip1),
        "{} {}",
        ping.stdout,
        ping.stderr
    );

    // connect --alias --ip on a running container.
    let joined_ip = format!("10.216.{n}.99");
    d.docker(&[
        "network", "connect", "--alias", "side", "--ip", &joined_ip, "app", "outsider",
    ])
    .ok();
    assert_eq!(
        inspect(
            &d,
            "{{.NetworkSettings.Networks.app.IPAddress}} {{.NetworkSettings.Networks.app.Aliases}}",
            "outsider"
        ),
        format!("{joined_ip} [side]")
    );
    let ping = d.docker(&["exec", "outsider", "ping", "-c1", "-W2", &ip1]);
    assert!(ping.success(), "{}", ping.stderr);
    d.docker(&["network", "disconnect", "app", "outsider"]).ok();

    // Removal leaves nothing: veths, rules, leases.
    d.docker(&["rm", "-f", "web1", "web2", "outsider"]).ok();
    for id in [&app, &other] {
        let br = format!("br-{}", &id[..12]);
        let left = network_support::ports_left(&br);
        assert!(left.is_empty(), "no port on {br}: {left:?}");
        let state = leases(&d, id);
        assert!(state.trim().is_empty(), "no lease left: {state}");
    }
    let nft = sh("nft", &["list", "ruleset"]);
    for ip in [&ip1, &fixed, &joined_ip] {
        assert!(!nft.contains(&format!("{ip} ")), "no rule mentions {ip}");
    }
    for name in ["app", "other", "pooled"] {
        d.docker(&["network", "rm", name]).ok();
    }
    let _ = pooled;
    d.stop();
}

#[test]
fn leases_of_containers_that_died_while_berthd_was_down_are_freed() {
    let mut d = TestDaemon::start();
    let _g = Guard::new(&d);
    d.import_busybox();
    d.docker(&["run", "-d", "--name", "gone", "busybox", "sleep", "300"])
        .ok();
    let ip = inspect(&d, "{{.NetworkSettings.IPAddress}}", "gone");
    let pid = inspect(&d, "{{.State.Pid}}", "gone");
    assert!(
        leases(&d, "bridge").contains(&ip),
        "{}",
        leases(&d, "bridge")
    );
    // berthd dies, then the container: its namespace and veth go with it.
    d.kill9();
    let _ = Command::new("kill").args(["-9", &pid]).status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sh("ip", &["-o", "link", "show", "master", d.bridge()]).contains("veth")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.restart();
    assert!(
        !leases(&d, "bridge").contains(&ip),
        "the lease is freed: {}",
        leases(&d, "bridge")
    );
    let status = inspect(&d, "{{.State.Status}}", "gone");
    assert_eq!(status, "exited");
    // Nothing else was dropped: a new container gets a lease of its own.
    d.docker(&["run", "-d", "--name", "next", "busybox", "sleep", "300"])
        .ok();
    let next = inspect(&d, "{{.NetworkSettings.IPAddress}}", "next");
    assert!(
        leases(&d, "bridge").contains(&next),
        "{}",
        leases(&d, "bridge")
    );
    d.docker(&["rm", "-f", "gone", "next"]).ok();
}
