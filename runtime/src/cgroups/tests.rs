//! Unit tests of the cgroup code against cgroup-shaped trees of plain files (v2 and v1).

use super::*;

/// The v2 code path against a cgroup2-shaped tree of plain files.
#[test]
fn v2_tree() {
    let t = tempfile::tempdir().expect("tmp");
    fs::write(
        t.path().join("cgroup.controllers"),
        "cpuset cpu io memory pids",
    )
    .expect("w");
    fs::write(t.path().join("cgroup.subtree_control"), "").expect("w");
    let cg = Cgroup::new(Hierarchy::V2(t.path().to_path_buf()), "berth/abc");
    cg.create().expect("create");
    assert_eq!(
        fs::read_to_string(t.path().join("cgroup.subtree_control")).expect("r"),
        "+memory +cpu +cpuset +pids +io"
    );
    cg.apply(&Limits {
        memory: 64 << 20,
        memory_swap: 128 << 20,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        cpu_shares: 512,
        pids: 20,
        cpuset_cpus: "0-1".into(),
        cpuset_mems: String::new(),
        // Device rules need a real cgroup2 folder (BPF): see tests/tests/runtime_cgroup2.rs.
        devices: vec![],
    })
    .expect("apply");
    let d = t.path().join("berth/abc");
    assert_eq!(
        fs::read_to_string(d.join("memory.max")).expect("r"),
        "67108864"
    );
    assert_eq!(
        fs::read_to_string(d.join("memory.swap.max")).expect("r"),
        "67108864"
    );
    assert_eq!(
        fs::read_to_string(d.join("cpu.max")).expect("r"),
        "50000 100000"
    );
    assert_eq!(fs::read_to_string(d.join("cpu.weight")).expect("r"), "20");
    assert_eq!(fs::read_to_string(d.join("pids.max")).expect("r"), "20");
    assert_eq!(fs::read_to_string(d.join("cpuset.cpus")).expect("r"), "0-1");
    assert!(!d.join("cpuset.mems").exists(), "none asked, none written");
    cg.freeze(true).expect("freeze");
    assert_eq!(fs::read_to_string(d.join("cgroup.freeze")).expect("r"), "1");
    fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .expect("w");
    assert_eq!(cg.oom_kills(), 1);
}

/// A cgroup2-shaped tree with the given root controllers.
fn v2_root(controllers: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tmp");
    fs::write(t.path().join("cgroup.controllers"), controllers).expect("w");
    fs::write(t.path().join("cgroup.subtree_control"), "").expect("w");
    t
}

#[test]
fn v2_swap_unlimited_and_stats() {
    let t = v2_root("cpu memory pids");
    let cg = Cgroup::new(Hierarchy::V2(t.path().to_path_buf()), "/berth/s1/");
    cg.create().expect("create");
    cg.apply(&Limits {
        memory: 1 << 20,
        memory_swap: -1,
        cpu_shares: 1024,
        ..Default::default()
    })
    .expect("apply");
    let d = t.path().join("berth/s1");
    assert_eq!(
        fs::read_to_string(d.join("memory.swap.max")).expect("r"),
        "max"
    );
    // runc's conversion: 1 + ((1024 - 2) * 9999) / 262142 = 39.
    assert_eq!(fs::read_to_string(d.join("cpu.weight")).expect("r"), "39");
    assert!(!d.join("cpu.max").exists(), "no quota asked, none written");
    fs::write(
        d.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    )
    .expect("w");
    fs::write(d.join("memory.current"), "4096\n").expect("w");
    fs::write(
        d.join("memory.stat"),
        "anon 1024\ninactive_file 512\npgfault 70\npgmajfault 7\n",
    )
    .expect("w");
    fs::write(d.join("pids.current"), "3\n").expect("w");
    fs::write(d.join("pids.max"), "max\n").expect("w");
    fs::write(
        d.join("io.stat"),
        "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n",
    )
    .expect("w");
    fs::write(d.join("cgroup.procs"), "42\n43\n").expect("w");
    let s = cg.stats();
    assert_eq!(
        (s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns),
        (1_500_000, 1_000_000, 500_000)
    );
    assert_eq!(
        (s.memory_usage, s.memory_limit, s.inactive_file),
        (4096, 1 << 20, 512)
    );
    assert_eq!((s.pids_current, s.pids_limit), (3, 0));
    // The CRI's figures from the v2 names.
    assert_eq!(
        (
            s.working_set(),
            s.rss(),
            s.page_faults(),
            s.major_page_faults()
        ),
        (3584, 1024, 70, 7)
    );
    assert_eq!(s.memory_limit_set(), Some(1 << 20));
    assert_eq!(s.io_service_bytes.len(), 2);
    assert_eq!(
        (
            s.io_service_bytes[1].op.as_str(),
            s.io_service_bytes[1].value
        ),
        ("write", 200)
    );
    assert!(s.system_cpu_ns > 0 && s.online_cpus > 0);
    assert_eq!(cg.pids(), vec![42, 43]);
    assert!(!cg.is_frozen());
}

#[test]
fn v2_without_controllers_still_creates() {
    let t = v2_root("");
    let cg = Cgroup::new(Hierarchy::V2(t.path().to_path_buf()), "berth/x");
    cg.create().expect("create");
    assert_eq!(
        fs::read_to_string(t.path().join("cgroup.subtree_control")).expect("r"),
        ""
    );
    assert!(t.path().join("berth/x").is_dir());
}

#[test]
fn v1_tree_limits_devices_and_oom() {
    let t = tempfile::tempdir().expect("tmp");
    let mut m = BTreeMap::new();
    for c in ["memory", "cpu", "pids", "devices", "freezer", "cpuset"] {
        fs::create_dir_all(t.path().join(c)).expect("mkdir");
        m.insert(c.to_string(), t.path().join(c));
    }
    fs::write(t.path().join("memory/memory.memsw.limit_in_bytes"), "").expect("w");
    // The root cpuset the container's is copied from at create.
    fs::write(t.path().join("cpuset/cpuset.cpus"), "0-3").expect("w");
    fs::write(t.path().join("cpuset/cpuset.mems"), "0").expect("w");
    let cg = Cgroup::new(Hierarchy::V1(m), "berth/v1");
    cg.create().expect("create");
    fs::write(
        t.path().join("memory/berth/v1/memory.memsw.limit_in_bytes"),
        "",
    )
    .expect("w");
    cg.apply(&Limits {
        memory: 64 << 20,
        memory_swap: 128 << 20,
        cpu_quota: 150_000,
        cpu_period: 100_000,
        cpu_shares: 256,
        pids: 20,
        cpuset_cpus: "1,3".into(),
        cpuset_mems: "0".into(),
        devices: vec![(false, "a *:* rwm".into()), (true, "c 1:3 rwm".into())],
    })
    .expect("apply");
    let r = |p: &str| fs::read_to_string(t.path().join(p)).expect(p);
    assert_eq!(r("memory/berth/v1/memory.limit_in_bytes"), "67108864");
    assert_eq!(
        r("memory/berth/v1/memory.memsw.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(r("cpu/berth/v1/cpu.cfs_quota_us"), "150000");
    assert_eq!(r("cpu/berth/v1/cpu.cfs_period_us"), "100000");
    assert_eq!(r("cpu/berth/v1/cpu.shares"), "256");
    assert_eq!(r("pids/berth/v1/pids.max"), "20");
    assert_eq!(r("cpuset/berth/v1/cpuset.cpus"), "1,3");
    assert_eq!(r("cpuset/berth/v1/cpuset.mems"), "0");
    assert_eq!(r("devices/berth/v1/devices.deny"), "a *:* rwm");
    assert_eq!(r("devices/berth/v1/devices.allow"), "c 1:3 rwm");
    fs::write(
        t.path().join("memory/berth/v1/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    .expect("w");
    assert_eq!(cg.oom_kills(), 2);
    // Stats from the v1 names (the hierarchy's `total_*`), without a limit.
    fs::write(
        t.path().join("memory/berth/v1/memory.usage_in_bytes"),
        "8192",
    )
    .expect("w");
    fs::write(
        t.path().join("memory/berth/v1/memory.limit_in_bytes"),
        "9223372036854771712",
    )
    .expect("w");
    fs::write(
        t.path().join("memory/berth/v1/memory.stat"),
        "rss 1\npgfault 2\ntotal_rss 4096\ntotal_pgfault 90\ntotal_pgmajfault 9\ntotal_inactive_file 1024\n",
    )
    .expect("w");
    fs::write(t.path().join("pids/berth/v1/pids.current"), "5").expect("w");
    let s = cg.stats();
    assert_eq!(
        (
            s.working_set(),
            s.rss(),
            s.page_faults(),
            s.major_page_faults()
        ),
        (7168, 4096, 90, 9)
    );
    assert_eq!((s.memory_limit_set(), s.pids_current), (None, 5));
}

#[test]
fn device_rules_from_a_spec() {
    let spec = crate::spec::build_json(&crate::spec::SpecOptions {
        rootfs: "/nonexistent".into(),
        cpuset_cpus: "0".into(),
        ..Default::default()
    })
    .expect("spec");
    let l = Limits::from_resources(&spec["linux"]["resources"]);
    assert_eq!((l.cpuset_cpus.as_str(), l.cpuset_mems.as_str()), ("0", ""));
    assert_eq!(l.devices[0], (false, "a *:* rwm".to_string()));
    assert!(l.devices.contains(&(true, "c 1:3 rwm".to_string())));
    assert!(l.devices.contains(&(true, "c 136:* rwm".to_string())));
    assert!(l.devices.contains(&(true, "c *:* m".to_string())));
}

/// A live update (`docker update`): raising memory above the old memsw limit, and lifting
/// the pids limit (`max`), on a v1 and on a cgroup2-shaped tree.
#[test]
fn live_update_raises_memory_and_lifts_pids() {
    let t = tempfile::tempdir().expect("tmp");
    let mut m = BTreeMap::new();
    for c in ["memory", "pids"] {
        fs::create_dir_all(t.path().join(c).join("berth/u")).expect("mkdir");
        m.insert(c.to_string(), t.path().join(c));
    }
    let mem = t.path().join("memory/berth/u");
    fs::write(mem.join("memory.memsw.limit_in_bytes"), "134217728\n").expect("w");
    let cg = Cgroup::new(Hierarchy::V1(m), "berth/u");
    let l = Limits {
        memory: 256 << 20,
        memory_swap: 512 << 20,
        pids: -1,
        ..Default::default()
    };
    cg.apply(&l).expect("apply");
    let r = |p: &Path| fs::read_to_string(p).expect("read");
    assert_eq!(r(&mem.join("memory.limit_in_bytes")), "268435456");
    assert_eq!(r(&mem.join("memory.memsw.limit_in_bytes")), "536870912");
    assert_eq!(r(&t.path().join("pids/berth/u/pids.max")), "max");
    let t2 = tempfile::tempdir().expect("tmp");
    fs::create_dir_all(t2.path().join("berth/u")).expect("mkdir");
    let cg2 = Cgroup::new(Hierarchy::V2(t2.path().to_path_buf()), "berth/u");
    cg2.apply(&l).expect("apply v2");
    let d = t2.path().join("berth/u");
    assert_eq!(r(&d.join("memory.max")), "268435456");
    assert_eq!(r(&d.join("memory.swap.max")), "268435456");
    assert_eq!(r(&d.join("pids.max")), "max");
}

#[test]
fn the_memory_folder_is_removed_last() {
    let mut m = BTreeMap::new();
    for c in ["blkio", "memory", "pids", "cpuset"] {
        m.insert(c.to_string(), std::path::PathBuf::from("/cg").join(c));
    }
    let cg = Cgroup::new(Hierarchy::V1(m), "berth/x");
    let order = cg.removal_order();
    assert_eq!(order.len(), 4);
    assert_eq!(
        order.last(),
        Some(&std::path::PathBuf::from("/cg/memory/berth/x"))
    );
}

/// A v1 tree with a cpuset hierarchy of its own, its root offering CPUs 0-3 and node 0.
fn v1_tree_with_cpuset(t: &std::path::Path) -> BTreeMap<String, std::path::PathBuf> {
    let mut m = BTreeMap::new();
    for c in ["memory", "pids", "cpuset"] {
        fs::create_dir_all(t.join(c)).expect("mkdir");
        m.insert(c.to_string(), t.join(c));
    }
    fs::write(t.join("cpuset/cpuset.cpus"), "0-3").expect("w");
    fs::write(t.join("cpuset/cpuset.mems"), "0").expect("w");
    m
}

#[test]
fn a_container_asking_for_no_cpuset_joins_its_parents() {
    let t = tempfile::tempdir().expect("tmp");
    let cg = Cgroup::new(Hierarchy::V1(v1_tree_with_cpuset(t.path())), "berth/c1");
    cg.create_with(false).expect("create");
    let r = |p: &str| fs::read_to_string(t.path().join(p)).unwrap_or_default();
    assert!(!t.path().join("cpuset/berth/c1").exists());
    assert_eq!(r("cpuset/berth/cpuset.cpus"), "0-3");
    assert_eq!(r("cpuset/berth/cpuset.mems"), "0");
    assert!(t.path().join("memory/berth/c1").is_dir());
    let joined = cg.task_dirs();
    assert!(
        joined.contains(&t.path().join("cpuset/berth")),
        "{joined:?}"
    );
    assert!(
        joined.contains(&t.path().join("pids/berth/c1")),
        "{joined:?}"
    );
    assert!(!cg
        .dirs()
        .iter()
        .any(|d| d.starts_with(t.path().join("cpuset"))));

    // A live update asking for CPUs makes the folder and moves the tasks in.
    fs::write(t.path().join("pids/berth/c1/cgroup.procs"), "4242\n").expect("w");
    cg.apply(&Limits {
        cpuset_cpus: "1".into(),
        ..Default::default()
    })
    .expect("apply");
    assert_eq!(r("cpuset/berth/c1/cpuset.cpus"), "1");
    assert_eq!(r("cpuset/berth/c1/cpuset.mems"), "0");
    assert_eq!(r("cpuset/berth/c1/cgroup.procs"), "4242");
    assert_eq!(cg.task_dirs(), cg.dirs());
}

#[test]
fn a_co_mounted_cpuset_folder_is_always_made() {
    let t = tempfile::tempdir().expect("tmp");
    let mut m = v1_tree_with_cpuset(t.path());
    m.insert("cpu".to_string(), t.path().join("cpuset"));
    let cg = Cgroup::new(Hierarchy::V1(m), "berth/c2");
    cg.create_with(false).expect("create");
    assert!(t.path().join("cpuset/berth/c2").is_dir());
    assert_eq!(
        fs::read_to_string(t.path().join("cpuset/berth/c2/cpuset.cpus")).expect("r"),
        "0-3"
    );
}
