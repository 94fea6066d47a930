//! Container and image events through the stock docker CLI (issue 4), compared with what
//! dockerd emits: the lifecycle of `run`/`rm` (create, attach, start, die with exitCode,
//! destroy), exec (`exec_create: CMD`, `exec_start: CMD`, `exec_die`), stop's `kill` events,
//! rename's `oldName`, image tag/untag, network connect/disconnect around start and die;
//! `--since`/`--until` windows, `--filter` by container,
//! event, type and image; and the live stream.

use berth_tests::TestDaemon;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now as `seconds.nanoseconds`, the form `--since`/`--until` take.
fn now() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The events between `since` and `until` with `filters`, as JSON objects.
fn events(d: &TestDaemon, since: &str, until: &str, filters: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "events",
        "--since",
        since,
        "--until",
        until,
        "--format",
        "{{json .}}",
    ];
    for f in filters {
        args.extend(["--filter", f]);
    }
    d.docker(&args)
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

/// `Type Action` of each event.
fn actions(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| {
            format!(
                "{} {}",
                e["Type"].as_str().unwrap_or(""),
                e["Action"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn lifecycle_exec_stop_and_image_events_with_windows_and_filters() {
    let d = TestDaemon::start();
    d.import_busybox();
    let since = now();
    let run = d.docker(&[
        "run",
        "--name",
        "ev1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(run.status, 3);
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "ev1"])
        .ok()
        .trim()
        .to_string();
    d.docker(&["rm", "ev1"]).ok();
    d.docker(&["tag", "busybox", "ev:1"]).ok();
    d.docker(&["rmi", "ev:1"]).ok();
    let middle = now();
    std::thread::sleep(Duration::from_millis(50));
    d.sleeper("ev2");
    assert_eq!(d.docker(&["exec", "ev2", "sh", "-c", "exit 4"]).status, 4);
    d.docker(&["rename", "ev2", "ev3"]).ok();
    d.docker(&["stop", "-t", "0", "ev3"]).ok();
    let until = now();

    // The first window: run and rm of ev1, then the image's tag and untag, in order.
    let first = events(&d, &since, &middle, &[]);
    assert_eq!(
        actions(&first),
        [
            "container create",
            "container attach",
            "container start",
            "container die",
            "container destroy",
            "image tag",
            "image untag"
        ],
        "{first:#?}"
    );
    for e in &first[..5] {
        assert_eq!(e["Actor"]["ID"], id.as_str(), "{e}");
        assert_eq!(e["id"], id.as_str(), "legacy id: {e}");
        assert_eq!(e["status"], e["Action"], "legacy status: {e}");
        assert_eq!(e["from"], "busybox", "legacy from: {e}");
        assert_eq!(e["Actor"]["Attributes"]["name"], "ev1", "{e}");
        assert_eq!(e["Actor"]["Attributes"]["image"], "busybox", "{e}");
        assert_eq!(e["scope"], "local");
        let (t, nanos) = (
            e["time"].as_i64().unwrap_or(0),
            e["timeNano"].as_i64().unwrap_or(0),
        );
        assert_eq!(nanos / 1_000_000_000, t, "{e}");
    }
    assert_eq!(first[3]["Actor"]["Attributes"]["exitCode"], "3");
    let image_id = d
        .docker(&["inspect", "-f", "{{.Id}}", "busybox"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(first[5]["Actor"]["ID"], image_id.as_str());
    assert_eq!(first[5]["Actor"]["Attributes"]["name"], "ev:1");

    // The second window: ev2's life, exec and stop as Docker reports them.
    let second = events(&d, &middle, &until, &[]);
    let acts = actions(&second);
    assert_eq!(
        acts,
        [
            "container create",
            "container start",
            "container exec_create: sh -c exit 4",
            "container exec_start: sh -c exit 4",
            "container exec_die",
            "container rename",
            "container kill",
            "container kill",
            "container die",
            "container stop"
        ],
        "{second:#?}"
    );
    let exec_id = second[2]["Actor"]["Attributes"]["execID"].clone();
    assert!(
        exec_id.as_str().is_some_and(|s| s.len() == 64),
        "{}",
        second[2]
    );
    assert_eq!(second[3]["Actor"]["Attributes"]["execID"], exec_id);
    assert_eq!(second[4]["Actor"]["Attributes"]["execID"], exec_id);
    assert_eq!(second[4]["Actor"]["Attributes"]["exitCode"], "4");
    assert_eq!(second[5]["Actor"]["Attributes"]["name"], "ev3");
    assert_eq!(second[5]["Actor"]["Attributes"]["oldName"], "/ev2");
    // stop -t 0: the stop signal, then SIGKILL at once.
    assert_eq!(second[6]["Actor"]["Attributes"]["signal"], "15");
    assert_eq!(second[7]["Actor"]["Attributes"]["signal"], "9");
    assert_eq!(
        second[8]["Actor"]["Attributes"]["exitCode"], "137",
        "sleep ignores TERM as PID 1"
    );

    // Filters: by container name, event (an exec action matches its prefix), type, image.
    let all = |f: &[&str]| actions(&events(&d, &since, &until, f));
    assert_eq!(all(&["container=ev1", "event=die"]), ["container die"]);
    assert_eq!(
        all(&["event=exec_start"]),
        ["container exec_start: sh -c exit 4"]
    );
    assert_eq!(all(&["type=image"]), ["image tag", "image untag"]);
    assert_eq!(
        all(&["event=destroy", "event=stop"]),
        ["container destroy", "container stop"]
    );
    let by_image = all(&["image=busybox", "type=container"]);
    assert_eq!(by_image.len(), 5 + 10, "{by_image:?}");
    assert!(all(&["container=nosuch"]).is_empty());
    d.docker(&["rm", "ev3"]).ok();
}

#[test]
fn live_stream_follows_a_container() {
    let d = TestDaemon::start();
    d.import_busybox();
    let stream = d.docker_lines(&[
        "events",
        "--filter",
        "container=live",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    // Subscribed before the run: wait until the stream is open (a hang guard).
    for _ in 0..200 {
        let (_, _, body) = d.request("GET", "/info", None);
        if body.contains("\"NEventsListener\":1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    d.docker(&[
        "run",
        "--rm",
        "--name",
        "live",
        "--network",
        "none",
        "busybox",
        "true",
    ])
    .ok();
    let mut seen = Vec::new();
    while let Some(line) = stream.next(Duration::from_secs(60)) {
        seen.push(line);
        if seen.last().is_some_and(|l| l.starts_with("destroy")) {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "create live",
            "attach live",
            "start live",
            "die live",
            "destroy live"
        ]
    );
}

#[test]
fn a_container_on_the_bridge_connects_and_disconnects() {
    let d = TestDaemon::start();
    d.import_busybox();
    let since = now();
    let id = d
        .docker(&["run", "-d", "--name", "nb", "busybox", "true"])
        .ok()
        .trim()
        .to_string();
    d.docker(&["wait", "nb"]).ok();
    d.docker(&["rm", "nb"]).ok();
    std::thread::sleep(Duration::from_millis(100));
    let evs = events(&d, &since, &now(), &[]);
    // dockerd's order: the endpoint joins before start and leaves after die.
    assert_eq!(
        actions(&evs),
        [
            "container create",
            "network connect",
            "container start",
            "container die",
            "network disconnect",
            "container destroy"
        ],
        "{evs:?}"
    );
    for e in evs.iter().filter(|e| e["Type"] == "network") {
        assert_eq!(e["Actor"]["Attributes"]["container"], id.as_str(), "{e}");
        assert_eq!(e["Actor"]["Attributes"]["name"], "bridge", "{e}");
        assert_eq!(e["Actor"]["Attributes"]["type"], "bridge", "{e}");
    }
}
