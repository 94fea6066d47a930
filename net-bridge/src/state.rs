//! The driver's persistent state: one JSON file per network (`<root>/bridge/<id>.json`) with
//! its subnet, bridge device and leases (endpoints), written atomically on every change so a
//! restarted daemon hands out no address twice and can clean up what it made.

use berth_core::network::{NetworkSpec, PortBinding};
use berth_core::{DriverError, DriverResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One network as the driver knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetState {
    /// What the daemon asked for.
    pub spec: NetworkSpec,
    /// The bridge device.
    pub bridge: String,
    /// The subnet in CIDR form.
    pub subnet: String,
    /// The gateway (the bridge's address).
    pub gateway: String,
    /// The allocation range (CIDR), the subnet when unset.
    pub ip_range: String,
    /// The last address handed out (allocation continues after it).
    #[serde(default)]
    pub last: u32,
    /// Endpoints (leases) by endpoint id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Lease>,
}

/// One endpoint's lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    /// The container.
    pub container_id: String,
    /// The address handed out.
    pub ip: String,
    /// The MAC address.
    pub mac: String,
    /// The host side of the veth pair.
    pub veth: String,
    /// Published ports (host ports resolved).
    #[serde(default)]
    pub ports: Vec<PortBinding>,
}

/// Where the state files live.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating) `<root>/bridge`.
    pub fn open(root: &Path) -> DriverResult<Self> {
        let dir = root.join("bridge");
        std::fs::create_dir_all(&dir)
            .map_err(|e| DriverError::io(format!("creating {}", dir.display()), e))?;
        Ok(Store { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every network on disk; unreadable files are skipped with their name reported.
    pub fn load_all(&self) -> DriverResult<Vec<NetState>> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| DriverError::io(format!("reading {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let p = entry.path();
            if p.extension().and_then(|e| e.to_str()) != Some("json") {
                if p.extension().and_then(|e| e.to_str()) == Some("tmp") {
                    let _ = std::fs::remove_file(&p);
                }
                continue;
            }
            let Ok(text) = std::fs::read(&p) else {
                continue;
            };
            if let Ok(st) = serde_json::from_slice::<NetState>(&text) {
                out.push(st);
            }
        }
        Ok(out)
    }

    /// Writes one network's state atomically (temp file, fsync, rename).
    pub fn save(&self, st: &NetState) -> DriverResult<()> {
        self.write(st, true)
    }

    /// Writes one network's state after a lease changed: atomically (temp file, rename) but
    /// without fsync. A berthd crash loses nothing (the page cache survives it); a machine
    /// crash kills every container, and start-up drops the leases whose veth is gone (see
    /// `BridgeDriver::reconcile`), so an unflushed lease can never hand an address out twice.
    pub fn save_leases(&self, st: &NetState) -> DriverResult<()> {
        self.write(st, false)
    }

    fn write(&self, st: &NetState, durable: bool) -> DriverResult<()> {
        if !is_safe_id(&st.spec.id) {
            return Err(DriverError::InvalidInput(format!(
                "invalid network id {:?}",
                st.spec.id
            )));
        }
        let path = self.path(&st.spec.id);
        let tmp = self.dir.join(format!("{}.tmp", st.spec.id));
        let data = serde_json::to_vec(st).map_err(|e| DriverError::Internal(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            if durable {
                f.sync_data()?;
            }
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| DriverError::io(format!("writing {}", path.display()), e))
    }

    /// Removes one network's state; missing is fine.
    pub fn remove(&self, id: &str) -> DriverResult<()> {
        if !is_safe_id(id) {
            return Ok(());
        }
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::io(
                format!("removing state of network {id}"),
                e,
            )),
            _ => Ok(()),
        }
    }
}

/// Whether `id` is safe as a file name.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
