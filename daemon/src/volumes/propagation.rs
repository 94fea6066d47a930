//! Bind propagation at start, as dockerd decides it: a bind asking for `shared`/`rshared`
//! needs its source on a shared mount, one asking for `slave`/`rslave` a shared or slave
//! mount (Docker's errors otherwise), and either makes the container's tree keep that
//! propagation (`linux.rootfsPropagation` `shared` or `rslave`) instead of a private one.

use crate::containers::ContainerRecord;
use crate::error::ServiceError;
use std::path::Path;

/// Whether the mount holding `source` has one of the optional fields `tags` names
/// (`shared:`, `master:`); its mount point.
fn holder_has(source: &str, tags: &[&str]) -> Result<(String, bool), ServiceError> {
    let real = std::fs::canonicalize(source)
        .map_err(|e| ServiceError::internal(format!("{source}: {e}")))?;
    let (point, fields) = berth_runtime::mounts::holder(Path::new(&real))
        .map_err(|e| ServiceError::internal(format!("reading mountinfo: {e}")))?;
    let has = fields.iter().any(|f| tags.iter().any(|t| f.starts_with(t)));
    Ok((point, has))
}

/// The `rootfsPropagation` a container's binds need (empty: none), after Docker's checks of
/// their sources.
pub fn rootfs(rec: &ContainerRecord) -> Result<String, ServiceError> {
    let mut root = String::new();
    for p in rec.mounts.iter().filter(|p| p.kind == "bind") {
        let src = p.source.as_str();
        match p.propagation.as_str() {
            "shared" | "rshared" => {
                let (point, ok) = holder_has(src, &["shared:"])?;
                if !ok {
                    return Err(ServiceError::internal(format!(
                        "path {src} is mounted on {point} but it is not a shared mount"
                    )));
                }
                if root != "shared" && root != "rshared" {
                    root = "shared".into();
                }
            }
            "slave" | "rslave" => {
                let (point, ok) = holder_has(src, &["shared:", "master:"])?;
                if !ok {
                    return Err(ServiceError::internal(format!(
                        "path {src} is mounted on {point} but it is not a shared or slave mount"
                    )));
                }
                if root.is_empty() {
                    root = "rslave".into();
                }
            }
            _ => {}
        }
    }
    Ok(root)
}
