//! Classic-builder fidelity (issue 16, "Build"), continued: how `RUN` runs — the build's
//! network mode, extra hosts, /dev/shm size, ulimits and resource limits, and its output shown
//! while it runs — each built the same way against berthd and a private real dockerd and
//! compared. Skipped, with a message, without dockerd.

mod build_support;

use build_support::Pair;

#[test]
fn run_sees_extra_hosts_shm_size_and_ulimits() {
    let Some(p) = Pair::start() else { return };
    let df = "FROM busybox\nRUN grep myhost /etc/hosts | awk '{print $1, $2}' > /hosts; df -k /dev/shm | tail -n 1 | awk '{print $2}' > /shm; ulimit -n > /nofile\n";
    let ctx = p.context("ctx-hc", &[("Dockerfile", df)]);
    let ctx_s = ctx.display().to_string();
    // The RUN options both builds pass.
    let opts = [
        "--network",
        "none",
        "--add-host",
        "myhost:10.1.2.3",
        "--shm-size",
        "32m",
        "--ulimit",
        "nofile=1234:2345",
    ];
    p.build(&[&opts[..], &["-t", "hc:1", &ctx_s]].concat()).ok();
    assert_eq!(p.same_file("hc:1", "/hosts"), "10.1.2.3 myhost\n");
    assert_eq!(p.same_file("hc:1", "/shm"), "32768\n");
    assert_eq!(p.same_file("hc:1", "/nofile"), "1234\n");
    // berth's CLI sends the same options.
    p.d.berth(&[&["build"], &opts[..], &["--no-cache", "-t", "hc:2", &ctx_s]].concat())
        .ok();
    let got = p.d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "hc:2",
        "cat",
        "/hosts",
        "/shm",
        "/nofile",
    ]);
    assert_eq!(got.ok(), "10.1.2.3 myhost\n32768\n1234\n");
    // Resource limits reach the RUN container's cgroup (v1 or v2, whichever the host has).
    // (--cpuset-cpus/--cpuset-mems are passed on too, and applied as any container's cpuset.)
    let df = "FROM busybox\nRUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu/cpu.shares > /limits 2>/dev/null || true\n";
    let ctx = p.context("ctx-limits", &[("Dockerfile", df)]);
    let args = [
        "--network",
        "none",
        "--memory",
        "64m",
        "--cpu-shares",
        "512",
        "-t",
        "lim:1",
    ];
    let mut all = args.to_vec();
    let ctx_s = ctx.display().to_string();
    all.push(&ctx_s);
    p.build(&all).ok();
    let limits = p.same_file("lim:1", "/limits");
    assert!(limits.contains("67108864"), "{limits}");
    let mine = [
        "build",
        "--no-cache",
        "--network",
        "none",
        "--memory",
        "64m",
        "--cpu-shares",
        "512",
        "-t",
        "lim:2",
        &ctx_s,
    ];
    p.d.berth(&mine).ok();
    let got = p.d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "lim:2",
        "cat",
        "/limits",
    ]);
    assert_eq!(got.ok(), limits, "berth build --memory --cpu-shares");
}

#[test]
fn run_takes_the_build_network_mode() {
    let Some(p) = Pair::start() else { return };
    let host_ns = std::fs::read_link("/proc/self/ns/net")
        .expect("host netns")
        .display()
        .to_string();
    let df =
        "FROM busybox\nRUN readlink /proc/self/ns/net > /ns; ls /sys/class/net | sort > /nets\n";
    let ctx = p.context("ctx-net", &[("Dockerfile", df)]);
    let ctx_s = ctx.display().to_string();
    p.build(&["--network", "none", "-t", "net:none", &ctx_s])
        .ok();
    assert_eq!(p.same_file("net:none", "/nets"), "lo\n");
    p.build(&["--network", "host", "--no-cache", "-t", "net:host", &ctx_s])
        .ok();
    assert_eq!(p.same_file("net:host", "/ns").trim(), host_ns);
    // The real engine runs without a bridge: the default bridge and user networks are
    // checked on berthd alone.
    let d = &p.d;
    let df = "FROM busybox\nRUN ip -4 -o addr show eth0 | awk '{print $4}' > /addr; nslookup peer > /dns 2>&1 || true\n";
    let ctx = p.context("ctx-net2", &[("Dockerfile", df)]);
    let ctx_s = ctx.display().to_string();
    let mut b = d.docker_cmd(&["build", "-t", "net:bridge", &ctx_s]);
    b.env("DOCKER_BUILDKIT", "0");
    assert!(b.status().expect("build").success());
    let addr = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "net:bridge",
            "cat",
            "/addr",
        ])
        .ok()
        .to_string();
    let prefix = d.subnet();
    let prefix = prefix.rsplit_once('.').map_or("", |(a, _)| a);
    assert!(addr.starts_with(prefix), "{addr} not in {}", d.subnet());
    d.docker(&["network", "create", "--subnet", "10.77.91.0/24", "bn"])
        .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "bn",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let mut b = d.docker_cmd(&[
        "build",
        "--no-cache",
        "--network",
        "bn",
        "-t",
        "net:user",
        &ctx_s,
    ]);
    b.env("DOCKER_BUILDKIT", "0");
    assert!(b.status().expect("build").success());
    let cat = |f: &str| {
        d.docker(&["run", "--rm", "--network", "none", "net:user", "cat", f])
            .ok()
            .to_string()
    };
    assert!(cat("/addr").starts_with("10.77.91."), "{}", cat("/addr"));
    assert!(
        cat("/dns").contains("10.77.91."),
        "the RUN resolves its peer: {}",
        cat("/dns")
    );
    d.docker(&["rm", "-f", "peer"]).ok();
}

/// `line` without ANSI colour sequences (`ESC [ … m`).
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut it = line.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' && it.peek() == Some(&'[') {
            for c in it.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `cmd` (a build printing `first` and then waiting for an HTTP answer on `port`) and
/// answers only once `first` has been streamed: output shown live lets the build finish.
fn live_build(mut cmd: std::process::Command, port: u16) -> (bool, String) {
    use std::io::{BufRead, BufReader, Write};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker build");
    let stdout = child.stdout.take().expect("stdout");
    let mut seen = String::new();
    let mut listener = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        // The docker CLI colours a RUN's stderr (`ESC[91m` … `ESC[0m`), so a line can start
        // with the reset of the stderr chunk streamed just before it.
        if plain(&line).trim() == "first" && listener.is_none() {
            let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
            std::thread::spawn(move || {
                for mut s in l.incoming().flatten() {
                    let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            });
            listener = Some(());
        }
    }
    let ok = child.wait().expect("wait").success();
    (ok && listener.is_some(), seen)
}

#[test]
fn run_output_is_streamed_while_the_command_runs() {
    let Some(p) = Pair::start() else { return };
    for (who, engine) in [("berthd", 0), ("real", 1)] {
        let port = berth_tests::free_port();
        let df = format!(
            "FROM busybox\nRUN echo first; i=0; until wget -q -O /dev/null http://127.0.0.1:{port}/; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.1; done; echo second\n"
        );
        let ctx = p.context(&format!("ctx-live-{who}"), &[("Dockerfile", &df)]);
        let args = ["build", "--network", "host", &ctx.display().to_string()];
        let cmd = if engine == 0 {
            p.ours_cmd(&args)
        } else {
            p.theirs_cmd(&args)
        };
        let (ok, seen) = live_build(cmd, port);
        assert!(ok && seen.contains("second\n"), "{who}: {seen}");
    }
}
