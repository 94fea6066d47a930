//! Host-side checks of the verbs stress test: whether a process lives, what a daemon left
//! on the host (mounts, cgroups, veths, monitors, container folders), and polling until a
//! check comes back clean.

use berth_tests::TestDaemon;
use std::time::{Duration, Instant};

/// Whether process `pid` exists (and is not a zombie).
pub fn alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(") ")
                .next()
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        })
        .is_some_and(|state| state != "Z")
}

/// What is left on the host of this daemon's containers after they were all removed.
pub fn leftovers(d: &TestDaemon, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for m in d.host_mounts() {
        out.push(format!("mount {}", m.display()));
    }
    let mut cg_roots = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        cg_roots.extend(rd.flatten().map(|e| e.path()));
    }
    for r in &cg_roots {
        for id in ids {
            let cg = r.join("berth").join(id);
            if cg.exists() {
                out.push(format!("cgroup {}", cg.display()));
            }
        }
    }
    let brif = format!("/sys/class/net/{}/brif", d.bridge());
    if let Ok(rd) = std::fs::read_dir(&brif) {
        for e in rd.flatten() {
            out.push(format!("veth {}", e.file_name().to_string_lossy()));
        }
    }
    for pid in d.monitor_pids() {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        out.push(format!(
            "monitor {pid}: {}",
            String::from_utf8_lossy(&cmd).replace('\0', " ")
        ));
    }
    let containers = std::fs::read_dir(d.data_root().join("containers"))
        .map(|rd| rd.flatten().count())
        .unwrap_or(0);
    if containers > 0 {
        out.push(format!("{containers} container folder(s) left"));
    }
    out
}

/// Polls `f` until it returns nothing or `patience` is over; returns its last answer.
pub fn settle(patience: Duration, mut f: impl FnMut() -> Vec<String>) -> Vec<String> {
    let deadline = Instant::now() + patience;
    loop {
        let found = f();
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
