//! Build tests (issue 7): the classic builder through `DOCKER_BUILDKIT=0 docker build` and
//! `berth build` — multi-stage, config fields, the cache, and clear errors for bad input.

use berth_tests::TestDaemon;
use std::path::{Path, PathBuf};

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS builder
RUN echo built > /built.txt && mkdir -p /out && cp /built.txt /out/
FROM busybox
COPY --from=builder /out/built.txt /app/built.txt
COPY hello.txt /app/
ENV GREETING=hi \
    OTHER="two words"
WORKDIR /app
USER nobody
EXPOSE 8080/tcp
LABEL org.example.name=app
ENTRYPOINT ["cat"]
CMD ["/app/hello.txt"]
HEALTHCHECK --interval=30s --timeout=3s CMD true
"#;

fn context(d: &TestDaemon, name: &str, dockerfile: &str) -> PathBuf {
    let dir = d.dir().join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
    std::fs::write(dir.join("hello.txt"), "hello from the context\n").expect("hello");
    std::fs::write(dir.join(".dockerignore"), "secret.txt\n").expect("dockerignore");
    std::fs::write(dir.join("secret.txt"), "nope\n").expect("secret");
    dir
}

fn legacy_build(d: &TestDaemon, ctx: &Path, tag: &str) -> berth_tests::Output {
    let mut c = d.docker_cmd(&["build", "-t", tag, &ctx.display().to_string()]);
    c.env("DOCKER_BUILDKIT", "0");
    let o = c.output().expect("docker build");
    berth_tests::Output {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn multi_stage_build_runs_and_has_the_config() {
    let d = TestDaemon::start();
    d.import_busybox();
    let ctx = context(&d, "ctx", DOCKERFILE);
    let out = legacy_build(&d, &ctx, "app:1");
    let text = out.ok();
    assert!(
        text.contains("Step 1/14 : ARG BASE=busybox")
            && text.contains("Step 2/14 : FROM ${BASE} AS builder"),
        "{text}"
    );
    assert!(
        text.contains("Successfully built") && text.contains("Successfully tagged app:1"),
        "{text}"
    );
    assert_eq!(
        d.docker(&["run", "--rm", "app:1"]).ok(),
        "hello from the context\n"
    );
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "--entrypoint",
            "cat",
            "app:1",
            "/app/built.txt"
        ])
        .ok(),
        "built\n"
    );
    let fmt = "{{json .Config.Env}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{.Config.WorkingDir}}|{{.Config.User}}|{{json .Config.ExposedPorts}}|{{json .Config.Labels}}|{{json .Config.Healthcheck}}";
    let cfg = d
        .docker(&["image", "inspect", "--format", fmt, "app:1"])
        .ok()
        .trim()
        .to_string();
    assert!(
        cfg.contains("\"GREETING=hi\"") && cfg.contains("\"OTHER=two words\""),
        "{cfg}"
    );
    assert!(
        cfg.contains("[\"cat\"]|[\"/app/hello.txt\"]|/app|nobody"),
        "{cfg}"
    );
    assert!(
        cfg.contains("\"8080/tcp\"") && cfg.contains("\"org.example.name\":\"app\""),
        "{cfg}"
    );
    assert!(
        cfg.contains("\"Interval\":30000000000")
            && cfg.contains("\"Test\":[\"CMD-SHELL\",\"true\"]"),
        "{cfg}"
    );
    // .dockerignore kept secret.txt out of the context.
    let ls = d.docker(&["run", "--rm", "--entrypoint", "ls", "app:1", "/app"]);
    assert!(!ls.ok().contains("secret"));
    // No build container is left behind.
    assert!(d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty());
    // History shows each step.
    let hist = d
        .docker(&["history", "--no-trunc", "app:1"])
        .ok()
        .to_string();
    assert!(
        hist.contains("COPY file:") && hist.contains("#(nop)  ENV"),
        "{hist}"
    );

    // berth build of the same context gives the same result.
    let b = d.berth(&["build", "-t", "app:2", &ctx.display().to_string()]);
    b.ok();
    assert_eq!(
        d.docker(&["run", "--rm", "app:2"]).ok(),
        "hello from the context\n"
    );
}

#[test]
fn cache_is_reused_and_invalidated_from_a_changed_copy() {
    let d = TestDaemon::start();
    d.import_busybox();
    let ctx = context(&d, "ctx2", "FROM busybox\nRUN echo one > /one\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /copy\nCMD [\"cat\", \"/copy\"]\n");
    legacy_build(&d, &ctx, "c:1").ok();
    let again = legacy_build(&d, &ctx, "c:1");
    assert_eq!(
        again.ok().matches("Using cache").count(),
        4,
        "{}",
        again.stdout
    );
    std::fs::write(ctx.join("hello.txt"), "changed\n").expect("write");
    let changed = legacy_build(&d, &ctx, "c:1");
    let text = changed.ok();
    assert_eq!(
        text.matches("Using cache").count(),
        1,
        "only RUN echo one is cached: {text}"
    );
    assert_eq!(d.docker(&["run", "--rm", "c:1"]).ok(), "changed\n");
    let nocache = d.berth(&[
        "build",
        "--no-cache",
        "-t",
        "c:1",
        &ctx.display().to_string(),
    ]);
    assert_eq!(nocache.ok().matches("Using cache").count(), 0);
}

#[test]
fn bad_dockerfiles_get_clear_errors_and_leave_nothing() {
    let d = TestDaemon::start();
    d.import_busybox();
    let cases = [
        (
            "unknown",
            "FROM busybox\nFOO bar\n",
            "line 2: unknown instruction: FOO",
        ),
        ("json", "FROM busybox\nCMD [\"sh\", \n", "line 2"),
        (
            "missing",
            "FROM busybox\nCOPY nothere.txt /x\n",
            "nothere.txt",
        ),
        (
            "failing",
            "FROM busybox\nRUN exit 3\n",
            "returned a non-zero code: 3",
        ),
    ];
    for (name, df, want) in cases {
        let ctx = context(&d, name, df);
        let out = legacy_build(&d, &ctx, &format!("bad-{name}:1"));
        assert_ne!(out.status, 0, "{name} must fail");
        assert!(
            out.stderr.contains(want) || out.stdout.contains(want),
            "{name}: want {want:?} in {out:?}"
        );
        assert!(d
            .docker(&["images", "-q", &format!("bad-{name}")])
            .ok()
            .trim()
            .is_empty());
    }
    assert!(
        d.docker(&["ps", "-a", "-q"]).ok().trim().is_empty(),
        "no container left behind"
    );
}

#[test]
fn the_real_engine_builds_the_same_config_and_files() {
    let Some(real) = berth_tests::RealEngine::start() else {
        return;
    };
    let d = TestDaemon::start();
    real.load_busybox_of(&d);
    let ctx = context(&d, "ctx-real", DOCKERFILE);
    let mut ours = d.docker_cmd(&[
        "build",
        "--network",
        "none",
        "-t",
        "app:1",
        &ctx.display().to_string(),
    ]);
    ours.env("DOCKER_BUILDKIT", "0");
    assert!(ours.status().expect("build").success());
    let (ok, out, err) = {
        let o = std::process::Command::new("/usr/local/bin/docker")
            .arg("-H")
            .arg(format!("unix://{}", real.path("docker.sock").display()))
            .args([
                "build",
                "--network",
                "none",
                "-t",
                "app:1",
                &ctx.display().to_string(),
            ])
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", real.path("docker-config"))
            .output()
            .expect("real build");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(ok, "the real engine's build failed: {err}\n{out}");
    for field in [
        "Cmd",
        "Entrypoint",
        "Env",
        "WorkingDir",
        "User",
        "Labels",
        "ExposedPorts",
        "Healthcheck",
    ] {
        let fmt = format!("{{{{json .Config.{field}}}}}");
        let theirs = real.ok(&["image", "inspect", "--format", &fmt, "app:1"]);
        let mine = d
            .docker(&["image", "inspect", "--format", &fmt, "app:1"])
            .ok()
            .to_string();
        assert_eq!(
            mine.trim(),
            theirs.trim(),
            "Config.{field} differs from the real engine's"
        );
    }
    for file in ["/app/hello.txt", "/app/built.txt"] {
        let theirs = real.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "cat",
            "app:1",
            file,
        ]);
        let mine = d
            .docker(&["run", "--rm", "--entrypoint", "cat", "app:1", file])
            .ok()
            .to_string();
        assert_eq!(mine, theirs, "{file} differs");
    }
}

#[test]
fn add_fetches_urls_extracts_tars_and_run_takes_heredocs() {
    use std::io::{BufRead, BufReader, Write};
    let d = TestDaemon::start();
    d.import_busybox();
    // A one-file HTTP server on 127.0.0.1.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let _ = r.read_line(&mut line);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let body = b"fetched over http\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    let ctx = context(&d, "ctx-add", &format!(
        "FROM busybox\nADD http://{addr}/remote.txt /web/\nADD files.tar /unpacked/\nRUN <<EOF\necho one > /heredoc\necho two >> /heredoc\nEOF\nCMD [\"sh\", \"-c\", \"cat /web/remote.txt /unpacked/inner.txt /heredoc\"]\n"
    ));
    let mut b = tar::Builder::new(Vec::new());
    let data = b"from the tar\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "inner.txt", &data[..]).expect("tar");
    std::fs::write(ctx.join("files.tar"), b.into_inner().expect("tar")).expect("write");
    legacy_build(&d, &ctx, "add:1").ok();
    assert_eq!(
        d.docker(&["run", "--rm", "add:1"]).ok(),
        "fetched over http\nfrom the tar\none\ntwo\n"
    );
}
