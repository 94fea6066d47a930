//! Isolation and limits of containers run by the native runtime through the monitor: pid,
//! mount, uts namespaces, Docker's capability set, masked and read-only paths, descriptors,
//! users, cgroup limits that hold (pids, memory with OOM kill), read-only rootfs, binds.

mod runtime_support;

use runtime_support::*;

fn run_sh(
    tag: &str,
    script: &str,
    edit: impl FnOnce(&mut berth_runtime::spec::SpecOptions),
) -> (serde_json::Value, String, String) {
    let c = Ctr::new(tag);
    let mut o = c.opts(&["sh", "-c", script]);
    edit(&mut o);
    c.run(&o)
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

#[test]
fn default_isolation_matches_docker() {
    let script = r#"
ls /proc > /tmp/procs
echo "procs: $(grep '^[0-9]' /tmp/procs | tr '\n' ' ')"
echo "pid: $$"
echo "host: $(hostname)"
grep Cap /proc/self/status
echo "kcore: $([ -e /proc/kcore ] && wc -c < /proc/kcore || echo 0)"
echo "keys: $(wc -c < /proc/keys) $(wc -c < /proc/timer_list)"
echo "acpi: $(ls /proc/acpi | wc -l)"
echo "fds: $(ls /proc/self/fd | tr '\n' ' ')"
mount -t tmpfs none /tmp 2>/dev/null && echo "mount: ok" || echo "mount: denied"
echo junk > /tmp/m.ko
echo "insmod: $(insmod /tmp/m.ko 2>&1)"
echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo "procsys: rw" || echo "procsys: ro"
echo x > /sys/kernel/x 2>/dev/null && echo "sys: rw" || echo "sys: ro"
echo "cgroupfs: $(ls /sys/fs/cgroup | tr '\n' ' ')"
echo "devs: $(ls /dev | tr '\n' ' ')"
mknod /tmp/sda b 8 0 && (head -c1 /tmp/sda >/dev/null 2>&1 && echo "blk: open" || echo "blk: denied")
echo "nofile: $(ulimit -n)"
echo "shm: $(df -k /dev/shm | tail -1 | awk '{print $2}')"
"#;
    let (exit, out, err) = run_sh("iso", script, |_| {});
    assert_eq!(exit["exit_code"], 0, "{exit} {out} {err}");
    // Itself (1) and the `ls` that listed /proc: no host process is visible.
    assert_eq!(field(&out, "procs:").split(' ').count(), 2, "{out}");
    assert_eq!(field(&out, "procs:").split(' ').next(), Some("1"), "{out}");
    assert_eq!(field(&out, "pid:"), "1");
    assert_eq!(field(&out, "host:"), "testhost");
    assert_eq!(field(&out, "CapEff:"), "00000000a80425fb");
    assert_eq!(field(&out, "CapPrm:"), "00000000a80425fb");
    assert_eq!(field(&out, "CapBnd:"), "00000000a80425fb");
    assert_eq!(field(&out, "CapInh:"), "0000000000000000");
    assert_eq!(field(&out, "CapAmb:"), "0000000000000000");
    assert_eq!(field(&out, "kcore:"), "0", "/proc/kcore masked (or absent)");
    assert_eq!(
        field(&out, "keys:"),
        "0 0",
        "/proc/keys, /proc/timer_list masked"
    );
    assert_eq!(field(&out, "acpi:"), "0", "/proc/acpi masked");
    assert_eq!(field(&out, "fds:"), "0 1 2 3", "only stdio and ls's own fd");
    assert_eq!(field(&out, "mount:"), "denied");
    // EPERM (no CAP_SYS_MODULE, also checked in CapBnd above), or ENOSYS on kernels built
    // without module support.
    let insmod = field(&out, "insmod:");
    assert!(
        insmod.contains("Operation not permitted") || insmod.contains("not support"),
        "{out}"
    );
    assert_eq!(field(&out, "procsys:"), "ro");
    assert_eq!(field(&out, "sys:"), "ro");
    let cg = field(&out, "cgroupfs:");
    assert!(cg.contains("memory") && cg.contains("pids"), "{cg}");
    let devs = field(&out, "devs:");
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd",
    ] {
        assert!(devs.split(' ').any(|x| x == d), "/dev/{d} missing: {devs}");
    }
    assert_eq!(
        field(&out, "blk:"),
        "denied",
        "device cgroup blocks host disks"
    );
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a local struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(field(&out, "nofile:"), lim.rlim_cur.to_string());
    assert_eq!(field(&out, "shm:"), "65536");
}

#[test]
fn user_switch_and_groups() {
    let (exit, out, _) = run_sh(
        "usr",
        "id; echo home=$HOME; grep Cap[EP] /proc/self/status",
        |o| {
            o.user = "app".into();
        },
    );
    assert_eq!(exit["exit_code"], 0);
    // The kernel keeps supplementary groups sorted.
    assert!(
        out.starts_with("uid=1000(app) gid=1000(app) groups=50(staff),1000(app)"),
        "{out}"
    );
    assert!(out.contains("home=/home/app"), "{out}");
    assert_eq!(field(&out, "CapEff:"), "0000000000000000");
    let (_, out, _) = run_sh("usr", "id", |o| o.user = "4242:50".into());
    assert!(
        out.starts_with("uid=4242 gid=50(staff) groups=50(staff)"),
        "{out}"
    );
    let (_, out, _) = run_sh("usr", "id", |_| {});
    assert!(
        out.starts_with("uid=0(root) gid=0(root) groups=0(root)"),
        "{out}"
    );
    let (_, out, _) = run_sh("usr", "id", |o| o.user = "4242".into());
    assert!(out.starts_with("uid=4242 gid=0(root)"), "{out}");
}

#[test]
fn cap_add_drop_privileged_and_no_new_privs() {
    let (_, out, _) = run_sh(
        "cap",
        "grep -E 'CapEff|NoNewPrivs' /proc/self/status",
        |o| {
            o.cap_add = vec!["NET_ADMIN".into()];
            o.cap_drop = vec!["chown".into()];
            o.no_new_privileges = true;
        },
    );
    let want = 0xa80425fbu64 & !1 | (1 << 12);
    assert_eq!(field(&out, "CapEff:"), format!("{want:016x}"));
    assert_eq!(field(&out, "NoNewPrivs:"), "1");
    let (_, out, _) = run_sh("priv", "grep CapEff /proc/self/status; wc -c < /proc/kcore >/dev/null 2>&1; mount -t tmpfs none /tmp && echo mounted", |o| {
        o.privileged = true;
    });
    assert!(out.contains("mounted"), "{out}");
    assert_ne!(field(&out, "CapEff:"), "00000000a80425fb");
}

#[test]
fn readonly_rootfs_binds_tmpfs_and_sysctl() {
    let host = tempfile::tempdir().expect("tmp");
    std::fs::write(host.path().join("hello"), "from host\n").expect("w");
    let file = host.path().join("hosts");
    std::fs::write(&file, "127.0.0.1 localhost\n").expect("w");
    let script = "touch /x 2>/dev/null && echo root: rw || echo root: ro; cat /data/hello; \
        echo > /data/new && echo data: rw; echo > /ro/new 2>/dev/null || echo ro: ro; \
        touch /scratch/f && echo tmpfs: rw; cat /etc/hosts; cat /proc/sys/net/ipv4/ip_forward";
    let (exit, out, err) = run_sh("ro", script, |o| {
        o.readonly_rootfs = true;
        let bind = |src: &std::path::Path, dst: &str, ro: bool| berth_runtime::spec::MountSpec {
            destination: dst.into(),
            kind: "bind".into(),
            source: src.display().to_string(),
            options: if ro {
                vec!["rbind".into(), "ro".into()]
            } else {
                vec!["rbind".into()]
            },
        };
        o.mounts = vec![
            bind(host.path(), "/data", false),
            bind(host.path(), "/ro", true),
            bind(&file, "/etc/hosts", false),
            berth_runtime::spec::MountSpec {
                destination: "/scratch".into(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                options: vec!["size=1m".into()],
            },
        ];
        o.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
    });
    assert_eq!(exit["exit_code"], 0, "{exit} {err}");
    assert!(
        out.contains("root: ro") && out.contains("from host") && out.contains("data: rw"),
        "{out}"
    );
    assert!(
        out.contains("ro: ro") && out.contains("tmpfs: rw") && out.contains("127.0.0.1 localhost"),
        "{out}"
    );
    assert!(out.trim_end().ends_with('1'), "sysctl applied: {out}");
    assert!(host.path().join("new").exists());
}

#[test]
fn pids_limit_bounds_a_fork_bomb() {
    // The bomb runs in a subshell (busybox sh exits when fork fails); the report uses
    // builtins only, as no process can be forked at the limit.
    let script = "(i=0; while [ $i -lt 60 ]; do sleep 100 & i=$((i+1)); done) 2>/dev/null; \
        read max < /sys/fs/cgroup/pids/pids.max; echo max: $max; \
        set -- /proc/[0-9]*; echo procs: $#";
    let c = Ctr::new("pids");
    let mut o = c.opts(&["sh", "-c", script]);
    o.pids_limit = 20;
    let (exit, out, _) = c.run(&o);
    assert_eq!(exit["exit_code"], 0, "{exit}");
    assert_eq!(field(&out, "max:"), "20");
    let n: u32 = field(&out, "procs:").parse().expect("count");
    assert!((10..=20).contains(&n), "{n} processes");
}

#[test]
fn memory_hog_is_oom_killed_and_flagged() {
    let c = Ctr::new("oom");
    let mut o = c.opts(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; tail /dev/zero",
    ]);
    o.memory = 64 << 20;
    o.memory_swap = 64 << 20;
    let (exit, out, _) = c.run(&o);
    assert_eq!(out.trim(), (64u64 << 20).to_string());
    assert_eq!(exit["oom_killed"], true, "{exit}");
    assert_eq!(exit["exit_code"], 137, "{exit}");
}

#[test]
fn cpu_limits_land_in_the_cgroup() {
    let script = "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares";
    let (exit, out, err) = run_sh("cpu", script, |o| {
        o.cpu_quota = 50_000;
        o.cpu_period = 100_000;
        o.cpu_shares = 512;
    });
    assert_eq!(exit["exit_code"], 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["50000", "100000", "512"]
    );
}

#[test]
fn seccomp_default_profile_blocks_new_namespaces() {
    let script = "unshare -U true 2>/dev/null && echo userns: ok || echo userns: denied; \
        unshare -n true 2>/dev/null && echo netns: ok || echo netns: denied; \
        grep Seccomp: /proc/self/status";
    let (exit, out, _) = run_sh("sec", script, |_| {});
    assert_eq!(exit["exit_code"], 0);
    assert_eq!(field(&out, "userns:"), "denied");
    assert_eq!(field(&out, "netns:"), "denied");
    assert_eq!(field(&out, "Seccomp:"), "2", "filter mode");
    let (_, out, _) = run_sh("sec", script, |o| {
        o.seccomp = berth_runtime::seccomp::Seccomp::Unconfined
    });
    assert_eq!(field(&out, "Seccomp:"), "0");
    // Without seccomp, a user namespace needs no capability (where the kernel allows them).
    let userns_allowed = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .map(|s| s.trim() != "0")
        .unwrap_or(false);
    if userns_allowed {
        assert_eq!(field(&out, "userns:"), "ok");
    }
    let (_, out, _) = run_sh("sec", script, |o| o.cap_add = vec!["SYS_ADMIN".into()]);
    assert_eq!(
        field(&out, "netns:"),
        "ok",
        "CAP_SYS_ADMIN lifts the namespace rules"
    );
}
