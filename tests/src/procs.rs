//! Looking at the host's processes from a test: the spare monitor a berthd keeps spawned
//! ahead.

/// The `berth-monitor --pool` processes whose stdin is a pipe berthd (`daemon_pid`) holds the
/// other end of: the daemon's spare monitor.
pub fn spare_monitors(daemon_pid: u32) -> Vec<i32> {
    let links = |pid: &str| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|f| std::fs::read_link(f.path()).ok())
                    .map(|t| t.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let held = links(&daemon_pid.to_string());
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
                .filter(|pid| {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    cmd.contains("berth-monitor --pool")
                        && std::fs::read_link(format!("/proc/{pid}/fd/0")).is_ok_and(|t| {
                            let t = t.to_string_lossy().into_owned();
                            t.starts_with("pipe:") && held.contains(&t)
                        })
                })
                .collect()
        })
        .unwrap_or_default()
}
