//! `NativeRuntime` through the `core::Runtime` trait, without the monitor: create (blocked
//! before exec), start, state, pause/resume, kill, delete, and the start error of a missing
//! command. One test function: the runtime clones the calling process, which is safest with
//! as few threads around as possible.

mod runtime_support;

use berth_core::runtime::{Status, StdioFds};
use berth_core::Runtime;
use berth_runtime::cgroups::Hierarchy;
use berth_runtime::native::NativeRuntime;
use berth_runtime::spec::build_spec;
use runtime_support::*;
use std::io::Read;
use std::os::fd::AsRawFd;

fn wait_exit(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

#[test]
fn native_runtime_lifecycle() {
    let rt = NativeRuntime::new(Hierarchy::detect());
    let null = std::fs::File::open("/dev/null").expect("null");

    // create → output only after start → exit code → delete.
    let c = Ctr::new("nat");
    let spec = build_spec(&c.opts(&["sh", "-c", "echo hello from $$; exit 4"])).expect("spec");
    let (mut out_r, out_w) = pipe();
    let stdio = StdioFds {
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: out_w.as_raw_fd(),
    };
    let pid = rt.create(&c.id, &c.bundle, &spec, stdio).expect("create");
    drop(out_w);
    assert_eq!(rt.state(&c.id).expect("state").status, Status::Created);
    let cg = std::path::Path::new("/sys/fs/cgroup/pids").join(c.cgroup_path());
    // `create` returns once the init is cloned; the init joins its cgroup (v1: by itself)
    // before it may exec, so it shows up there while it still waits for `start`.
    let placed = (0..200).any(|_| {
        let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        let there = procs.trim() == pid.to_string();
        if !there {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        there
    });
    assert!(placed, "init placed in its cgroup before start");
    rt.start(&c.id).expect("start");
    let mut out = String::new();
    out_r.read_to_string(&mut out).expect("read");
    assert_eq!(out, "hello from 1\n");
    assert_eq!(wait_exit(pid), 4);
    assert_eq!(rt.state(&c.id).expect("state").status, Status::Stopped);
    rt.delete(&c.id).expect("delete");
    assert!(!cg.exists(), "cgroup removed");

    // pause / resume / kill.
    let c = Ctr::new("natp");
    let spec = build_spec(&c.opts(&["sleep", "1000"])).expect("spec");
    let stdio = StdioFds {
        stdin: null.as_raw_fd(),
        stdout: null.as_raw_fd(),
        stderr: null.as_raw_fd(),
    };
    let pid = rt.create(&c.id, &c.bundle, &spec, stdio).expect("create");
    rt.start(&c.id).expect("start");
    assert_eq!(rt.state(&c.id).expect("state").status, Status::Running);
    let stats = rt.cgroup(&c.id).expect("cgroup").stats();
    assert_eq!(stats.pids_current, 1, "{stats:?}");
    assert!(
        stats.memory_usage > 0 && stats.system_cpu_ns > 0,
        "{stats:?}"
    );
    assert!(
        stats.memory_stats.contains_key("total_inactive_file")
            || stats.memory_stats.contains_key("inactive_file")
    );
    rt.pause(&c.id).expect("pause");
    assert_eq!(rt.state(&c.id).expect("state").status, Status::Paused);
    rt.resume(&c.id).expect("resume");
    assert_eq!(rt.state(&c.id).expect("state").status, Status::Running);
    rt.kill(&c.id, libc::SIGKILL, false).expect("kill");
    assert_eq!(wait_exit(pid), 137);
    rt.delete(&c.id).expect("delete");

    // A missing command fails with Docker's text and code: `create` when the init's set-up
    // is over before it returns, else `start` (`create` returns once the init is cloned; the
    // init looks the command up before it reports itself set up). Nothing is left.
    let c = Ctr::new("natnf");
    let spec = build_spec(&c.opts(&["nope"])).expect("spec");
    let e = match rt.create(&c.id, &c.bundle, &spec, stdio) {
        Err(e) => e,
        Ok(pid) => {
            let e = rt.start(&c.id).expect_err("start must fail");
            let _ = wait_exit(pid);
            e
        }
    };
    assert_eq!(
        e,
        berth_core::DriverError::Exec {
            code: 127,
            message: "exec: \"nope\": executable file not found in $PATH".into()
        }
    );
    rt.delete(&c.id).expect("delete");
    let cg = std::path::Path::new("/sys/fs/cgroup/pids").join(c.cgroup_path());
    assert!(!cg.exists(), "cgroup removed");
}
