//! Slowloris against berthd (issue #15): hundreds of connections that send half a request
//! header and stall, and some that never send a byte, on the TCP and unix listeners. berthd
//! keeps answering normal clients, closes the stalled connections once the header-read
//! timeout passed, and long requests (events, a container's attach and wait, logs --follow,
//! exec, lasting longer than that timeout) are not cut: only the header read is timed.

use berth_tests::TestDaemon;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The daemon's `header-read-timeout` in this test, seconds.
const HEADER_TIMEOUT: u64 = 3;
/// Generous bound for anything that should be prompt (a hang guard, not a timing claim).
const PATIENCE: Duration = Duration::from_secs(60);

/// Reads until the server closes the connection (or errs); false if it is still open when
/// `deadline` passes.
fn closed_by_server(r: &mut dyn Read, deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match r.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return true,
        }
    }
    false
}

fn tcp_ping(port: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(format!("127.0.0.1:{port}")) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(PATIENCE));
    let _ = s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    got.starts_with("HTTP/1.1 200")
}

#[test]
fn stalled_headers_are_cut_and_the_daemon_keeps_serving() {
    let d = TestDaemon::builder()
        .storage_driver("vfs")
        .tcp()
        .config_json(json!({ "header-read-timeout": HEADER_TIMEOUT }))
        .start();
    d.import_busybox();
    let host = d.tcp_host().expect("tcp host");
    let port = host.rsplit(':').next().unwrap_or_default().to_string();

    // The attack: 300 half headers and 20 silent connections on TCP, 40 half headers on the
    // unix socket.
    let mut tcp = Vec::new();
    for i in 0..320 {
        let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        if i < 300 {
            s.write_all(b"GET /containers/json HTTP/1.1\r\nHost: x\r\nX-Slow: aaa")
                .expect("half header");
        }
        tcp.push(s);
    }
    let mut unix = Vec::new();
    for _ in 0..40 {
        let mut s = UnixStream::connect(d.socket()).expect("connect unix");
        s.write_all(b"GET /info HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            .expect("half header");
        unix.push(s);
    }

    // Normal clients are served meanwhile, on both listeners.
    let t = Instant::now();
    assert_eq!(d.request("GET", "/_ping", None).0, 200);
    assert!(tcp_ping(&port), "tcp /_ping failed during the attack");
    d.docker(&["version"]).ok();
    assert!(t.elapsed() < PATIENCE, "answers took {:?}", t.elapsed());

    // After the header timeout the server closes every stalled connection.
    let deadline = Instant::now() + PATIENCE;
    let mut open = 0;
    for s in &mut tcp {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        if !closed_by_server(s, deadline) {
            open += 1;
        }
    }
    for s in &mut unix {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        if !closed_by_server(s, deadline) {
            open += 1;
        }
    }
    assert_eq!(open, 0, "stalled connections still open after {PATIENCE:?}");
    assert!(tcp_ping(&port), "tcp /_ping failed after the attack");
    assert_eq!(d.request("GET", "/_ping", None).0, 200);
}

#[test]
fn long_requests_outlive_the_header_timeout() {
    let d = TestDaemon::builder()
        .storage_driver("vfs")
        .config_json(json!({ "header-read-timeout": HEADER_TIMEOUT }))
        .start();
    d.import_busybox();
    // A long poll that stays quiet longer than the header timeout still delivers.
    let events = d.docker_lines(&["events", "--filter", "type=container"]);
    std::thread::sleep(Duration::from_secs(HEADER_TIMEOUT + 2));
    // Attach + wait last longer than the header timeout; stdin reaches the container late.
    let out = d.docker_stdin(
        &["run", "--rm", "-i", "--network", "none", "busybox"],
        b"sleep 5; echo late-but-here\n",
    );
    assert!(
        out.stdout.contains("late-but-here"),
        "run across the header timeout: {out:?}"
    );
    assert!(
        events.next(PATIENCE).is_some(),
        "events stream ended by the header timeout"
    );
    // logs --follow across the timeout.
    let id = d
        .docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "sleep 5; echo later",
        ])
        .ok()
        .trim()
        .to_string();
    let out = d.docker(&["logs", "-f", &id]);
    assert_eq!(out.ok().trim(), "later");
    d.docker(&["rm", "-f", &id]).ok();
    // exec too (a hijacked stream).
    let id = d.sleeper("s1");
    let out = d.docker(&["exec", &id, "sh", "-c", "sleep 5; echo exec-ok"]);
    assert_eq!(out.ok().trim(), "exec-ok");
    d.docker(&["rm", "-f", &id]).ok();
}

/// Accepted TCP connections on `port` that berthd holds open (its other sockets, netlink
/// and unix ones the daemon opens on its own meanwhile, are not counted).
fn client_sockets_of(pid: u32, port: &str) -> usize {
    let Ok(port) = port.parse::<u16>() else {
        return 0;
    };
    let want = format!(":{port:04X}");
    // Inodes of non-listening sockets whose local port is the daemon's TCP port.
    let mut inodes = std::collections::HashSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 && cols[1].ends_with(&want) && cols[3] != "0A" {
                inodes.insert(format!("socket:[{}]", cols[9]));
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| inodes.contains(l.to_string_lossy().as_ref()))
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn connections_beyond_the_cap_wait_and_are_served_later() {
    let d = TestDaemon::builder()
        .storage_driver("vfs")
        .tcp()
        .config_json(json!({ "header-read-timeout": HEADER_TIMEOUT }))
        .start();
    let host = d.tcp_host().expect("tcp host");
    let port = host.rsplit(':').next().unwrap_or_default().to_string();
    let pid = d.pid().expect("pid");
    // More stalled clients than one listener serves at once (512); the rest wait in the
    // listen backlog.
    let mut stalled = Vec::new();
    for _ in 0..600 {
        let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        let _ = s.write_all(b"GET /_ping HTTP/1.1\r\nX-Slow: a");
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let held = client_sockets_of(pid, &port);
    eprintln!("berthd holds {held} client sockets");
    assert!(held <= 512, "berthd holds {held} client sockets");
    assert!(held > 0, "no accepted client sockets were counted");
    // The unix listener has slots of its own.
    assert_eq!(d.request("GET", "/_ping", None).0, 200);
    // A normal TCP client gets in once the stalled ones time out.
    assert!(tcp_ping(&port), "tcp /_ping beyond the cap failed");
    drop(stalled);
    assert!(tcp_ping(&port), "tcp /_ping after the attack failed");
}
