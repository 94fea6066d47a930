//! The driver's persistent state, so a restarted daemon hands out no address twice and can
//! clean up what it made:
//!
//! ```text
//! <root>/bridge/<id>.json              a network: subnet, bridge device (temp, fsync, rename)
//! <root>/bridge/<id>.leases/<ep>.json  one lease per endpoint (created / unlinked)
//! ```
//!
//! Leases are single small files written without fsync or rename, the cheapest durable-enough
//! record (an fsync or a rename over a file costs several ms per container on a busy disk): a
//! berthd crash loses nothing (the page cache survives it), and after a machine crash no
//! container is alive — start-up drops every lease whose host veth no longer exists (see
//! `BridgeDriver::reconcile`). A lease file that cannot be read (berthd killed mid-write,
//! before the join finished) is dropped at load.

use berth_core::network::{NetworkSpec, PortBinding};
use berth_core::{DriverError, DriverResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The IPv6 subnet (CIDR); empty for an IPv4-only network.
    #[serde(default)]
    pub subnet_v6: String,
    /// The IPv6 gateway (the bridge's IPv6 address), when `subnet_v6` is set.
    #[serde(default)]
    pub gateway_v6: String,
    /// The IPv6 allocation range, when `subnet_v6` is set.
    #[serde(default)]
    pub ip_range_v6: String,
    /// The last address handed out (allocation continues after it).
    #[serde(default)]
    pub last: u32,
    /// Endpoints (leases) by endpoint id (stored as lease files; read from the network file
    /// only when migrating state written before lease files existed).
    #[serde(default, skip_serializing)]
    pub endpoints: crate::leases::Leases,
}

/// One endpoint's lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    /// The container.
    pub container_id: String,
    /// The address handed out.
    pub ip: String,
    /// The IPv6 address handed out (empty: none).
    #[serde(default)]
    pub ip6: String,
    /// The MAC address.
    pub mac: String,
    /// The host side of the veth pair.
    pub veth: String,
    /// Published ports (host ports resolved).
    #[serde(default)]
    pub ports: Vec<PortBinding>,
    /// The container's namespace file and its inode at join: `leave` sees from them whether
    /// the namespace still lives (0: unknown, treated as alive).
    #[serde(default)]
    pub netns: String,
    /// See `netns`.
    #[serde(default)]
    pub netns_ino: u64,
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

    fn leases_dir(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.leases"))
    }

    /// Every network on disk, with its leases; unreadable files are skipped.
    pub fn load_all(&self) -> DriverResult<Vec<NetState>> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| DriverError::io(format!("reading {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let p = entry.path();
            if p.extension().and_then(|e| e.to_str()) != Some("json") {
                if p.extension().and_then(|e| e.to_str()) == Some("tmp")
                    || berth_core::atomic::is_temp_name(&entry.file_name())
                {
                    let _ = std::fs::remove_file(&p);
                }
                continue;
            }
            let Ok(text) = std::fs::read(&p) else {
                continue;
            };
            if let Ok(mut st) = serde_json::from_slice::<NetState>(&text) {
                // Leases from an older network file become lease files.
                for (ep, lease) in std::mem::take(&mut st.endpoints) {
                    self.put_lease(&st.spec.id, &ep, &lease)?;
                }
                self.save(&st)?;
                st.endpoints = self.load_leases(&st.spec.id).into();
                let newest = st
                    .endpoints
                    .values()
                    .filter_map(|l| l.ip.parse::<std::net::Ipv4Addr>().ok())
                    .map(u32::from)
                    .max()
                    .unwrap_or(0);
                st.last = st.last.max(newest);
                out.push(st);
            }
        }
        Ok(out)
    }

    fn load_leases(&self, id: &str) -> BTreeMap<String, Lease> {
        let mut out = BTreeMap::new();
        let Ok(rd) = std::fs::read_dir(self.leases_dir(id)) else {
            return out;
        };
        for entry in rd.flatten() {
            let p = entry.path();
            let ep = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            match std::fs::read(&p).map(|b| serde_json::from_slice::<Lease>(&b)) {
                Ok(Ok(lease)) if is_safe_id(&ep) => {
                    out.insert(ep, lease);
                }
                _ => {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        out
    }

    /// Writes one network's state atomically and durably (`berth_core::atomic`); leases are
    /// not part of it.
    pub fn save(&self, st: &NetState) -> DriverResult<()> {
        if !is_safe_id(&st.spec.id) {
            return Err(DriverError::InvalidInput(format!(
                "invalid network id {:?}",
                st.spec.id
            )));
        }
        let path = self.path(&st.spec.id);
        let data = serde_json::to_vec(st).map_err(|e| DriverError::Internal(e.to_string()))?;
        berth_core::atomic::write_atomic(&path, &data)
            .map_err(|e| DriverError::io(format!("writing {}", path.display()), e))
    }

    /// Records endpoint `ep`'s lease on network `id` (one small file, no fsync: see above).
    pub fn put_lease(&self, id: &str, ep: &str, lease: &Lease) -> DriverResult<()> {
        if !is_safe_id(id) || !is_safe_id(ep) {
            return Err(DriverError::InvalidInput(format!(
                "invalid endpoint id {ep:?}"
            )));
        }
        let dir = self.leases_dir(id);
        let path = dir.join(format!("{ep}.json"));
        let data = serde_json::to_vec(lease).map_err(|e| DriverError::Internal(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            match std::fs::write(&path, &data) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(&path, &data)
                }
                r => r,
            }
        };
        write().map_err(|e| DriverError::io(format!("writing {}", path.display()), e))
    }

    /// Forgets endpoint `ep`'s lease on network `id`; missing is fine.
    pub fn drop_lease(&self, id: &str, ep: &str) -> DriverResult<()> {
        if !is_safe_id(id) || !is_safe_id(ep) {
            return Ok(());
        }
        let path = self.leases_dir(id).join(format!("{ep}.json"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(DriverError::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// Removes one network's state and leases; missing is fine.
    pub fn remove(&self, id: &str) -> DriverResult<()> {
        if !is_safe_id(id) {
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(self.leases_dir(id));
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
