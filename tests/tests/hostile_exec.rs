//! Issue #15, item 3: `docker exec` is confined like the container, and the code that enters a
//! container leaves nothing of the host within reach. An exec gets the container's seccomp
//! profile, no_new_privs and capabilities (`exec --privileged`: every capability, and still the
//! container's filter, as Docker's); only 0-2 are open in the container's processes; a workdir
//! naming a descriptor (`/proc/self/fd/N`, CVE-2024-21626) fails or stays inside; and
//! CVE-2019-5736 is played for real: a container makes the runtime exec `#!/proc/self/exe`,
//! then tries to write the binary it reaches — the host's binaries stay byte-for-byte the same.

use berth_tests::TestDaemon;

/// `Seccomp`, `NoNewPrivs` and `CapEff` lines of a process's status.
const STATUS: &str = "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status";

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {text:?}"))
}

fn run_d(d: &TestDaemon, name: &str, opts: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(opts);
    args.extend(["busybox", "sleep", "300"]);
    d.docker(&args).ok();
}

#[test]
fn exec_gets_the_containers_seccomp_no_new_privs_and_capabilities() {
    let d = TestDaemon::start();
    d.import_busybox();
    run_d(&d, "nnp", &["--security-opt", "no-new-privileges"]);
    run_d(&d, "plain", &[]);
    run_d(&d, "few", &["--cap-drop", "ALL", "--cap-add", "NET_RAW"]);
    for (name, nnp) in [("nnp", "1"), ("plain", "0"), ("few", "0")] {
        let init = d
            .docker(&["exec", name, "cat", "/proc/1/status"])
            .ok()
            .to_string();
        for tty in [false, true] {
            let mut args = vec!["exec"];
            if tty {
                args.push("-t");
            }
            args.extend([name, "sh", "-c", STATUS]);
            let out = d.docker(&args).ok().replace('\r', "");
            assert_eq!(field(&out, "Seccomp"), "2", "{name} tty={tty}: {out}");
            assert_eq!(field(&out, "NoNewPrivs"), nnp, "{name} tty={tty}: {out}");
            assert_eq!(
                field(&out, "CapEff"),
                field(&init, "CapEff"),
                "{name}: {out}"
            );
        }
        assert_eq!(field(&init, "NoNewPrivs"), nnp, "{name} init: {init}");
        // The filter is the container's: no new user namespace from an exec either.
        let out = d.docker(&["exec", name, "unshare", "-U", "true"]);
        assert_ne!(out.status, 0, "{name}: {out:?}");
    }
    // exec --privileged: every capability the host's root has, and — as with Docker, whose
    // runc applies the container's filter to every process it joins to it — still the
    // container's filter, so no new user namespace; in a privileged container, no filter.
    let host = std::fs::read_to_string("/proc/self/status").expect("status");
    let out = d
        .docker(&["exec", "--privileged", "plain", "sh", "-c", STATUS])
        .ok()
        .to_string();
    assert_eq!(field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(field(&out, "CapEff"), field(&host, "CapBnd"), "{out}");
    let out = d.docker(&["exec", "--privileged", "plain", "unshare", "-U", "true"]);
    assert_ne!(out.status, 0, "{out:?}");
    run_d(&d, "priv", &["--privileged"]);
    let out = d
        .docker(&["exec", "priv", "sh", "-c", STATUS])
        .ok()
        .to_string();
    assert_eq!(field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(field(&out, "CapEff"), field(&host, "CapBnd"), "{out}");
    // A custom profile applies to execs too.
    let profile = d.dir().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("profile");
    run_d(
        &d,
        "custom",
        &["--security-opt", &format!("seccomp={}", profile.display())],
    );
    let out = d.docker(&["exec", "custom", "mkdir", "/x"]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    d.docker(&["version"]).ok();
}

#[test]
fn only_stdio_is_open_in_the_containers_processes() {
    let d = TestDaemon::start();
    d.import_busybox();
    run_d(&d, "fds", &[]);
    run_d(&d, "fdst", &["-t"]);
    let words = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_string).collect() };
    for name in ["fds", "fdst"] {
        // The init (pid 1), and each kind of exec: ls itself holds 3 (the directory it reads).
        let init = d
            .docker(&["exec", name, "ls", "/proc/1/fd"])
            .ok()
            .to_string();
        assert_eq!(words(&init), ["0", "1", "2"], "{name} init");
        for opts in [&[][..], &["-t"], &["-i"], &["-d"]] {
            let mut args = vec!["exec"];
            args.extend_from_slice(opts);
            args.extend([name, "sh", "-c", "ls /proc/self/fd > /tmp/fds"]);
            d.docker(&args).ok();
            // -d returns before the command ran.
            std::thread::sleep(std::time::Duration::from_millis(200));
            let fds = d
                .docker(&["exec", name, "cat", "/tmp/fds"])
                .ok()
                .to_string();
            assert_eq!(words(&fds), ["0", "1", "2", "3"], "{name} exec {opts:?}");
        }
    }
    let out = d.docker(&["run", "--rm", "busybox", "ls", "/proc/self/fd"]);
    assert_eq!(words(out.ok()), ["0", "1", "2", "3"]);
    d.docker(&["version"]).ok();
}

#[test]
fn a_workdir_naming_a_descriptor_does_not_escape() {
    let d = TestDaemon::start();
    d.import_busybox();
    run_d(&d, "wd", &[]);
    for n in 3..10 {
        let dir = format!("/proc/self/fd/{n}");
        for out in [
            d.docker(&["exec", "-w", &dir, "wd", "sh", "-c", "pwd; ls"]),
            d.docker(&["run", "--rm", "-w", &dir, "busybox", "sh", "-c", "pwd; ls"]),
        ] {
            // Refused, or (never here) a directory of the container's own.
            assert!(
                out.status != 0 || (out.stdout.starts_with('/') && out.stdout.contains("bin")),
                "{dir}: {out:?}"
            );
            assert!(!out.stdout.contains("unreachable"), "{dir}: {out:?}");
        }
    }
    d.docker(&["version"]).ok();
}

fn digest(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// CVE-2019-5736: the container's `/evil.sh` is `#!/proc/self/exe /evil-dir`, so the exec
/// makes the kernel run whatever the exec'ing process runs — berth-monitor — inside the
/// container, where it blocks on a FIFO. The container then opens that process's
/// `/proc/PID/exe` and tries to write it, while it runs and after it exited.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_runtime_binary_cannot_be_overwritten_from_inside() {
    let d = TestDaemon::start();
    d.import_busybox();
    let bins = berth_tests::target_dir();
    let watched = [bins.join("berth-monitor"), bins.join("berthd")];
    let before: Vec<Vec<u8>> = watched.iter().map(|p| digest(p)).collect();
    // The host's loader and libc, read-only, so that the monitor's binary can run inside.
    let ld = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").expect("ld.so");
    let ld_bind = format!("{}:/lib64/ld-linux-x86-64.so.2:ro", ld.display());
    let libs = "/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro";
    run_d(&d, "cve", &["-v", &ld_bind, "-v", libs]);
    let setup = "mkdir /evil-dir && mkfifo /evil-dir/monitor.json && \
        printf '#!/proc/self/exe /evil-dir\\n' > /evil.sh && chmod +x /evil.sh";
    d.docker(&["exec", "cve", "sh", "-c", setup]).ok();
    // Meanwhile, a loop tries every process's exe that is not the container's busybox.
    let spin = "while [ ! -e /stop ]; do for e in /proc/[0-9]*/exe; do \
        t=$(readlink $e 2>/dev/null) || continue; [ \"$t\" = /bin/busybox ] && continue; \
        echo \"seen $t\" >> /seen; \
        { printf X >> $e; } 2>/dev/null && echo \"WROTE $t\" >> /seen; done; done";
    d.docker(&["exec", "-d", "cve", "sh", "-c", spin]).ok();
    d.docker(&["exec", "-d", "cve", "/evil.sh"]).ok();
    for _ in 0..10 {
        d.docker(&["exec", "cve", "true"]).ok();
    }
    let attack = "p=$(for d in /proc/[0-9]*; do grep -q 'evil[.]sh' $d/cmdline 2>/dev/null && \
        echo ${d#/proc/}; done | head -n1); [ -n \"$p\" ] || { echo no-victim; exit 0; }; \
        echo exe=$(readlink /proc/$p/exe); exec 3</proc/$p/exe && echo held; \
        head -c 4 <&3 | grep -q ELF && echo elf; \
        { printf X >> /proc/$p/exe; } 2>/dev/null && echo WROTE-running; \
        echo '{}' > /evil-dir/monitor.json; sleep 0.3; \
        { printf X >> /proc/self/fd/3; } 2>/dev/null && echo WROTE-after; true";
    // The victim needs a moment to be exec'd and to block on the FIFO.
    let mut out = String::new();
    for _ in 0..50 {
        out = d
            .docker(&["exec", "cve", "sh", "-c", attack])
            .ok()
            .to_string();
        if !out.contains("no-victim") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    d.docker(&["exec", "cve", "touch", "/stop"]).ok();
    let seen = d
        .docker(&["exec", "cve", "sh", "-c", "cat /seen 2>/dev/null; true"])
        .ok()
        .to_string();
    assert!(out.contains("held") && out.contains("elf"), "{out}");
    assert!(out.contains("exe=/memfd:berth-monitor"), "{out}");
    assert!(!out.contains("WROTE"), "{out}");
    assert!(!seen.contains("WROTE"), "{seen}");
    let host = bins.display().to_string();
    assert!(!seen.contains(&host), "a host binary was reachable: {seen}");
    assert!(!out.contains(&host), "a host binary was reachable: {out}");
    let after: Vec<Vec<u8>> = watched.iter().map(|p| digest(p)).collect();
    assert!(before == after, "a host binary changed");
    d.docker(&["version"]).ok();
}
