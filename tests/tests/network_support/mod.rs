//! Shared helpers of the network tests: a guard that removes the test's bridges and nftables
//! table even when an assertion fails, and small host-side probes.

#![allow(dead_code)]

use berth_tests::TestDaemon;
use std::process::Command;

/// Removes what the test's networks could leave behind, even when an assertion fails.
pub struct Guard {
    pub bridge: String,
    pub user_bridges: Vec<String>,
}

impl Guard {
    /// A guard for daemon `d`'s default table.
    pub fn new(d: &TestDaemon) -> Guard {
        Guard {
            bridge: d.bridge().to_string(),
            user_bridges: Vec::new(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for b in &self.user_bridges {
            let _ = Command::new("ip").args(["link", "del", b]).output();
        }
        let table = format!("berth_{}", self.bridge);
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .output();
    }
}

/// Whether network device `name` exists.
pub fn link_exists(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{name}")).exists()
}

/// The ports (veths) enslaved to bridge `name`.
pub fn ports_of(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The ports of bridge `name` still there after up to 5 s: a container that exited leaves
/// its veth to the kernel's namespace clean-up (and berthd's reaper), which finishes shortly
/// after `docker rm` returns.
pub fn ports_left(bridge: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = ports_of(bridge);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The standard output of a host command (empty when it fails).
pub fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The bridge driver's leases on network `driver_id` (`bridge` for the default network), as
/// the concatenated lease files (empty when there are none).
pub fn leases(d: &TestDaemon, driver_id: &str) -> String {
    let dir = d
        .data_root()
        .join(format!("network/bridge/{driver_id}.leases"));
    let mut out = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        out.push('\n');
    }
    out
}
