//! Removing everything a test daemon and its containers left on the host: processes whose
//! command line names the daemon's folder or that hold files under it, its CRI pods' inits,
//! mounts under it, cgroups of its containers (and the memory cgroups its reaper had still to
//! remove), its
//! bridge device, and the folder itself. Every step is best effort and never panics (it runs
//! from `Drop`, possibly while a test is already failing).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Cleans up after the daemon whose files live in `dir`.
pub fn everything(dir: &Path, data_root: &Path, bridge: &str) {
    let containers = container_ids(data_root);
    kill_pod_inits(data_root);
    kill_leftovers(dir);
    unmount_under(dir);
    remove_cgroups(&cgroup_paths(data_root, &containers));
    remove_cgroups(&pod_cgroup_paths(data_root));
    // Memory cgroups of removed containers berthd had not removed yet (its reaper's list).
    let waiting = std::fs::read_to_string(dir.join("exec").join("cgroups-to-remove"));
    for line in waiting.unwrap_or_default().lines() {
        if line.contains("/berth/") {
            let _ = std::fs::remove_dir(line);
        }
    }
    // The bridges of the user networks the daemon created (berthd keeps them across its
    // restarts, as dockerd does), then its default bridge.
    for b in user_bridges(data_root) {
        delete_link(&b);
    }
    delete_link(bridge);
    // The bridge driver's own nftables tables (IPv4, and IPv6 when it had IPv6 networks)
    // for this daemon's bridge.
    for family in ["ip", "ip6"] {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", family, &format!("berth_{bridge}")])
            .stderr(std::process::Stdio::null())
            .status();
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The bridge devices of the networks the bridge driver of the daemon at `data_root` keeps
/// (`<data-root>/network/bridge/<id>.json`, member `bridge`).
pub fn user_bridges(data_root: &Path) -> Vec<String> {
    std::fs::read_dir(data_root.join("network/bridge"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter_map(|v| v["bridge"].as_str().map(str::to_string))
                .filter(|b| !b.is_empty() && !b.contains('/'))
                .collect()
        })
        .unwrap_or_default()
}

/// SIGKILLs the inits of the daemon's CRI pods still running (`initPid` of each record in
/// `<data-root>/cri/pods/`, taken only while its `comm` is still `berth-pod-init`): they
/// outlive berthd by design and name no folder of the test's on their command line.
fn kill_pod_inits(data_root: &Path) {
    let Ok(rd) = std::fs::read_dir(data_root.join("cri/pods")) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let pid = std::fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["initPid"].as_i64())
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 1);
        let Some(pid) = pid else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "berth-pod-init" {
            // SAFETY: kill(2) with a pid read from the daemon's record; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The cgroups of the daemon's CRI pods' inits (`cgroup` of each pod record: `<parent>/<pod
/// id>`).
fn pod_cgroup_paths(data_root: &Path) -> Vec<String> {
    std::fs::read_dir(data_root.join("cri/pods"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter_map(|v| v["cgroup"].as_str().map(str::to_string))
                .filter(|p| !p.is_empty() && !p.split('/').any(|c| c == ".."))
                .collect()
        })
        .unwrap_or_default()
}

fn container_ids(data_root: &Path) -> Vec<String> {
    std::fs::read_dir(data_root.join("containers"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default()
}

/// The cgroup path of each container (its record's `BerthCgroup`: `<parent>/<id>`; a record
/// without one: `berth/<id>`).
fn cgroup_paths(data_root: &Path, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            std::fs::read(data_root.join("containers").join(id).join("config.v2.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["BerthCgroup"].as_str().map(str::to_string))
                .filter(|p| !p.split('/').any(|c| c == ".."))
                .unwrap_or_else(|| format!("berth/{id}"))
        })
        .collect()
}

/// Processes (but us) whose command line mentions `dir`, or that hold a descriptor of a file
/// under it: container monitors, including those spawned ahead (`berth-monitor --pool`,
/// whose command line names no container) once they serve one of the daemon's containers.
pub fn processes_using(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let holds = || {
            std::fs::read_dir(e.path().join("fd")).is_ok_and(|fds| {
                fds.filter_map(|f| f.ok()).any(|f| {
                    std::fs::read_link(f.path())
                        .is_ok_and(|t| t.to_string_lossy().contains(&needle))
                })
            })
        };
        if cmdline.contains(&needle) || (cmdline.contains("berth-monitor") && holds()) {
            found.push(pid);
        }
    }
    found
}

/// SIGKILLs every process [`processes_using`] finds, e.g. container monitors.
fn kill_leftovers(dir: &Path) {
    for pid in processes_using(dir) {
        // SAFETY: kill(2) with a pid read from /proc; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Mount points under `dir` in this mount namespace, deepest first.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts {
            let Ok(c) = std::ffi::CString::new(m.to_string_lossy().as_bytes()) else {
                continue;
            };
            // SAFETY: umount2(2) with a valid NUL-terminated path.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}

/// Removes the cgroups at `paths` (`berth/<id>`, or `<parent>/<id>`) in every hierarchy (v1
/// controllers and the unified one), killing any task still inside; their parents stay.
pub fn remove_cgroups(paths: &[String]) {
    if paths.is_empty() {
        return;
    }
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    for root in roots {
        for path in paths {
            let cg = root.join(path.trim_start_matches('/'));
            if !cg.is_dir() {
                continue;
            }
            // A frozen task (a paused container's, or an exec helper caught by a pause) acts on
            // SIGKILL only once thawed (cgroup v1 freezer; v2's cgroup.freeze).
            let _ = std::fs::write(cg.join("freezer.state"), "THAWED");
            let _ = std::fs::write(cg.join("cgroup.freeze"), "0");
            let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) with a pid read from the cgroup; no memory is involved.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            for _ in 0..50 {
                if std::fs::remove_dir(&cg).is_ok() || !cg.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

pub(crate) fn delete_link(name: &str) {
    if Path::new("/sys/class/net").join(name).exists() {
        let _ = Command::new("ip").args(["link", "del", name]).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
