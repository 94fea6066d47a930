//! A container's mounts: at create, `Binds` (`-v`), `Mounts` (`--mount`), `Config.Volumes`
//! (image `VOLUME` and `-v /path`) and `VolumesFrom` become Docker's mount points (the
//! `Mounts` array of inspect), creating named and anonymous volumes on the way; at start they
//! become the runtime's mount specs, and empty volumes are seeded from the image (copy-up).

use super::{anonymous_labels, anonymous_name, Volumes};
use crate::containers::Containers;
use crate::error::ServiceError;
use berth_runtime::spec::MountSpec;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn invalid_spec(spec: &str) -> ServiceError {
    ServiceError::bad_request(format!("invalid volume specification: '{spec}'"))
}

fn bind_point(source: &str, dest: &str, rw: bool, mode: &str) -> Value {
    json!({"Type": "bind", "Source": source, "Destination": dest, "Mode": mode, "RW": rw, "Propagation": "rprivate"})
}

fn volume_point(
    vols: &Volumes,
    name: &str,
    dest: &str,
    rw: bool,
    mode: &str,
    anonymous: bool,
) -> Result<Value, ServiceError> {
    let labels = if anonymous {
        anonymous_labels()
    } else {
        Value::Null
    };
    let (v, _) = vols.create(name, &labels, &Value::Null)?;
    Ok(json!({
        "Type": "volume", "Name": v.name, "Source": v.mountpoint, "Destination": dest,
        "Driver": "local", "Mode": mode, "RW": rw, "Propagation": "",
    }))
}

/// Normalises a container path (absolute, no trailing slash).
fn clean_dest(dest: &str, spec: &str) -> Result<String, ServiceError> {
    if !dest.starts_with('/') {
        return Err(ServiceError::bad_request(format!("invalid mount config: invalid mount path: '{dest}' mount path must be absolute ({spec})")));
    }
    let p: PathBuf = Path::new(dest).components().collect();
    Ok(p.display().to_string())
}

/// Parses one `-v` entry: `src:dst[:opts]` or `/dst` (anonymous).
fn parse_bind(vols: &Volumes, spec: &str) -> Result<Value, ServiceError> {
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
            "shared",
            "rshared",
            "slave",
            "rslave",
            "private",
            "rprivate",
            "consistent",
            "cached",
            "delegated",
        ]
        .contains(o)
    }) {
        return Err(ServiceError::bad_request(format!("invalid mode: {bad}")));
    }
    let rw = !opts.contains(&"ro");
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
fn parse_mount(vols: &Volumes, m: &Value) -> Result<Value, ServiceError> {
    let kind = m["Type"].as_str().unwrap_or("volume");
    let target = m["Target"].as_str().unwrap_or("");
    if target.is_empty() {
        return Err(ServiceError::bad_request(
            "invalid mount config: Target must not be empty",
        ));
    }
    let dest = clean_dest(target, target)?;
    let rw = !m["ReadOnly"].as_bool().unwrap_or(false);
    let source = m["Source"].as_str().unwrap_or("");
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
                .pointer("/BindOptions/Propagation")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                p["Propagation"] = json!(prop);
            }
            Ok(p)
        }
        "volume" => {
            let labels = m
                .pointer("/VolumeOptions/Labels")
                .cloned()
                .unwrap_or(Value::Null);
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
            let opts = m
                .pointer("/VolumeOptions/DriverConfig/Options")
                .cloned()
                .unwrap_or(Value::Null);
            let (v, _) = vols.create(&name, &labels, &opts)?;
            Ok(json!({
                "Type": "volume", "Name": v.name, "Source": v.mountpoint, "Destination": dest,
                "Driver": "local", "Mode": "z", "RW": rw, "Propagation": "",
            }))
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(ServiceError::bad_request(
                    "invalid mount config for type \"tmpfs\": field Source must be empty",
                ));
            }
            Ok(
                json!({"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "", "RW": rw, "Propagation": ""}),
            )
        }
        other => Err(ServiceError::bad_request(format!(
            "invalid mount config for type \"{other}\": mount type unknown"
        ))),
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Computes (and creates the volumes of) a new container's mount points.
pub fn plan(
    vols: &Volumes,
    containers: &Containers,
    cfg: &Value,
    hc: &Value,
) -> Result<Vec<Value>, ServiceError> {
    let mut points: Vec<Value> = Vec::new();
    let push = |p: Value, points: &mut Vec<Value>| -> Result<(), ServiceError> {
        let dest = p["Destination"].as_str().unwrap_or("").to_string();
        if points
            .iter()
            .any(|q| q["Destination"].as_str() == Some(dest.as_str()))
        {
            return Err(ServiceError::bad_request(format!(
                "Duplicate mount point: {dest}"
            )));
        }
        points.push(p);
        Ok(())
    };
    for b in strs(&hc["Binds"]) {
        push(parse_bind(vols, &b)?, &mut points)?;
    }
    for m in hc["Mounts"].as_array().cloned().unwrap_or_default() {
        push(parse_mount(vols, &m)?, &mut points)?;
    }
    if let Some(tmpfs) = hc["Tmpfs"].as_object() {
        for dest in tmpfs.keys() {
            if points
                .iter()
                .any(|q| q["Destination"].as_str() == Some(dest.as_str()))
            {
                return Err(ServiceError::bad_request(format!(
                    "Duplicate mount point: {dest}"
                )));
            }
        }
    }
    for from in strs(&hc["VolumesFrom"]) {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m)) if m == "ro" || m == "rw" => (n.to_string(), Some(m.to_string())),
            _ => (from.clone(), None),
        };
        // Docker answers 400 here (not 404, which would make the CLI pull the image).
        let other = containers
            .get(&name)
            .map_err(|e| ServiceError::bad_request(e.to_string()))?;
        for mut p in other.record()["Mounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let dest = p["Destination"].as_str().unwrap_or("").to_string();
            if points
                .iter()
                .any(|q| q["Destination"].as_str() == Some(dest.as_str()))
            {
                continue;
            }
            if let Some(m) = &mode {
                p["RW"] = json!(m == "rw");
                p["Mode"] = json!(m);
            }
            points.push(p);
        }
    }
    // Image VOLUMEs and `-v /path` end up in Config.Volumes: anonymous unless covered.
    if let Some(vs) = cfg["Volumes"].as_object() {
        let tmpfs = hc["Tmpfs"].as_object();
        for dest in vs.keys() {
            let d = clean_dest(dest, dest)?;
            if points
                .iter()
                .any(|q| q["Destination"].as_str() == Some(d.as_str()))
                || tmpfs.is_some_and(|t| t.contains_key(&d))
            {
                continue;
            }
            points.push(volume_point(vols, &anonymous_name(), &d, true, "", true)?);
        }
    }
    Ok(points)
}

/// The runtime mount specs of a container record (`Mounts` plus `HostConfig.Tmpfs`).
pub fn specs(rec: &Value) -> Vec<MountSpec> {
    let mut out = Vec::new();
    let hc = &rec["HostConfig"];
    for p in rec["Mounts"].as_array().cloned().unwrap_or_default() {
        let dest = p["Destination"].as_str().unwrap_or("").to_string();
        let rw = p["RW"].as_bool().unwrap_or(true);
        match p["Type"].as_str().unwrap_or("") {
            "tmpfs" => {
                let mut options = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
                let spec = hc["Mounts"]
                    .as_array()
                    .and_then(|a| {
                        a.iter().find(|m| {
                            m["Target"].as_str().map(|t| t.trim_end_matches('/'))
                                == Some(dest.as_str())
                        })
                    })
                    .cloned();
                if let Some(size) = spec
                    .as_ref()
                    .and_then(|m| m.pointer("/TmpfsOptions/SizeBytes"))
                    .and_then(Value::as_i64)
                    .filter(|s| *s > 0)
                {
                    options.push(format!("size={size}"));
                }
                if let Some(mode) = spec
                    .as_ref()
                    .and_then(|m| m.pointer("/TmpfsOptions/Mode"))
                    .and_then(Value::as_u64)
                    .filter(|m| *m > 0)
                {
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
                let source = p["Source"].as_str().unwrap_or("").to_string();
                out.push(MountSpec {
                    destination: dest,
                    kind: "bind".into(),
                    source,
                    options,
                });
            }
        }
    }
    if let Some(t) = hc["Tmpfs"].as_object() {
        for (dst, opts) in t {
            let mut options = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
            options.extend(
                opts.as_str()
                    .unwrap_or("")
                    .split(',')
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
    }
    out
}

/// Seeds empty volumes from the image content at their destination (Docker's copy-up),
/// unless the mount asked for `nocopy`. `rootfs` is the container's mounted filesystem.
pub fn seed(rootfs: &Path, rec: &Value) {
    let nocopy_dests: Vec<String> = rec
        .pointer("/HostConfig/Mounts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|m| {
                    m.pointer("/VolumeOptions/NoCopy")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                })
                .filter_map(|m| m["Target"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let image = match berth_confine::Root::open(rootfs) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("seeding volumes: {e}");
            return;
        }
    };
    for p in rec["Mounts"].as_array().cloned().unwrap_or_default() {
        if p["Type"].as_str() != Some("volume")
            || p["Mode"]
                .as_str()
                .unwrap_or("")
                .split(',')
                .any(|m| m == "nocopy")
        {
            continue;
        }
        let dest = p["Destination"].as_str().unwrap_or("");
        if nocopy_dests.iter().any(|d| d.trim_end_matches('/') == dest) {
            continue;
        }
        let data = PathBuf::from(p["Source"].as_str().unwrap_or(""));
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

/// Ids of the containers whose mounts use volume `name`.
pub fn users(containers: &Containers, name: &str) -> Vec<String> {
    containers
        .all()
        .iter()
        .filter(|c| {
            c.record()["Mounts"].as_array().is_some_and(|a| {
                a.iter().any(|p| {
                    p["Type"].as_str() == Some("volume") && p["Name"].as_str() == Some(name)
                })
            })
        })
        .map(|c| c.id.clone())
        .collect()
}

/// Names of the anonymous volumes a container record mounts (removed by `rm -v` / `--rm`).
pub fn anonymous_volumes(vols: &Volumes, rec: &Value) -> Vec<String> {
    rec["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["Type"].as_str() == Some("volume"))
                .filter_map(|p| p["Name"].as_str())
                .filter(|n| vols.get(n).is_ok_and(|v| v.anonymous()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
