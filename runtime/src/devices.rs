//! Host devices given to a container (`docker run --device`, the CRI's `devices`): the host
//! node is looked up (type, major, minor, mode, owner) and becomes an OCI `linux.devices` entry
//! plus a device cgroup rule allowing the access asked for ([`Device::oci`],
//! [`Device::rule`]); the native runtime makes the node in the container ([`make`]), runc does
//! so itself.

use berth_confine::{FileKind, Root};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// The most devices one container may be given.
pub const MAX_DEVICES: usize = 256;

/// A host device node, as the container gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Where it appears in the container (absolute).
    pub path: String,
    /// `c` (character) or `b` (block).
    pub kind: char,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits of the node.
    pub file_mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// The cgroup access allowed: some of `r`, `w`, `m`.
    pub access: String,
}

/// Why a device cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The host path is no device node (or cannot be read).
    #[error("error gathering device information while adding custom device \"{0}\": {1}")]
    Lookup(String, String),
    /// A bad container path or access string.
    #[error("invalid device {0}: {1}")]
    Invalid(String, String),
}

impl Device {
    /// The host's node `on_host` at `in_container` (empty: the same path) with cgroup
    /// `access` (empty: `rwm`).
    pub fn lookup(on_host: &str, in_container: &str, access: &str) -> Result<Device, DeviceError> {
        let path = if in_container.is_empty() {
            on_host
        } else {
            in_container
        };
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") || path.contains('\0') {
            return Err(DeviceError::Invalid(
                path.to_string(),
                "the path in the container must be absolute, without ..".into(),
            ));
        }
        let access = if access.is_empty() { "rwm" } else { access };
        if access.len() > 3 || !access.chars().all(|c| "rwm".contains(c)) {
            return Err(DeviceError::Invalid(
                path.to_string(),
                format!("bad cgroup permissions {access:?}: some of r, w, m"),
            ));
        }
        let meta = std::fs::metadata(on_host)
            .map_err(|e| DeviceError::Lookup(on_host.to_string(), e.to_string()))?;
        let kind = match meta.file_type() {
            t if t.is_char_device() => 'c',
            t if t.is_block_device() => 'b',
            _ => {
                return Err(DeviceError::Lookup(
                    on_host.to_string(),
                    "not a device node".into(),
                ))
            }
        };
        let rdev = meta.rdev();
        Ok(Device {
            path: path.to_string(),
            kind,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            file_mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            access: access.to_string(),
        })
    }

    /// Its OCI `linux.devices` entry.
    pub fn oci(&self) -> Value {
        json!({
            "path": self.path, "type": self.kind.to_string(), "major": self.major,
            "minor": self.minor, "fileMode": self.file_mode, "uid": self.uid, "gid": self.gid,
        })
    }

    /// Its OCI device cgroup rule (`linux.resources.devices`).
    pub fn rule(&self) -> Value {
        json!({
            "allow": true, "type": self.kind.to_string(), "major": self.major,
            "minor": self.minor, "access": self.access,
        })
    }
}

/// The devices of a Docker `HostConfig.Devices` list (`PathOnHost`, `PathInContainer`,
/// `CgroupPermissions`; null or absent: none).
pub fn from_docker(v: Option<&Value>) -> Result<Vec<Device>, DeviceError> {
    let list = v
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list.len() > MAX_DEVICES {
        return Err(DeviceError::Invalid(
            format!("list of {}", list.len()),
            format!("at most {MAX_DEVICES} devices"),
        ));
    }
    list.iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or("");
            Device::lookup(
                s("PathOnHost"),
                s("PathInContainer"),
                s("CgroupPermissions"),
            )
        })
        .collect()
}

/// Makes the nodes of an OCI `linux.devices` list inside `root` (before the pivot), their
/// folders made as needed, each with its mode and owner.
pub(crate) fn make(root: &Root, devices: &Value) -> Result<(), String> {
    let list = devices.as_array().map(Vec::as_slice).unwrap_or_default();
    for d in list.iter().take(MAX_DEVICES) {
        let path = d["path"].as_str().unwrap_or("");
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        let kind = match d["type"].as_str() {
            Some("b") => FileKind::Block,
            _ => FileKind::Char,
        };
        let rdev = nix::sys::stat::makedev(
            d["major"].as_u64().unwrap_or(0),
            d["minor"].as_u64().unwrap_or(0),
        );
        let mode = d["fileMode"].as_u64().map_or(0o666, |m| m as u32 & 0o7777);
        if let Some(parent) = std::path::Path::new(rel).parent() {
            if !parent.as_os_str().is_empty() {
                root.mkdir_all(parent, 0o755)
                    .map_err(|e| format!("making the folder of device {path}: {e}"))?;
            }
        }
        let _ = root.remove(rel);
        root.mknod(rel, kind, mode, rdev)
            .map_err(|e| format!("making device {path}: {e}"))?;
        root.chmod(rel, mode)
            .map_err(|e| format!("chmod of device {path}: {e}"))?;
        let (uid, gid) = (
            d["uid"].as_u64().unwrap_or(0) as u32,
            d["gid"].as_u64().unwrap_or(0) as u32,
        );
        root.chown(rel, uid, gid)
            .map_err(|e| format!("chown of device {path}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_a_host_node() {
        let d = Device::lookup("/dev/null", "/dev/xnull", "").expect("/dev/null");
        assert_eq!((d.kind, d.major, d.minor), ('c', 1, 3));
        assert_eq!(d.path, "/dev/xnull");
        assert_eq!(d.access, "rwm");
        assert_eq!(d.rule()["access"], "rwm");
        assert_eq!(d.oci()["type"], "c");
    }

    #[test]
    fn refuses_what_is_no_device_or_a_bad_path() {
        assert!(Device::lookup("/etc/hostname", "", "").is_err());
        assert!(Device::lookup("/dev/null", "dev/null", "").is_err());
        assert!(Device::lookup("/dev/null", "/dev/../etc/x", "").is_err());
        assert!(Device::lookup("/dev/null", "", "rwx").is_err());
    }
}
