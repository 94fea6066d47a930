//! Issue #15, item 10: a hostile container meets a seccomp allow-list. The built-in profile
//! refuses new namespaces (`unshare -U`), keyrings, kexec, `open_by_handle_at` and `clone3`
//! (ENOSYS) while ordinary commands work; a custom `--security-opt seccomp=profile.json` (read
//! by the client, sent as JSON) is enforced; `seccomp=unconfined` and `--privileged` run with
//! no filter; `docker info` names the built-in profile. The same with the native runtime and
//! with runc. Each attack is played for real; the daemon must answer afterwards.

use berth_tests::TestDaemon;

const RUNC: &str = "/usr/sbin/runc";

/// `docker run --rm` options for each runtime the machine has.
fn runtimes() -> Vec<Vec<&'static str>> {
    let mut v = vec![vec![]];
    if std::path::Path::new(RUNC).exists() {
        v.push(vec!["--runtime", "runc"]);
    }
    v
}

fn run(d: &TestDaemon, rt: &[&str], opts: &[&str], cmd: &[&str]) -> berth_tests::Output {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(rt);
    args.extend_from_slice(opts);
    args.push("busybox");
    args.extend_from_slice(cmd);
    d.docker(&args)
}

const SH: &str = "grep Seccomp: /proc/self/status; \
    unshare -U true 2>&1 || echo userns-refused; \
    unshare -m true 2>&1 || echo mountns-refused; \
    ls / >/dev/null && echo ls-ok; mkdir /tmp/d && echo mkdir-ok; \
    echo hi > /tmp/d/f && cat /tmp/d/f; ps -o pid,args | grep -c ps; \
    wget -q -T 1 -O /dev/null http://127.0.0.1:1/ 2>/dev/null || echo socket-used";

#[test]
fn builtin_profile_refuses_namespaces_and_keeps_busybox_working() {
    let d = TestDaemon::start();
    d.import_busybox();
    for rt in runtimes() {
        let out = run(&d, &rt, &[], &["sh", "-c", SH]);
        let text = out.ok().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Seccomp:\t2", "{rt:?} {text}");
        assert!(
            text.contains("Operation not permitted") && text.contains("userns-refused"),
            "{rt:?}: unshare -U must be refused: {text}"
        );
        assert!(text.contains("mountns-refused"), "{rt:?} {text}");
        for ok in ["ls-ok", "mkdir-ok", "hi", "socket-used"] {
            assert!(lines.contains(&ok), "{rt:?}: {ok} missing: {text}");
        }
        // Unconfined and privileged: no filter, and a user namespace needs no capability.
        // (`--privileged` under runc is left out: Debian's runc 1.1.5 fails to apply the full
        // capability set here, with or without seccomp.)
        let mut cases = vec![&["--security-opt", "seccomp=unconfined"][..]];
        if rt.is_empty() {
            cases.push(&["--privileged"]);
        }
        for opts in cases {
            let out = run(&d, &rt, opts, &["sh", "-c", SH]);
            let text = out.ok().to_string();
            assert!(text.starts_with("Seccomp:\t0\n"), "{rt:?} {opts:?} {text}");
            assert!(!text.contains("userns-refused"), "{rt:?} {opts:?} {text}");
        }
    }
    d.docker(&["version"]).ok();
}

/// The host's python3 and libc (the host's root bound read-only), run inside the container,
/// make the raw system calls busybox has no applet for.
#[cfg(target_arch = "x86_64")]
#[test]
fn builtin_profile_refuses_keyrings_kexec_handles_and_clone3() {
    let d = TestDaemon::start();
    d.import_busybox();
    let py = "import ctypes\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        libc.syscall.restype = ctypes.c_long\n\
        def call(nr, *a):\n\
        \x20   r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])\n\
        \x20   return 'ok' if r >= 0 else str(ctypes.get_errno())\n\
        calls = [('keyctl', 250, 0, 0), ('add_key', 248, 0, 0), ('request_key', 249, 0, 0),\n\
        \x20   ('kexec_load', 246, 0, 0), ('open_by_handle_at', 304, 0, 0), ('clone3', 435, 0, 0),\n\
        \x20   ('unshare', 272, 0x10000000, 0), ('getpid', 39, 0, 0), ('socket_vsock', 41, 40, 1)]\n\
        print(' '.join(n + '=' + call(nr, a, b) for n, nr, a, b in calls))\n";
    for rt in runtimes() {
        let mut base = vec!["-v", "/:/host:ro"];
        base.extend_from_slice(&rt);
        let cmd = ["chroot", "/host", "python3", "-c", py];
        let confined = run(&d, &base, &[], &cmd).ok().trim().to_string();
        assert_eq!(
            confined,
            "keyctl=1 add_key=1 request_key=1 kexec_load=1 open_by_handle_at=1 clone3=38 \
             unshare=1 getpid=ok socket_vsock=1",
            "{rt:?}"
        );
        // Without the filter the kernel answers for itself (EINVAL, EFAULT, ...), which shows
        // that the EPERM above is the filter's.
        let free = run(&d, &base, &["--security-opt", "seccomp=unconfined"], &cmd)
            .ok()
            .trim()
            .to_string();
        assert!(
            !free.contains("keyctl=1 ") && !free.contains("clone3=38"),
            "{rt:?} {free}"
        );
    }
    d.docker(&["version"]).ok();
}

#[test]
fn custom_profile_from_a_file_is_enforced() {
    let d = TestDaemon::start();
    d.import_busybox();
    let profile = d.dir().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]
        }"#,
    )
    .expect("profile");
    let opt = format!("seccomp={}", profile.display());
    for rt in runtimes() {
        let out = run(&d, &rt, &["--security-opt", &opt], &["mkdir", "/x"]);
        assert_eq!(out.status, 1, "{rt:?} {out:?}");
        assert!(
            out.stderr.contains("Operation not permitted"),
            "{rt:?} {out:?}"
        );
        let ok = run(
            &d,
            &rt,
            &["--security-opt", &opt],
            &["sh", "-c", "echo fine"],
        );
        assert_eq!(ok.ok(), "fine\n");
    }
    // berth's own CLI reads the file the same way.
    let out = d.berth(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/x",
    ]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    // A profile that is not one fails the start; bad options fail the create.
    let bad = d.dir().join("bad.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).expect("bad");
    let out = run(
        &d,
        &[],
        &["--security-opt", &format!("seccomp={}", bad.display())],
        &["true"],
    );
    assert_ne!(out.status, 0, "{out:?}");
    let out = run(&d, &[], &["--security-opt", "foo=bar"], &["true"]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("invalid --security-opt 2: \"foo=bar\""),
        "{out:?}"
    );
    d.docker(&["version"]).ok();
}

#[test]
fn info_names_the_builtin_profile() {
    let d = TestDaemon::start();
    let out = d.docker(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(
        out.ok().contains("\"name=seccomp,profile=builtin\""),
        "{out:?}"
    );
}

/// The Python SDK sends `security_opt` as it is: the profile's JSON inline, or `unconfined`.
#[test]
fn python_sdk_security_opt() {
    let d = TestDaemon::start();
    d.import_busybox();
    let script = r#"
import json
deny = json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
def run(opts, cmd):
    try:
        return c.containers.run("busybox", ["sh", "-c", cmd], remove=True, network_mode="none",
                                security_opt=opts).decode().strip()
    except docker.errors.ContainerError as e:
        return "exit %d" % e.exit_status
print(run(["seccomp=unconfined"], "grep Seccomp: /proc/self/status"))
print(run(["seccomp=" + deny], "mkdir /x"))
print(run(["seccomp=" + deny, "no-new-privileges"], "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"))
"#;
    let out = d.python(script);
    let lines: Vec<String> = out.ok().lines().map(|l| l.replace('\t', " ")).collect();
    assert_eq!(
        lines,
        ["Seccomp: 0", "exit 1", "NoNewPrivs: 1", "Seccomp: 2"],
        "{out:?}"
    );
}
