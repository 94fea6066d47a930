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
}
