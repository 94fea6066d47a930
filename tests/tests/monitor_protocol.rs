//! The daemon ↔ monitor protocol (`berth-monitor-proto`, monitor/PROTOCOL.md): every message
//! round-trips; a real monitor answers a version 1 request (no `version`), answers an unknown
//! command and an oversized or malformed line with a typed error and goes on serving; and
//! through berthd a missing command is exit code 127, a non-executable one 126, with Docker's
//! 400.

mod runtime_support;

use berth_core::storage::Mount;
use berth_monitor_proto::{
    decode, encode, Command, ExitRecord, Failure, MonitorConfig, ProtoError, Ready, Reply, Request,
    RunStatus, RuntimeChoice, StateFile, MAX_LINE, PROTOCOL_VERSION,
};
use runtime_support::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

fn round_trip<T>(v: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let line = encode(v).expect("encode");
    assert_eq!(line.last(), Some(&b'\n'));
    let back: T = decode(&line).expect("decode");
    assert_eq!(&back, v, "{}", String::from_utf8_lossy(&line));
}

#[test]
fn every_message_round_trips() {
    let commands = [
        Command::Start { wait: true },
        Command::Attach {
            stdin: true,
            stdout: false,
            stderr: true,
        },
        Command::Resize { h: 30, w: 100 },
        Command::Kill {
            signal: 9,
            all: true,
        },
        Command::Wait,
        Command::Pause,
        Command::Resume,
        Command::State,
        Command::Reopen,
    ];
    assert_eq!(commands.len(), Command::NAMES.len());
    for c in commands {
        let r = Request::new(c.clone());
        round_trip(&r);
        let line = r.encode().expect("encode");
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["cmd"], c.name());
        assert_eq!(v["version"], PROTOCOL_VERSION);
        assert_eq!(Request::decode(&line).expect("decode").command, c);
    }
    for r in [
        Reply::Ok,
        Reply::State {
            pid: 42,
            status: RunStatus::Paused,
        },
        Reply::Failure(Failure {
            error: "exec: \"nope\": executable file not found in $PATH".into(),
            exit_code: Some(127),
        }),
        Reply::failure("no"),
    ] {
        round_trip(&r);
    }
    assert_eq!(encode(&Reply::Ok).expect("encode"), b"{\"ok\":true}\n");
    for r in [
        Ready::Ready {
            pid: 7,
            monitor_pid: 8,
        },
        Ready::Failed(Failure {
            error: "exec: \"/etc/x\": permission denied".into(),
            exit_code: Some(126),
        }),
    ] {
        round_trip(&r);
    }
    let mut cfg = MonitorConfig::new(
        "abc",
        "/b",
        RuntimeChoice {
            name: "runc".into(),
            driver: "runc".into(),
            plugin: "berth-runtime-oci".into(),
            version: "0.1.0".into(),
            library: "/usr/lib/berth/plugins/libberth_runtime_oci.so".into(),
            config: serde_json::json!({"path": "/usr/sbin/runc", "args": ["--debug"]}),
        },
    );
    cfg.rootfs_mounts = vec![Mount {
        fstype: "overlay".into(),
        source: "overlay".into(),
        options: vec!["lowerdir=/l".into()],
    }];
    cfg.console_size = Some([30, 100]);
    cfg.log_max_size = Some(1 << 20);
    round_trip(&cfg);
    let native = RuntimeChoice {
        name: "native".into(),
        driver: "native".into(),
        plugin: "berth-runtime-native".into(),
        version: "0.1.0".into(),
        library: "/usr/lib/berth/plugins/libberth_runtime_native.so".into(),
        config: serde_json::Value::Null,
    };
    round_trip(&MonitorConfig::new("n", "/b", native));
    round_trip(&StateFile {
        monitor_pid: 1,
        pid: 2,
        started_at: "2026-12-06T00:00:00.000000001Z".into(),
        version: Some(PROTOCOL_VERSION),
    });
    round_trip(&ExitRecord {
        exit_code: 137,
        oom_killed: true,
        finished_at: "2026-12-06T00:00:00.000000001Z".into(),
        error: String::new(),
    });
    // A monitor.json naming its runtime the old way (`{"kind": …}`, before runtimes were
    // plugins) is refused with an error, not misread: a monitor only reads the configuration
    // its own berthd wrote, so none is left to read after an upgrade.
    let old: Result<MonitorConfig, _> =
        decode(br#"{"id":"x","bundle":"/b","runtime":{"kind":"native"},"log_path":null}"#);
    assert!(old.is_err(), "the pre-plugin runtime selector is refused");
    // What older berthds and monitors wrote still reads.
    let old: StateFile =
        decode(br#"{"monitor_pid":1,"pid":2,"started_at":"t"}"#).expect("v1 state.json");
    assert_eq!(old.version, None);
    let v1 = Request::decode(br#"{"cmd":"kill","signal":15}"#).expect("v1 request");
    assert_eq!(v1.version(), 1);
    assert_eq!(
        v1.command,
        Command::Kill {
            signal: 15,
            all: false
        }
    );
    assert_eq!(
        Request::decode(br#"{"cmd":"nope"}"#),
        Err(ProtoError::UnknownCommand("nope".into()))
    );
    assert_eq!(
        Request::decode(br#"{"version":99,"cmd":"state"}"#),
        Err(ProtoError::Version { got: 99 })
    );
    assert!(matches!(
        Request::decode(b"not json"),
        Err(ProtoError::Malformed(_))
    ));
    assert!(matches!(
        decode::<Reply>(&vec![b' '; MAX_LINE + 1]),
        Err(ProtoError::TooLong { .. })
    ));
}

/// Sends raw `bytes` on a new connection to `c`'s monitor and reads the one reply line.
fn raw(c: &Ctr, bytes: &[u8]) -> Reply {
    let mut s = UnixStream::connect(c.state.join("monitor.sock")).expect("connect");
    let _ = s.set_read_timeout(Some(WAIT_PATIENCE));
    s.write_all(bytes).expect("send");
    let mut line = Vec::new();
    BufReader::new(s)
        .read_until(b'\n', &mut line)
        .expect("reply");
    decode(&line).unwrap_or_else(|e| panic!("reply {:?}: {e}", String::from_utf8_lossy(&line)))
}

#[test]
fn monitor_serves_v1_and_refuses_bad_requests_typed() {
    let c = Ctr::new("proto");
    c.write_spec(&c.opts(&["sh", "-c", "exit 4"]));
    c.write_monitor_json(json!({"kind": "native"}), false, false);
    let ready: Ready = decode(c.spawn().to_string().as_bytes()).expect("ready line");
    let Ready::Ready { pid, .. } = ready else {
        panic!("{ready:?}")
    };
    // Version 1: no `version` field, as an older berthd sends.
    assert_eq!(
        raw(&c, b"{\"cmd\":\"state\"}\n"),
        Reply::State {
            pid,
            status: RunStatus::Running
        }
    );
    // Unknown command, newer version, not JSON: typed errors, the monitor still serves.
    let Reply::Failure(f) = raw(&c, b"{\"version\":2,\"cmd\":\"frobnicate\"}\n") else {
        panic!("unknown command accepted")
    };
    assert!(f.error.contains("unknown command \"frobnicate\""), "{f:?}");
    assert!(matches!(
        raw(&c, b"{\"version\":3,\"cmd\":\"state\"}\n"),
        Reply::Failure(_)
    ));
    assert!(matches!(raw(&c, b"}{ garbage\n"), Reply::Failure(_)));
    // A line that never ends: refused once it passes the limit, the connection dropped.
    let Reply::Failure(f) = raw(&c, &vec![b'x'; MAX_LINE + 10]) else {
        panic!("oversized line accepted")
    };
    assert!(f.error.contains("too long"), "{f:?}");
    // A version 2 request, typed, after all that.
    let line = Request::new(Command::State).encode().expect("encode");
    assert!(matches!(raw(&c, &line), Reply::State { .. }));
    // `reopen` (the CRI's ReopenContainerLog): the log moved away is opened afresh at its path.
    let moved = c.log.with_extension("moved");
    std::fs::rename(&c.log, &moved).expect("move the log");
    let line = Request::new(Command::Reopen).encode().expect("encode");
    assert_eq!(raw(&c, &line), Reply::Ok);
    assert!(c.log.is_file(), "a new log file at the old path");
    let (waiter, _) = c.connect_wait();
    assert_eq!(
        raw(
            &c,
            &Request::new(Command::Start { wait: false })
                .encode()
                .expect("e")
        ),
        Reply::Ok
    );
    let exit: ExitRecord = decode(finish_wait(waiter).to_string().as_bytes()).expect("exit");
    assert_eq!(exit.exit_code, 4);
}

#[test]
fn missing_and_non_executable_commands_are_127_and_126_through_berthd() {
    let d = berth_tests::TestDaemon::start();
    d.import_busybox();
    for (name, cmd, code) in [("p127", "nosuchcmd", 127), ("p126", "/etc/passwd", 126)] {
        let create = d.docker(&["create", "--name", name, "busybox", cmd]);
        assert!(create.success(), "{create:?}");
        let (status, _, body) = d.request("POST", &format!("/containers/{name}/start"), None);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("failed to create task"), "{body}");
        let out = d.docker(&["inspect", "-f", "{{.State.ExitCode}}", name]);
        assert_eq!(out.ok().trim(), code.to_string(), "{name}");
        let run = d.docker(&["run", "--rm", "busybox", cmd]);
        assert_eq!(run.status, code, "{run:?}");
    }
}

/// berthd's typed requests on a running container: pause, unpause, resize, kill.
#[test]
fn berthd_drives_the_monitor_with_typed_requests() {
    let d = berth_tests::TestDaemon::start();
    d.import_busybox();
    let id = d.sleeper("ptyped");
    d.docker(&["pause", &id]).ok();
    let st = d.docker(&["inspect", "-f", "{{.State.Status}}", &id]);
    assert_eq!(st.ok().trim(), "paused");
    d.docker(&["unpause", &id]).ok();
    let (status, _, body) = d.request("POST", &format!("/containers/{id}/resize?h=40&w=120"), None);
    assert_eq!(status, 200, "{body}");
    d.docker(&["kill", &id]).ok();
    let code = d.docker(&["wait", &id]);
    assert_eq!(code.ok().trim(), "137");
}
