//! `docker update` / `berth update` / docker-py against berthd (issue 4): limits land in the
//! running container's v1 cgroup files at once, are kept in inspect and across a daemon
//! restart, reach a stopped container when it starts, and Docker's refusals keep their texts.

use berth_tests::TestDaemon;

fn cg(controller: &str, id: &str, file: &str) -> String {
    let p = format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn update_limits_live_and_persisted() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let id = d
        .docker(&[
            "run",
            "-d",
            "--name",
            "up",
            "--memory",
            "64m",
            "--pids-limit",
            "20",
            "busybox",
            "sleep",
            "1000",
        ])
        .ok()
        .trim()
        .to_string();
    let out = d.docker(&[
        "update",
        "--memory",
        "96m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "30",
        "--cpu-shares",
        "512",
        "--restart",
        "always",
        "up",
    ]);
    assert_eq!(out.ok(), "up\n");
    assert_eq!(
        cg("memory", &id, "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(cg("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpu", &id, "cpu.shares"), "512");
    assert_eq!(cg("pids", &id, "pids.max"), "30");
    // Memory above the recorded swap limit needs the swap limit too (Docker's text).
    let refused = d.docker(&["update", "--memory", "512m", "up"]);
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(
        refused.stderr.contains(&format!("Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit")),
        "{}",
        refused.stderr
    );
    d.docker(&["update", "--memory", "256m", "--memory-swap", "512m", "up"])
        .ok();
    assert_eq!(
        cg("memory", &id, "memory.limit_in_bytes"),
        (256u64 << 20).to_string()
    );
    assert_eq!(
        cg("memory", &id, "memory.memsw.limit_in_bytes"),
        (512u64 << 20).to_string()
    );
    let tiny = d.docker(&["update", "--memory", "1m", "up"]);
    assert!(
        tiny.stderr.contains("Minimum memory limit allowed is 6MB"),
        "{tiny:?}"
    );
    let none = d.docker(&["update", "up"]);
    assert!(
        none.stderr.contains("you must provide one or more flags"),
        "{none:?}"
    );
    let none = d.berth(&["update", "up"]);
    assert!(
        none.stderr.contains("you must provide one or more flags"),
        "{none:?}"
    );
    // Unlimited pids through berth, then docker-py.
    assert_eq!(
        d.berth(&["update", "--pids-limit", "-1", "up"]).ok(),
        "up\n"
    );
    assert_eq!(cg("pids", &id, "pids.max"), "max");
    d.python("print(c.containers.get('up').update(cpu_shares=256, mem_limit='200m'))")
        .ok();
    assert_eq!(cg("cpu", &id, "cpu.shares"), "256");
    assert_eq!(
        cg("memory", &id, "memory.limit_in_bytes"),
        (200u64 << 20).to_string()
    );
    d.docker(&["update", "--pids-limit", "40", "up"]).ok();
    assert_eq!(cg("pids", &id, "pids.max"), "40");
    // Kept in inspect, across a daemon restart.
    d.restart();
    let f = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}}";
    assert_eq!(
        d.docker(&["inspect", "-f", f, "up"]).ok().trim(),
        format!("{} {} 500000000 40 256 always", 200u64 << 20, 512u64 << 20)
    );
    // A stopped container: recorded now, applied at start.
    d.docker(&["stop", "-t", "0", "up"]).ok();
    d.docker(&["update", "--pids-limit", "25", "up"]).ok();
    d.docker(&["start", "up"]).ok();
    assert_eq!(cg("pids", &id, "pids.max"), "25");
    let missing = d.docker(&["update", "--memory", "64m", "nope"]);
    assert!(
        missing.stderr.contains("No such container: nope"),
        "{missing:?}"
    );
    d.docker(&["rm", "-f", "up"]).ok();
}
