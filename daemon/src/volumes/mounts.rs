//! A container's mounts: at create, `Binds` (`-v`), `Mounts` (`--mount`), `Config.Volumes`
//! (image `VOLUME` and `-v /path`) and `VolumesFrom` become Docker's mount points (the
//! `Mounts` array of inspect), creating named and anonymous volumes on the way; at start they
//! become the runtime's mount specs, and empty volumes are seeded from the image (copy-up).

use super::{anonymous_labels, anonymous_name, Volumes};
use crate::containers::{Container, ContainerRecord, Containers};
use crate::error::ServiceError;
use berth_api::types::container::{ContainerConfig, HostConfig, Mount, MountPoint};
use berth_runtime::spec::MountSpec;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn invalid_spec(spec: &str) -> ServiceError {
    ServiceError::bad_request(format!("invalid volume specification: '{spec}'"))
}

/// The bind propagations a mount may ask for (Docker's; `rprivate` is the default).
const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// A bind's mount point; its propagation is the one `mode` names (`-v a:b:ro,rshared`), else
/// Docker's default `rprivate`.
fn bind_point(source: &str, dest: &str, rw: bool, mode: &str) -> MountPoint {
    let propagation = mode
        .split(',')
        .rfind(|m| PROPAGATIONS.contains(m))
        .unwrap_or("rprivate");
    MountPoint {
        kind: "bind".into(),
        source: source.into(),
        destination: dest.into(),
        mode: mode.into(),
        rw,
        propagation: propagation.into(),
        ..MountPoint::default()
    }
}

/// The mount point of volume `name` (at `mountpoint` on the host).
fn named_point(name: &str, mountpoint: &Path, dest: &str, rw: bool, mode: &str) -> MountPoint {
    MountPoint {
        kind: "volume".into(),
        name: name.into(),
        source: mountpoint.display().to_string(),
        destination: dest.into(),
        driver: "local".into(),
        mode: mode.into(),
        rw,
        propagation: String::new(),
    }
}

fn volume_point(
    vols: &Volumes,
    name: &str,
    dest: &str,
    rw: bool,
    mode: &str,
    anonymous: bool,
) -> Result<MountPoint, ServiceError> {
    let labels = if anonymous {
        anonymous_labels()
    } else {
        Value::Null
    };
    let (v, _) = vols.create(name, &labels, &Value::Null)?;
    Ok(named_point(&v.name, &v.mountpoint, dest, rw, mode))
}

/// Normalises a container path (absolute, no trailing slash).
fn clean_dest(dest: &str, spec: &str) -> Result<String, ServiceError> {
    if !dest.starts_with('/') {
        return Err(ServiceError::bad_request(format!("invalid mount config: invalid mount path: '{dest}' mount path must be absolute ({spec})")));
    }
    let p: PathBuf = Path::new(dest).components().collect();
    Ok(p.display().to_string())
}

/// Docker's refusal of bind options (a propagation) on a mount of another type.
fn no_bind_options(kind: &str) -> String {
    format!("invalid mount config for type \"{kind}\": field BindOptions must not be specified")
}

/// Parses one `-v` entry: `src:dst[:opts]` or `/dst` (anonymous).
fn parse_bind(vols: &Volumes, spec: &str) -> Result<MountPoint, ServiceError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid_spec(spec)),
    };
    if dst.is_empty() {
        return Err(invalid_spec(spec));
    }
    let dest = clean_dest(dst, spec)?;
    let opts: Vec<&str> = mode.split(',').filter(|s| !s.is_empty()).collect();
    if let Some(bad) = opts.iter().find(|o| {
        ![
            "ro",
            "rw",
            "z",
            "Z",
            "nocopy",
            "consistent",
            "cached",
            "delegated",
        ]
        .contains(o)
            && !PROPAGATIONS.contains(o)
    }) {
        return Err(ServiceError::bad_request(format!("invalid mode: {bad}")));
    }
    let rw = !opts.contains(&"ro");
    if !src.starts_with('/') && opts.iter().any(|o| PROPAGATIONS.contains(o)) {
        return Err(ServiceError::bad_request(format!(
            "invalid volume specification: '{spec}': {}",
            no_bind_options("volume")
        )));
    }
    if src.is_empty() {
        return volume_point(vols, &anonymous_name(), &dest, rw, mode, true);
    }
    if src.starts_with('/') {
        // `-v /host:/ctr` creates a missing host directory, as Docker does.
        if std::fs::symlink_metadata(src).is_err() {
            std::fs::create_dir_all(src).map_err(|e| {
                ServiceError::bad_request(format!(
                    "error while creating mount source path '{src}': {e}"
                ))
            })?;
        }
        return Ok(bind_point(src, &dest, rw, mode));
    }
    volume_point(vols, src, &dest, rw, mode, false)
}

/// Parses one `--mount` entry (`HostConfig.Mounts[]`).
fn parse_mount(vols: &Volumes, m: &Mount) -> Result<MountPoint, ServiceError> {
    let kind = Some(m.kind.as_str())
        .filter(|k| !k.is_empty())
        .unwrap_or("volume");
    let target = m.target.as_str();
    if target.is_empty() {
        return Err(ServiceError::bad_request(
            "invalid mount config: Target must not be empty",
        ));
    }
    let dest = clean_dest(target, target)?;
    let rw = !m.read_only;
    let source = m.source.as_str();
    match kind {
        "bind" => {
            if source.is_empty() {
                return Err(ServiceError::bad_request(
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            }
            if !source.starts_with('/') {
                return Err(ServiceError::bad_request(format!("invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute")));
            }
            if std::fs::symlink_metadata(source).is_err() {
                return Err(ServiceError::bad_request(format!("invalid mount config for type \"bind\": bind source path does not exist: {source}")));
            }
            let mut p = bind_point(source, &dest, rw, "");
            if let Some(prop) = m
                .bind_options
                .as_ref()
                .and_then(|o| o["Propagation"].as_str())
                .filter(|s| !s.is_empty())
            {
                if !PROPAGATIONS.contains(&prop) {
                    return Err(ServiceError::bad_request(format!(
                        "invalid mount config for type \"bind\": invalid propagation mode: {prop}"
                    )));
                }
                p.propagation = prop.to_string();
            }
            Ok(p)
        }
        "volume" => {
            if m.bind_options.as_ref().is_some_and(|o| !o.is_null()) {
                return Err(ServiceError::bad_request(no_bind_options("volume")));
            }
            let options = m.volume_options.as_ref().unwrap_or(&Value::Null);
            let labels = options["Labels"].clone();
            let (name, anonymous) = if source.is_empty() {
                (anonymous_name(), true)
            } else {
                (source.to_string(), false)
            };
            let labels = if anonymous {
                anonymous_labels()
            } else {
                labels
            };
            let opts = options["DriverConfig"]["Options"].clone();
            let (v, _) = vols.create(&name, &labels, &opts)?;
            Ok(named_point(&v.name, &v.mountpoint, &dest, rw, "z"))
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(ServiceError::bad_request(
                    "invalid mount config for type \"tmpfs\": field Source must be empty",
                ));
            }
            Ok(MountPoint {
                kind: "tmpfs".into(),
                destination: dest,
                rw,
                ..MountPoint::default()
            })
        }
        other => Err(ServiceError::bad_request(format!(
            "invalid mount config for type \"{other}\": mount type unknown"
        ))),
    }
}

/// Computes (and creates the volumes of) a new container's mount points.
pub fn plan(
    vols: &Volumes,
    containers: &Containers,
    cfg: &ContainerConfig,
    hc: &HostConfig,
) -> Result<Vec<MountPoint>, ServiceError> {
    let mut points: Vec<MountPoint> = Vec::new();
    let taken = |points: &[MountPoint], dest: &str| points.iter().any(|q| q.destination == dest);
    let push = |p: MountPoint, points: &mut Vec<MountPoint>| -> Result<(), ServiceError> {
        if taken(points, &p.destination) {
            return Err(ServiceError::bad_request(format!(
                "Duplicate mount point: {}",
                p.destination
            )));
        }
        points.push(p);
        Ok(())
    };
    for b in hc.binds.iter().flatten() {
        push(parse_bind(vols, b)?, &mut points)?;
    }
    for m in hc.mounts.iter().flatten() {
        push(parse_mount(vols, m)?, &mut points)?;
    }
    if let Some(tmpfs) = &hc.tmpfs {
        for dest in tmpfs.keys() {
            if taken(&points, dest) {
                return Err(ServiceError::bad_request(format!(
                    "Duplicate mount point: {dest}"
                )));
            }
        }
    }
    for from in hc.volumes_from.iter().flatten() {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m)) if m == "ro" || m == "rw" => (n.to_string(), Some(m.to_string())),
            _ => (from.to_string(), None),
        };
        // Docker answers 400 here (not 404, which would make the CLI pull the image).
        let other = containers
            .get(&name)
            .map_err(|e| ServiceError::bad_request(e.to_string()))?;
        for mut p in other.view(|r| r.mounts.clone()) {
            if taken(&points, &p.destination) {
                continue;
            }
            if let Some(m) = &mode {
                p.rw = m == "rw";
                p.mode.clone_from(m);
            }
            points.push(p);
        }
    }
    // Image VOLUMEs and `-v /path` end up in Config.Volumes: anonymous unless covered.
    if let Some(vs) = &cfg.volumes {
        let tmpfs = hc.tmpfs.as_ref();
        for dest in vs.keys() {
            let d = clean_dest(dest, dest)?;
            if taken(&points, &d) || tmpfs.is_some_and(|t| t.contains_key(&d)) {
                continue;
            }
            points.push(volume_point(vols, &anonymous_name(), &d, true, "", true)?);
        }
    }
    Ok(points)
}

/// The runtime mount specs of a container record (`Mounts` plus `HostConfig.Tmpfs`).
pub fn specs(rec: &ContainerRecord) -> Vec<MountSpec> {
    let mut out = Vec::new();
    let hc = &rec.host_config;
    for p in &rec.mounts {
        let dest = p.destination.clone();
        let rw = p.rw;
        match p.kind.as_str() {
            "tmpfs" => {
                let mut options = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
                let spec = hc
                    .mounts
                    .iter()
                    .flatten()
                    .find(|m| m.target.trim_end_matches('/') == dest)
                    .and_then(|m| m.tmpfs_options.as_ref());
                if let Some(size) = spec
                    .and_then(|o| o["SizeBytes"].as_i64())
                    .filter(|s| *s > 0)
                {
                    options.push(format!("size={size}"));
                }
                if let Some(mode) = spec.and_then(|o| o["Mode"].as_u64()).filter(|m| *m > 0) {
                    options.push(format!("mode={mode:o}"));
                }
                if !rw {
                    options.push("ro".into());
                }
                out.push(MountSpec {
                    destination: dest,
                    kind: "tmpfs".into(),
                    source: "tmpfs".into(),
                    options,
                });
            }
            _ => {
                let mut options = vec!["rbind".to_string()];
                if !rw {
                    options.push("ro".into());
                }
                if PROPAGATIONS.contains(&p.propagation.as_str()) {
                    options.push(p.propagation.clone());
                }
                out.push(MountSpec {
                    destination: dest,
                    kind: "bind".into(),
                    source: p.source.clone(),
                    options,
                });
            }
        }
    }
    for (dst, opts) in hc.tmpfs.iter().flatten() {
        let mut options = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
        options.extend(
            opts.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        out.push(MountSpec {
            destination: dst.clone(),
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            options,
        });
    }
    out
}

/// Seeds empty volumes from the image content at their destination (Docker's copy-up),
/// unless the mount asked for `nocopy`. `rootfs` is the container's mounted filesystem.
pub fn seed(rootfs: &Path, rec: &ContainerRecord) {
    let nocopy_dests: Vec<&str> = rec
        .host_config
        .mounts
        .iter()
        .flatten()
        .filter(|m| {
            m.volume_options
                .as_ref()
                .and_then(|o| o["NoCopy"].as_bool())
                .unwrap_or(false)
        })
        .map(|m| m.target.as_str())
        .collect();
    let volumes: Vec<&MountPoint> = rec
        .mounts
        .iter()
        .filter(|p| p.kind == "volume" && !p.mode.split(',').any(|m| m == "nocopy"))
        .filter(|p| {
            !nocopy_dests
                .iter()
                .any(|d| d.trim_end_matches('/') == p.destination)
        })
        .collect();
    if volumes.is_empty() {
        return;
    }
    let image = match berth_confine::Root::open(rootfs) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("seeding volumes: {e}");
            return;
        }
    };
    for p in volumes {
        let dest = p.destination.as_str();
        let data = PathBuf::from(&p.source);
        let empty = std::fs::read_dir(&data)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            continue;
        }
        if let Err(e) = super::copy::seed_from(&image, dest, &data) {
            tracing::warn!("seeding volume at {dest} from the image: {e}");
        }
    }
}

/// Whether mount point `p` is volume `name`.
/// Ids of the containers whose mounts use volume `name`.
pub fn users(containers: &Containers, name: &str) -> Vec<String> {
    containers.volume_users(name)
}

/// Names of the anonymous volumes container `c` mounts (removed by `rm -v` / `--rm`).
pub fn anonymous_volumes(vols: &Volumes, c: &Container) -> Vec<String> {
    let named: Vec<String> = c.view(|r| {
        r.mounts
            .iter()
            .filter(|p| p.kind == "volume")
            .map(|p| p.name.clone())
            .collect()
    });
    named
        .into_iter()
        .filter(|n| vols.get(n).is_ok_and(|v| v.anonymous()))
        .collect()
}
