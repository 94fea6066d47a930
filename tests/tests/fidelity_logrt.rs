//! Differential tests of issue 16's log and runtime config, bind propagation, `info`
//! security options and `untag` events: the same calls against berthd and a private real
//! dockerd (skipped, with a message, where dockerd is not installed), the answers compared.

mod fidelity_logrt_support;

use berth_tests::TestDaemon;
use fidelity_logrt_support::{engines, host_mounted, Engine, SharedMount};
use serde_json::{json, Value};

/// Creates a container from `body`'s fields (busybox, `true`, no network): (status, answer).
fn create(e: &dyn Engine, host_config: Value) -> (u16, Value) {
    let body = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config});
    e.api("POST", "/containers/create", Some(&body))
}

/// The id a successful create answered with.
#[track_caller]
fn created(e: &dyn Engine, host_config: Value) -> String {
    let (code, v) = create(e, host_config);
    assert_eq!(code, 201, "{}: create: {v}", e.name());
    v["Id"].as_str().expect("an Id").to_string()
}

#[test]
fn log_config_and_runtime_as_dockerd() {
    let Some((d, real)) = engines() else {
        return;
    };
    let both: [&dyn Engine; 2] = [&d, &real];
    // An empty Type is the daemon's log-driver (json-file), the given options kept.
    let lc = json!({"Type": "", "Config": {"max-size": "1m", "max-file": "2"}});
    let shown: Vec<Value> = both
        .iter()
        .map(|e| {
            let id = created(*e, json!({"NetworkMode": "none", "LogConfig": lc}));
            e.inspect(&id)["HostConfig"]["LogConfig"].clone()
        })
        .collect();
    assert_eq!(
        shown[0],
        json!({"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}})
    );
    assert_eq!(shown[0], shown[1]);
    // An unknown driver: 400 with Docker's text, on both.
    let refused: Vec<(u16, Value)> = both
        .iter()
        .map(|e| create(*e, json!({"LogConfig": {"Type": "nosuchdriver"}})))
        .collect();
    assert_eq!(refused[0].0, 400, "{:?}", refused[0]);
    assert_eq!(refused[0], refused[1]);
    // HostConfig.Runtime: the default runtime's name when none is asked for; `runc` kept.
    for e in both {
        let default = e.ok(&["info", "--format", "{{.DefaultRuntime}}"]);
        let id = created(e, json!({"NetworkMode": "none"}));
        assert_eq!(e.inspect(&id)["HostConfig"]["Runtime"], json!(default));
        let id = created(e, json!({"NetworkMode": "none", "Runtime": "runc"}));
        assert_eq!(
            e.inspect(&id)["HostConfig"]["Runtime"],
            "runc",
            "{}",
            e.name()
        );
    }
    let unknown: Vec<(u16, Value)> = both
        .iter()
        .map(|e| create(*e, json!({"Runtime": "nosuchruntime"})))
        .collect();
    assert_eq!(unknown[0].0, 400, "{:?}", unknown[0]);
    assert_eq!(unknown[0], unknown[1]);
}

/// daemon.json's `log-driver` and `log-opts` are the defaults a create completes (berthd
/// only: the private dockerd's daemon.json is fixed).
#[test]
fn daemon_json_log_driver_and_opts() {
    let d = TestDaemon::builder()
        .config_json(json!({"log-driver": "json-file", "log-opts": {"max-size": "2m"}}))
        .start();
    d.import_busybox();
    let id = created(
        &d,
        json!({"LogConfig": {"Type": "", "Config": {"max-file": "3"}}}),
    );
    assert_eq!(
        d.inspect(&id)["HostConfig"]["LogConfig"],
        json!({"Type": "json-file", "Config": {"max-size": "2m", "max-file": "3"}})
    );
    let id = created(&d, json!({"LogConfig": {"Type": "none"}}));
    assert_eq!(
        d.inspect(&id)["HostConfig"]["LogConfig"],
        json!({"Type": "none", "Config": {}})
    );
    let none = TestDaemon::builder()
        .config_json(json!({"log-driver": "none"}))
        .start();
    none.import_busybox();
    let id = created(&none, json!({}));
    assert_eq!(none.inspect(&id)["HostConfig"]["LogConfig"]["Type"], "none");
    let out = none.docker(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(out.ok(), "hi\n");
}

/// What a container with `-v <shared tmpfs>/<sub>:/m:<prop>` sees: (the host sees a mount
/// made in the container, the container sees a mount made on the host afterwards), and its
/// `Mounts[0]` (Type, Mode, RW, Propagation).
/// `runtime` is the engine's default when empty.
fn propagation_seen(
    e: &dyn Engine,
    shared: &SharedMount,
    prop: &str,
    runtime: &str,
) -> (bool, bool, Value) {
    let sub = shared.path().join(format!("{}{runtime}-{prop}", e.name()));
    std::fs::create_dir_all(sub.join("outer")).expect("mkdir");
    let name = format!("prop-{prop}");
    let bind = format!("{}:/m:{prop}", sub.display());
    let script = "mkdir -p /m/inner && mount -t tmpfs none /m/inner && touch /m/ready && sleep 300";
    let rt = match runtime {
        "" => vec![],
        r => vec!["--runtime", r],
    };
    e.ok(&[
        &["run", "-d", "--name", &name][..],
        &rt,
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--network",
            "none",
            "-v",
            &bind,
            "busybox",
            "sh",
            "-c",
            script,
        ],
    ]
    .concat());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sub.join("ready").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let outer = sub.join("outer").display().to_string();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "none", &outer])
        .status()
        .expect("mount");
    assert!(st.success());
    let host_sees = host_mounted(&sub.join("inner"));
    let (_, n, _) = e.cli(&[
        "exec",
        &name,
        "grep",
        "-c",
        " /m/outer ",
        "/proc/self/mountinfo",
    ]);
    let m = &e.inspect(&name)["Mounts"][0];
    let shown = json!({"Type": m["Type"], "Mode": m["Mode"], "RW": m["RW"], "Propagation": m["Propagation"]});
    e.ok(&["rm", "-f", &name]);
    (host_sees, n.trim() == "1", shown)
}

#[test]
fn bind_propagation_as_dockerd() {
    let Some((d, real)) = engines() else {
        return;
    };
    let shared = SharedMount::new();
    for (prop, expect) in [
        ("rshared", (true, true)),
        ("shared", (true, true)),
        ("rslave", (false, true)),
        ("slave", (false, true)),
        ("private", (false, false)),
        ("rprivate", (false, false)),
    ] {
        let ours = propagation_seen(&d, &shared, prop, "");
        let theirs = propagation_seen(&real, &shared, prop, "");
        // berth's OCI backend (runc) gets the same spec.
        let runc = propagation_seen(&d, &shared, prop, "runc");
        assert_eq!(ours, runc, "{prop}, berthd with runc");
        assert_eq!((ours.0, ours.1), expect, "berthd, {prop}: {ours:?}");
        assert_eq!(ours, theirs, "{prop}");
        assert_eq!(ours.2["Propagation"], prop);
    }
    // No propagation asked for: rprivate shown.
    let plain = format!("{}:/m", shared.path().display());
    let shown: Vec<Value> = [&d as &dyn Engine, &real]
        .iter()
        .map(|e| {
            let id = e.ok(&[
                "create",
                "--network",
                "none",
                "-v",
                &plain,
                "busybox",
                "true",
            ]);
            e.inspect(&id)["Mounts"][0]["Propagation"].clone()
        })
        .collect();
    assert_eq!(shown, [json!("rprivate"), json!("rprivate")]);
    // A source that is not on a shared (or slave) mount: Docker's error at start.
    let private = tempfile::Builder::new()
        .prefix("berth-noprop-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    for prop in ["rshared", "rslave"] {
        let bind = format!("{}:/m:{prop}", private.path().display());
        let args = ["run", "--network", "none", "-v", &bind, "busybox", "true"];
        let (ok_d, _, err_d) = d.cli(&args);
        let (ok_r, _, err_r) = real.cli(&args);
        assert!(!ok_d && !ok_r, "{prop}: {err_d} / {err_r}");
        let text = |e: &str| {
            e.lines()
                .find(|l| l.contains("Error response from daemon"))
                .unwrap_or("")
                .to_string()
        };
        assert!(text(&err_d).contains("is mounted on"), "{err_d}");
        assert_eq!(text(&err_d), text(&err_r), "{prop}");
    }
}

#[test]
fn info_security_options_as_dockerd() {
    let Some((d, real)) = engines() else {
        return;
    };
    let get = |e: &dyn Engine| -> Value {
        let (code, v) = e.api("GET", "/info", None);
        assert_eq!(code, 200);
        v["SecurityOptions"].clone()
    };
    let ours = get(&d);
    // dockerd before 23.0 named the built-in seccomp profile `default`; the issue asks for
    // today's name, `builtin`.
    let theirs: Vec<String> = get(&real)
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .map(|s| s.replace("profile=default", "profile=builtin"))
        .collect();
    assert_eq!(ours, json!(theirs));
}

/// The image events of `docker tag lab:1 x:1; docker rmi x:1; docker rmi lab:1` (`lab:1` an
/// image with a label, committed first) as JSON (`Action`, `Actor`), the image's ID replaced
/// by `ID`.
fn untag_events(e: &dyn Engine) -> Vec<Value> {
    let cid = e.ok(&["create", "--network", "none", "busybox", "true"]);
    e.ok(&["commit", "-c", "LABEL team=blue", &cid, "lab:1"]);
    e.ok(&["rm", &cid]);
    let id = e.ok(&["image", "inspect", "--format", "{{.Id}}", "lab:1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let t0 = chrono_now();
    e.ok(&["tag", "lab:1", "x:1"]);
    e.ok(&["rmi", "x:1"]);
    e.ok(&["rmi", "lab:1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let t1 = chrono_now();
    let out = e.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "type=image",
        "--format",
        "{{json .}}",
    ]);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(&l.replace(&id, "ID")).ok())
        .map(|v| json!({"Action": v["Action"], "Actor": v["Actor"]}))
        .collect()
}

/// Seconds since the epoch, as `docker events --since` takes them.
fn chrono_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

#[test]
fn untag_events_name_the_image_id_as_dockerd() {
    let Some((d, real)) = engines() else {
        return;
    };
    let ours = untag_events(&d);
    let untag = json!({"Action": "untag", "Actor": {"ID": "ID", "Attributes": {"name": "ID", "team": "blue"}}});
    assert!(ours.contains(&untag), "{ours:?}");
    assert_eq!(ours, untag_events(&real));
}

/// `HostConfig.Mounts` binds with `BindOptions.Propagation`: shown in inspect, and an unknown
/// one refused, as dockerd does.
#[test]
fn mount_api_bind_propagation_as_dockerd() {
    let Some((d, real)) = engines() else {
        return;
    };
    let src = tempfile::Builder::new()
        .prefix("berth-mountprop-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let src = src.path().display().to_string();
    let mount = |prop: &str| {
        json!({"NetworkMode": "none", "Mounts": [{"Type": "bind", "Source": src, "Target": "/m",
            "BindOptions": {"Propagation": prop}}]})
    };
    for prop in ["rslave", "shared", ""] {
        let shown: Vec<Value> = [&d as &dyn Engine, &real]
            .iter()
            .map(|e| {
                let id = created(*e, mount(prop));
                let m = e.inspect(&id)["Mounts"][0].clone();
                json!({"Type": m["Type"], "Mode": m["Mode"], "RW": m["RW"], "Propagation": m["Propagation"]})
            })
            .collect();
        assert_eq!(shown[0], shown[1], "{prop:?}");
    }
    // A named volume with a propagation (`-v name:/m:rslave`, or BindOptions): refused.
    let vol = json!({"Binds": ["propvol:/m:rslave"]});
    let vol_mount = json!({"Mounts": [{"Type": "volume", "Source": "propvol", "Target": "/m",
        "BindOptions": {"Propagation": "rslave"}}]});
    // (dockerd 20.10 answers the `-v` form with a 500; later ones, as berthd, with a 400.)
    for hc in [vol, vol_mount] {
        let refused: Vec<(u16, Value)> = [&d as &dyn Engine, &real]
            .iter()
            .map(|e| create(*e, hc.clone()))
            .collect();
        assert_eq!(refused[0].0, 400, "{:?}", refused[0]);
        assert!(refused[1].0 >= 400, "{:?}", refused[1]);
        assert_eq!(refused[0].1, refused[1].1);
    }
    let refused: Vec<(u16, Value)> = [&d as &dyn Engine, &real]
        .iter()
        .map(|e| create(*e, mount("sideways")))
        .collect();
    assert_eq!(refused[0].0, 400, "{:?}", refused[0]);
    assert_eq!(refused[0], refused[1]);
}
