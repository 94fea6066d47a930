//! Classic-builder fidelity (issue 16, "Build"): each behaviour built the same way against
//! berthd and a private real dockerd, and what matters compared — image config fields, files,
//! the JSON stream's error shape, exit status. Skipped, with a message, without dockerd.

mod build_support;

use build_support::Pair;

#[test]
fn arg_values_reach_every_expansion() {
    let Some(p) = Pair::start() else { return };
    let df = r#"ARG BASE=busybox
ARG G=global
FROM $BASE
ARG G
ARG A=x
ARG C="${A}-y"
ARG OVER=default
ARG UID=1000 SIG=SIGUSR1
ENV E=$G F=${A}/${C} O=$OVER
LABEL l=$A g=$G
WORKDIR /w/$A
USER $UID
STOPSIGNAL $SIG
EXPOSE ${PORT:-80}
VOLUME /v/$C
ENV A=env
ENV SHADOWED=$A
COPY f.txt /copied/$C/
RUN echo "$A $G $C $OVER" > /tmp/seen
"#;
    let ctx = p.context("ctx-arg", &[("Dockerfile", df), ("f.txt", "file\n")]);
    let ctx = ctx.display().to_string();
    p.build(&[
        "--network",
        "none",
        "--build-arg",
        "OVER=given",
        "-t",
        "args:1",
        &ctx,
    ])
    .ok();
    p.same_config(
        "args:1",
        &[
            "Env",
            "Labels",
            "WorkingDir",
            "User",
            "StopSignal",
            "ExposedPorts",
            "Volumes",
        ],
    );
    let env =
        p.d.docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Env}}",
            "args:1",
        ])
        .ok()
        .to_string();
    assert!(
        env.contains("\"E=global\"") && env.contains("\"F=x/x-y\"") && env.contains("O=given"),
        "{env}"
    );
    assert_eq!(p.same_file("args:1", "/tmp/seen"), "env global x-y given\n");
    assert_eq!(p.same_file("args:1", "/copied/x-y/f.txt"), "file\n");
}

#[test]
fn errors_stream_as_docker_with_the_failing_runs_output() {
    let Some(p) = Pair::start() else { return };
    let ctx = p.context(
        "ctx-err",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before-the-failure; echo on-stderr >&2; exit 3\n",
        )],
    );
    let (ours, theirs) = p.api_build(&ctx, "networkmode=none&rm=1");
    let (e_ours, e_theirs) = (build_support::errors(&ours), build_support::errors(&theirs));
    assert_eq!(e_ours, e_theirs, "error messages:\n{ours:?}\n{theirs:?}");
    assert_eq!(e_ours.len(), 1, "{ours:?}");
    assert_eq!(e_ours[0].0, e_ours[0].1);
    assert_eq!(e_ours[0].2, Some(3));
    for (who, msgs) in [("berthd", &ours), ("real", &theirs)] {
        let text = build_support::streamed(msgs);
        assert!(
            text.contains("before-the-failure\n") && text.contains("on-stderr\n"),
            "{who} does not show the RUN's output: {text}"
        );
        // The error is the stream's last message.
        assert!(
            msgs.last().is_some_and(|m| m.get("error").is_some()),
            "{who}: {msgs:?}"
        );
    }
    // The CLI exits with the RUN's code on both.
    let cli = p.build(&["--network", "none", &ctx.display().to_string()]);
    assert_eq!(cli.ours.status, cli.theirs.status, "{:?}", cli.ours);
    assert_eq!(cli.ours.status, 3);
    // An error that is not a RUN's: the same shape (no code), non-zero exit on both.
    let ctx = p.context(
        "ctx-err2",
        &[("Dockerfile", "FROM busybox\nCOPY missing.txt /x\n")],
    );
    let (ours, theirs) = p.api_build(&ctx, "networkmode=none&rm=1");
    for (who, msgs) in [("berthd", &ours), ("real", &theirs)] {
        let errs = build_support::errors(msgs);
        assert_eq!(errs.len(), 1, "{who}: {msgs:?}");
        assert_eq!(errs[0].0, errs[0].1, "{who}");
        assert!(
            errs[0].2.is_none() && errs[0].0.contains("missing.txt"),
            "{who}: {errs:?}"
        );
    }
    let cli = p.build(&["--network", "none", &ctx.display().to_string()]);
    assert_eq!(
        (cli.ours.status, cli.theirs.status),
        (1, 1),
        "{:?}",
        cli.ours
    );
    // No Dockerfile: an HTTP error (no stream) on both; a lower-case `dockerfile` is taken.
    let ctx = p.context("ctx-nodf", &[("x.txt", "x\n")]);
    let (ours, theirs) = p.api_build(&ctx, "networkmode=none");
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(
        ours[0].get("message").is_some(),
        theirs.first().is_some_and(|m| m.get("message").is_some()),
        "{ours:?} {theirs:?}"
    );
    let ctx = p.context(
        "ctx-lower",
        &[("dockerfile", "FROM busybox\nLABEL lower=yes\n")],
    );
    let (ours, theirs) = p.api_build(&ctx, "networkmode=none");
    for (who, msgs) in [("berthd", &ours), ("real", &theirs)] {
        assert!(build_support::errors(msgs).is_empty(), "{who}: {msgs:?}");
        let text = build_support::streamed(msgs);
        assert!(text.contains("Successfully built"), "{who}: {msgs:?}");
    }
    p.d.berth(&["build", "--network", "none", &ctx.display().to_string()])
        .ok();
}

const LISTING: &str = "FROM busybox\nCOPY . /ctx/\nRUN cd /ctx && find . | sort > /list\n";

#[test]
fn a_dockerfile_outside_the_context_or_on_stdin() {
    let Some(p) = Pair::start() else { return };
    let ctx = p.context(
        "ctx-out",
        &[
            ("a.txt", "a\n"),
            (".dockerignore", "b.txt\n"),
            ("b.txt", "b\n"),
        ],
    );
    let other = p.context("other", &[("Dockerfile", LISTING)]);
    let outside = other.join("Dockerfile").display().to_string();
    let ctx_s = ctx.display().to_string();
    p.build(&["--network", "none", "-f", &outside, "-t", "out:1", &ctx_s])
        .ok();
    let list = p.same_file("out:1", "/list");
    assert_eq!(
        list, ".\n./.dockerignore\n./a.txt\n",
        "the Dockerfile added under a random name is dropped"
    );
    let stdin = p.docker(
        &[
            "build",
            "--network",
            "none",
            "-f",
            "-",
            "-t",
            "out:2",
            &ctx_s,
        ],
        Some(LISTING.as_bytes()),
    );
    stdin.ok();
    assert_eq!(p.same_file("out:2", "/list"), list);
    // berth's CLI sends the same context.
    let b = p.d.berth(&[
        "build",
        "--network",
        "none",
        "-f",
        &outside,
        "-t",
        "out:3",
        &ctx_s,
    ]);
    b.ok();
    let mine =
        p.d.docker(&["run", "--rm", "--network", "none", "out:3", "cat", "/list"]);
    assert_eq!(mine.ok(), list);
    let b = p.d.berth_stdin(
        &[
            "build",
            "--network",
            "none",
            "-f",
            "-",
            "-t",
            "out:4",
            &ctx_s,
        ],
        LISTING.as_bytes(),
    );
    b.ok();
    let mine =
        p.d.docker(&["run", "--rm", "--network", "none", "out:4", "cat", "/list"]);
    assert_eq!(mine.ok(), list);
}

#[test]
fn dockerignore_has_dockers_pattern_semantics() {
    let Some(p) = Pair::start() else { return };
    let ignore = "# comment line\n  *.log\n/top.txt\n**/cache\n!keep.log\nsub/**/*.tmp\nbuild\n!build/keep\nDockerfile\n.dockerignore\n";
    let files = [
        ("Dockerfile", LISTING),
        (".dockerignore", ignore),
        ("a.log", "x"),
        ("keep.log", "x"),
        ("deep/a.log", "x"),
        ("top.txt", "x"),
        ("deep/top.txt", "x"),
        ("cache/x", "x"),
        ("deep/er/cache/y", "x"),
        ("sub/a.tmp", "x"),
        ("sub/x/y/b.tmp", "x"),
        ("sub/c.txt", "x"),
        ("build/out.o", "x"),
        ("build/keep/k", "x"),
        ("# comment line", "x"),
        ("plain.txt", "x"),
    ];
    let ctx = p.context("ctx-ignore", &files);
    let ctx_s = ctx.display().to_string();
    p.build(&["--network", "none", "-t", "ign:1", &ctx_s]).ok();
    let list = p.same_file("ign:1", "/list");
    assert!(
        list.contains("./plain.txt") && !list.contains("a.log\n./cache"),
        "{list}"
    );
    // berth's CLI, with its own matcher, sends the same files.
    p.d.berth(&["build", "--network", "none", "-t", "ign:2", &ctx_s])
        .ok();
    let mine =
        p.d.docker(&["run", "--rm", "--network", "none", "ign:2", "cat", "/list"]);
    assert_eq!(mine.ok(), list);
}

#[test]
fn onbuild_shell_stopsignal_target_and_labels() {
    let Some(p) = Pair::start() else { return };
    let df = r#"FROM busybox AS base
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGUSR1
ONBUILD RUN echo triggered > /trig
ONBUILD LABEL from.trigger=yes
RUN echo shell-form > /shell
CMD echo cmd
FROM base AS child
RUN cat /trig > /trig2
FROM busybox AS never
RUN exit 1
"#;
    let ctx = p.context("ctx-ob", &[("Dockerfile", df)]);
    let ctx_s = ctx.display().to_string();
    let args = [
        "--network",
        "none",
        "--target",
        "child",
        "--label",
        "given=label",
        "--label",
        "another=one",
        "-t",
        "ob:1",
        &ctx_s,
    ];
    let out = p.build(&args);
    out.ok();
    p.docker(&["tag", "ob:1", "ob:0"], None).ok();
    for (who, text) in [("berthd", &out.ours.stdout), ("real", &out.theirs.stdout)] {
        assert!(
            text.contains("# Executing 2 build triggers"),
            "{who}: {text}"
        );
    }
    let steps = |o: &berth_tests::Output| -> Vec<String> {
        o.stdout
            .lines()
            .filter(|l| l.starts_with("Step "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(steps(&out.ours), steps(&out.theirs));
    // Built again: every step (the --label ones too) from the cache, the same image.
    let again = p.build(&args);
    again.ok();
    let hits = |o: &berth_tests::Output| o.stdout.matches("Using cache").count();
    assert_eq!(
        hits(&again.ours),
        hits(&again.theirs),
        "{}",
        again.ours.stdout
    );
    let id = "{{.Id}}";
    let ids = p.docker(&["image", "inspect", "--format", id, "ob:1"], None);
    let first = p.docker(&["image", "inspect", "--format", id, "ob:0"], None);
    assert_eq!(
        ids.ours.stdout, first.ours.stdout,
        "a cached build gives the same image"
    );
    p.same_config(
        "ob:1",
        &[
            "Shell",
            "StopSignal",
            "OnBuild",
            "Labels",
            "Cmd",
            "Entrypoint",
        ],
    );
    assert_eq!(p.same_file("ob:1", "/trig2"), "triggered\n");
    assert_eq!(p.same_file("ob:1", "/shell"), "shell-form\n");
}

#[test]
fn unconsumed_build_args_and_bad_instructions_are_reported_as_docker() {
    let Some(p) = Pair::start() else { return };
    let df = "ARG USED_IN_FROM=busybox\nARG GLOBAL_ONLY\nFROM $USED_IN_FROM\nARG STAGE\nRUN true\n";
    let ctx = p.context("ctx-unused", &[("Dockerfile", df)]);
    let ctx_s = ctx.display().to_string();
    let mut args = vec!["--network", "none", "-t", "unused:1"];
    for a in [
        "USED_IN_FROM=busybox",
        "GLOBAL_ONLY=1",
        "STAGE=1",
        "NOT_DECLARED=1",
        "ALSO_NOT=2",
        "HTTP_PROXY=http://127.0.0.1:9",
    ] {
        args.extend(["--build-arg", a]);
    }
    args.push(&ctx_s);
    let both = p.build(&args);
    both.ok();
    // Docker lists them in its map's (random) order: compared as sorted lists.
    let warning = |o: &berth_tests::Output| {
        format!("{}{}", o.stdout, o.stderr)
            .lines()
            .find(|l| l.contains("were not consumed"))
            .map(|l| {
                let (head, rest) = l.split_once("build-args [").unwrap_or((l, ""));
                let (names, tail) = rest.split_once(']').unwrap_or((rest, ""));
                let mut names: Vec<&str> = names.split(' ').collect();
                names.sort();
                format!("{head}build-args [{}]{tail}", names.join(" "))
            })
    };
    assert_eq!(
        warning(&both.ours),
        warning(&both.theirs),
        "{}",
        both.theirs.stdout
    );
    assert!(warning(&both.ours).is_some());
    // Refused instructions: the same message and exit status on both.
    for (name, df) in [
        ("sig", "FROM busybox\nSTOPSIGNAL SIGNOPE\n"),
        ("shell", "FROM busybox\nSHELL /bin/bash -c\n"),
        ("onbuild", "FROM busybox\nONBUILD ONBUILD RUN true\n"),
        ("onbuild-from", "FROM busybox\nONBUILD FROM busybox\n"),
        ("target", "FROM busybox AS a\nRUN true\n"),
    ] {
        let ctx = p.context(&format!("ctx-bad-{name}"), &[("Dockerfile", df)]);
        let ctx_s = ctx.display().to_string();
        let both = p.build(&[
            "--network",
            "none",
            "--target",
            if name == "target" { "nope" } else { "" },
            &ctx_s,
        ]);
        // Docker 20.10 says "parse error line N", later ones "parse error on line N".
        let last = |o: &berth_tests::Output| {
            o.stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("")
                .replace("parse error on line", "parse error line")
        };
        assert_eq!(
            (both.ours.status, last(&both.ours)),
            (both.theirs.status, last(&both.theirs)),
            "{name}"
        );
        // berth's CLI prints the same.
        let target = if name == "target" { "nope" } else { "" };
        let mine =
            p.d.berth(&["build", "--network", "none", "--target", target, &ctx_s]);
        assert_eq!(
            (mine.status, last(&mine)),
            (both.theirs.status, last(&both.theirs)),
            "berth CLI, {name}"
        );
    }
}

#[test]
fn quiet_builds_and_contexts_on_stdin() {
    let Some(p) = Pair::start() else { return };
    let df = "FROM busybox\nRUN echo from-stdin > /s\n";
    let ctx = p.context("ctx-q", &[("Dockerfile", df)]);
    let ctx_s = ctx.display().to_string();
    let q = p.build(&["-q", "--network", "none", "-t", "q:1", &ctx_s]);
    q.ok();
    for o in [&q.ours, &q.theirs] {
        let out = o.stdout.trim();
        assert!(
            out.starts_with("sha256:") && out.len() == 71 && !out.contains('\n'),
            "{o:?}"
        );
    }
    let mine =
        p.d.berth(&["build", "-q", "--network", "none", "-t", "q:1", &ctx_s]);
    assert_eq!(
        mine.ok().trim(),
        q.ours.stdout.trim(),
        "berth build -q prints the ID once"
    );
    // A Dockerfile alone on stdin, and a gzipped context tar on stdin.
    let both = p.docker(
        &["build", "--network", "none", "-t", "q:2", "-"],
        Some(df.as_bytes()),
    );
    both.ok();
    assert_eq!(p.same_file("q:2", "/s"), "from-stdin\n");
    let mine = p.d.berth_stdin(
        &["build", "--network", "none", "-t", "q:4", "-"],
        df.as_bytes(),
    );
    mine.ok();
    let tgz = p.d.dir().join("ctx.tgz");
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&ctx)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    let data = std::fs::read(&tgz).expect("tgz");
    p.docker(
        &["build", "--network", "none", "-t", "q:3", "-"],
        Some(&data),
    )
    .ok();
    assert_eq!(p.same_file("q:3", "/s"), "from-stdin\n");
    let mine =
        p.d.berth_stdin(&["build", "--network", "none", "-t", "q:5", "-"], &data);
    mine.ok();
    for img in ["q:4", "q:5"] {
        let got =
            p.d.docker(&["run", "--rm", "--network", "none", img, "cat", "/s"]);
        assert_eq!(got.ok(), "from-stdin\n", "{img}");
    }
}
