//! The CRI's streaming calls end to end with the real `crictl` (cri-tools v1.26.1) against a
//! test daemon's streaming server (SPDY/3.1): `exec` without a TTY (stdout, stderr and the
//! exit code through the v4 error stream), `exec -i` fed a pipe, `exec -i -t` on a real
//! terminal (`script` gives crictl a pty: the exec gets a TTY of the terminal's size),
//! `attach -i` to a container reading its stdin, and `port-forward` from a local port to a
//! busybox `httpd` on the pod's loopback (inside its own network namespace). Skipped, with a
//! message, without crictl.

use berth_tests::{Crictl, TestDaemon};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).expect("write config");
    p.display().to_string()
}

/// Reads `r` to its end on a thread.
fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Runs `cmd` with `input` on its stdin; (status, stdout, stderr), killed after 60 s (a hang
/// guard).
fn run_with_input(mut cmd: Command, input: &[u8]) -> (Option<i32>, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = feeder.join();
    (
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

/// `GET /` through `127.0.0.1:port`, retried while the forward comes up.
fn http_get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match got {
            Ok(b) if !b.is_empty() => return b,
            _ if Instant::now() > deadline => panic!("no answer through the forward: {got:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn exec_attach_and_port_forward_stream_through_berths_server() {
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();
    let pod = json!({
        "metadata": {"name": "stream", "namespace": "default", "uid": "uid-s", "attempt": 0},
        "log_directory": d.dir().join("pod-logs"),
    });
    let pod_cfg = write(d.dir(), "pod.json", &pod);
    let p = c.ok(&["runp", &pod_cfg]).trim().to_string();
    let ctr = |name: &str, cmd: &str, stdin: bool| {
        json!({
            "metadata": {"name": name},
            "image": {"image": "busybox"},
            "command": ["sh", "-c", cmd],
            "log_path": format!("{name}.log"),
            "stdin": stdin,
            "stdin_once": stdin,
        })
    };
    let web = "mkdir -p /www && echo hello-through-the-forward > /www/index.html && \
               exec httpd -f -p 8080 -h /www";
    let main = write(d.dir(), "main.json", &ctr("main", web, false));
    let a = c.ok(&["create", &p, &main, &pod_cfg]).trim().to_string();
    c.ok(&["start", &a]);

    // exec without a TTY: both streams, and the exit code.
    let bad = c.run(&["exec", &a, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert!(bad.stdout.contains("out"), "{bad:?}");
    assert!(bad.stderr.contains("err"), "{bad:?}");
    assert!(!bad.success(), "{bad:?}");
    assert!(bad.stderr.contains("exit code 3"), "{bad:?}");
    let missing = c.run(&["exec", &a, "no-such-command"]);
    assert!(!missing.success(), "{missing:?}");
    let nobody = c.run(&["exec", "0123456789ab", "true"]);
    assert!(!nobody.success(), "{nobody:?}");
    let good = c.run(&["exec", &a, "sh", "-c", "echo fine"]);
    assert!(good.success() && good.stdout.trim() == "fine", "{good:?}");

    // A client that goes away takes its exec with it.
    let mut gone = c
        .command(&["exec", &a, "sleep", "4321"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("exec sleep");
    let ps = || c.ok(&["exec", "-s", &a, "ps", "-o", "args"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ps().contains("sleep 4321") {
        assert!(Instant::now() < deadline, "the exec never ran: {}", ps());
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = gone.kill();
    let _ = gone.wait();
    while ps().contains("sleep 4321") {
        assert!(
            Instant::now() < deadline,
            "the exec outlived its client: {}",
            ps()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // exec -i: a pipe's bytes reach the command, whose output comes back whole.
    let (code, out, err) = run_with_input(c.command(&["exec", "-i", &a, "cat"]), b"small\n");
    assert_eq!((code, out.as_str()), (Some(0), "small\n"), "{err}");
    let big: String = (0..20000).map(|i| format!("line {i}\n")).collect();
    let (code, out, err) = run_with_input(c.command(&["exec", "-i", &a, "cat"]), big.as_bytes());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.len(), big.len(), "{err}");
    assert!(out == big, "cat's output differs");

    // exec -i -t on a terminal: the command has a TTY, sized as crictl's terminal.
    let line = format!(
        "stty rows 33 cols 101; {} --runtime-endpoint {} exec -i -t {a} sh -c 'test -t 0 && test -t 1 && echo on-a-tty; stty size'",
        berth_tests::crictl_bin().expect("crictl").display(),
        c.endpoint()
    );
    let (code, out, err) = run_with_input(
        {
            let mut s = Command::new("script");
            s.args(["-qec", &line, "/dev/null"]);
            s
        },
        b"",
    );
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(out.contains("on-a-tty"), "{out} {err}");
    assert!(out.contains("33 101"), "{out} {err}");

    // attach -i: the container reads what the client sends and ends.
    let reader = write(
        d.dir(),
        "reader.json",
        &ctr("reader", "read line; echo got-$line; sleep 1", true),
    );
    let r = c.ok(&["create", &p, &reader, &pod_cfg]).trim().to_string();
    c.ok(&["start", &r]);
    let (_, out, err) = run_with_input(c.command(&["attach", "-i", &r]), b"hello\n");
    assert!(out.contains("got-hello"), "{out} {err}");

    // attach -i -t to a TTY container: the terminal's size reaches the container's pty, and
    // the shell's output comes back.
    let mut term = ctr("term", "exec sh", true);
    term["tty"] = json!(true);
    term["stdin_once"] = json!(false);
    let term = write(d.dir(), "term.json", &term);
    let t = c.ok(&["create", &p, &term, &pod_cfg]).trim().to_string();
    c.ok(&["start", &t]);
    let line = format!(
        "stty rows 44 cols 120; {} --runtime-endpoint {} attach -i -t {t}",
        berth_tests::crictl_bin().expect("crictl").display(),
        c.endpoint()
    );
    let (_, out, err) = run_with_input(
        {
            let mut s = Command::new("script");
            s.args(["-qec", &line, "/dev/null"]);
            s
        },
        b"stty size; echo attached-$((6*7)); exit\n",
    );
    assert!(out.contains("44 120"), "{out} {err}");
    assert!(out.contains("attached-42"), "{out} {err}");

    // port-forward: a local port reaches httpd on the pod's own loopback.
    let port = berth_tests::free_port();
    let mut fwd = c
        .command(&["port-forward", &p, &format!("{port}:8080")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("port-forward");
    let first = http_get(port);
    let second = http_get(port);
    let _ = fwd.kill();
    let _ = fwd.wait();
    assert!(first.contains("hello-through-the-forward"), "{first}");
    assert!(second.contains("hello-through-the-forward"), "{second}");

    c.ok(&["stopp", &p]);
    c.ok(&["rmp", &p]);
}
