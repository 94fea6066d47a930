//! `docker cp`: `HEAD /containers/{id}/archive` (the path's stat as the base64 JSON header
//! `X-Docker-Container-Path-Stat`), `GET` (a tar of the path, named by its base name) and
//! `PUT` (unpack a tar into a folder). Running containers are reached through
//! `/proc/<pid>/root` (their own mounts, tmpfs included); stopped ones through their mounted
//! rootfs. Paths resolve as if chrooted (see `containers_paths`); volumes and bind mounts map
//! to their sources, so writes land in the mount as with Docker.

use super::containers_io::ChannelWriter;
use super::containers_paths::{go_mode, Scope};
use crate::containers::{start, Container};
use crate::server::http::{self, empty, ApiError, ApiResult, BodyReader};
use crate::server::router::Req;
use crate::state::Ctx;
use base64::Engine;
use berth_api::types::archive::{asserts_dir, base, PathStat, STAT_HEADER};
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::Value;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The container's file system for one request; unmounts the rootfs it mounted when done.
struct Fs {
    scope: Scope,
    root: PathBuf,
    mounted: Option<PathBuf>,
    c: Arc<Container>,
}

impl Drop for Fs {
    fn drop(&mut self) {
        if let Some(r) = &self.mounted {
            if !self.c.running() {
                let _ = berth_core::mount::unmount(r);
            }
        }
    }
}

fn open_fs(ctx: &Ctx, c: &Arc<Container>) -> Result<Fs, ApiError> {
    let r = c.record();
    let mut mounts: Vec<(PathBuf, PathBuf)> = r["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| matches!(m["Type"].as_str(), Some("bind" | "volume")))
        .filter_map(|m| {
            let (d, s) = (m["Destination"].as_str()?, m["Source"].as_str()?);
            (!s.is_empty()).then(|| (PathBuf::from(d), PathBuf::from(s)))
        })
        .collect();
    for (key, dest) in [
        ("HostsPath", "/etc/hosts"),
        ("HostnamePath", "/etc/hostname"),
        ("ResolvConfPath", "/etc/resolv.conf"),
    ] {
        if let Some(p) = r[key].as_str().filter(|p| Path::new(p).is_file()) {
            mounts.push((PathBuf::from(dest), PathBuf::from(p)));
        }
    }
    let pid = c.pid();
    let live = PathBuf::from(format!("/proc/{pid}/root"));
    let (root, mounted) = if c.running() && pid > 0 && live.exists() {
        (live, None)
    } else {
        let root = start::mount_rootfs(ctx, &c.id)?;
        (root.clone(), Some(root))
    };
    Ok(Fs {
        scope: Scope::new(root.clone(), mounts),
        root,
        mounted,
        c: c.clone(),
    })
}

fn io_error(e: io::Error, path: &str, container: &str) -> ApiError {
    if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) {
        ApiError::not_found(format!(
            "Could not find the file {path} in container {container}"
        ))
    } else {
        ApiError::internal(format!("{path}: {e}"))
    }
}

/// The stat of `path` and the host path it lives at.
fn stat(fs: &Fs, path: &str, container: &str) -> Result<(PathBuf, PathStat), ApiError> {
    let err = |e| io_error(e, path, container);
    let cpath = fs.scope.resolve(path, asserts_dir(path)).map_err(err)?;
    let host = fs.scope.host(&cpath);
    let m = std::fs::symlink_metadata(&host).map_err(err)?;
    let link = if m.file_type().is_symlink() {
        fs.scope
            .resolve(path, true)
            .map_err(err)?
            .display()
            .to_string()
    } else {
        String::new()
    };
    let mtime = chrono::DateTime::from_timestamp(
        std::os::unix::fs::MetadataExt::mtime(&m),
        std::os::unix::fs::MetadataExt::mtime_nsec(&m) as u32,
    )
    .unwrap_or_default()
    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let st = PathStat {
        name: base(path),
        size: m.len() as i64,
        mode: go_mode(&m),
        mtime,
        link_target: link,
    };
    Ok((host, st))
}

fn path_param(req: &Req) -> Result<String, ApiError> {
    match req.query.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("Path cannot be empty")),
    }
}

fn header(st: &PathStat) -> Result<HeaderValue, ApiError> {
    let json = serde_json::to_string(st).map_err(|e| ApiError::internal(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    HeaderValue::from_str(&b64).map_err(|e| ApiError::internal(e.to_string()))
}

/// `HEAD /containers/{id}/archive`.
pub async fn head(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let (path, name) = (path_param(&req)?, req.param("id").to_string());
    let v = tokio::task::spawn_blocking(move || {
        let fs = open_fs(&ctx, &c)?;
        stat(&fs, &path, &name).map(|(_, v)| v)
    })
    .await??;
    let mut resp = empty(StatusCode::OK);
    resp.headers_mut().insert(STAT_HEADER, header(&v)?);
    Ok(resp)
}

/// `GET /containers/{id}/archive`.
pub async fn get(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let (path, name) = (path_param(&req)?, req.param("id").to_string());
    let ctx2 = ctx.clone();
    let c2 = c.clone();
    let (fs, host, v) = tokio::task::spawn_blocking(move || {
        let fs = open_fs(&ctx2, &c2)?;
        let (host, v) = stat(&fs, &path, &name)?;
        Ok::<_, ApiError>((fs, host, v))
    })
    .await??;
    let (tx, mut resp) = http::stream("application/x-tar");
    resp.headers_mut().insert(STAT_HEADER, header(&v)?);
    let name = match v.name.as_str() {
        "/" => ".".to_string(),
        b => b.to_string(),
    };
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter(tx);
        if let Err(e) = berth_archive::write_tree(&host, Path::new(&name), &mut w) {
            tracing::warn!("archive of {}: {e}", host.display());
        }
        drop(fs);
    });
    ctx.events
        .publish("container", "archive-path", &c.id, Default::default());
    Ok(resp)
}

/// Refuses writes into a read-only rootfs or read-only mount, as Docker does.
fn check_writable(fs: &Fs, cpath: &Path) -> Result<(), ApiError> {
    let r = fs.c.record();
    match fs.scope.mount_of(cpath) {
        Some(dest) => {
            let ro = r["Mounts"].as_array().into_iter().flatten().any(|m| {
                m["Destination"].as_str().map(Path::new) == Some(dest)
                    && m["RW"].as_bool() == Some(false)
            });
            if ro {
                return Err(ApiError::bad_request("mounted volume is marked read-only"));
            }
        }
        None => {
            if r.pointer("/HostConfig/ReadonlyRootfs")
                .and_then(Value::as_bool)
                == Some(true)
            {
                return Err(ApiError::bad_request(
                    "container rootfs is marked read-only",
                ));
            }
        }
    }
    Ok(())
}

/// `PUT /containers/{id}/archive`.
pub async fn put(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let (path, name) = (path_param(&req)?, req.param("id").to_string());
    let no_overwrite = req.query.bool("noOverwriteDirNonDir", false);
    let copy_ids = req.query.bool("copyUIDGID", false);
    let body = BodyReader::new(req.into_body());
    if !c.running() {
        // What start read from the image's files (users, groups) may change: start afresh.
        crate::containers::prestart::cancel(&ctx, &c).await;
    }
    let (ctx2, c2) = (ctx.clone(), c.clone());
    tokio::task::spawn_blocking(move || {
        let fs = open_fs(&ctx2, &c2)?;
        let err = |e| io_error(e, &path, &name);
        let cpath = fs.scope.resolve(&path, true).map_err(err)?;
        let host = fs.scope.host(&cpath);
        if !std::fs::symlink_metadata(&host).map_err(err)?.is_dir() {
            return Err(ApiError::bad_request("extraction point is not a directory"));
        }
        check_writable(&fs, &cpath)?;
        let user = c2
            .record()
            .pointer("/Config/User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let chown = if copy_ids && !user.is_empty() {
            let u = berth_runtime::user::resolve(&fs.root, &user, &[])
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            Some((u.uid, u.gid))
        } else {
            None
        };
        let (_, plain) = berth_archive::decompress(body)
            .map_err(|e| ApiError::bad_request(format!("reading the archive: {e}")))?;
        let opts = berth_archive::ExtractOptions {
            no_overwrite_dir_non_dir: no_overwrite,
            chown,
            rebase: None,
        };
        berth_archive::extract(plain, &host, &opts).map_err(|e| match e {
            berth_archive::ArchiveError::Unsafe { reason, .. } => ApiError::bad_request(reason),
            e => ApiError::internal(e.to_string()),
        })?;
        Ok::<_, ApiError>(())
    })
    .await??;
    ctx.events
        .publish("container", "extract-to-dir", &c.id, Default::default());
    Ok(empty(StatusCode::OK))
}
