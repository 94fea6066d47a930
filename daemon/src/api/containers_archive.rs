//! `docker cp`: `HEAD /containers/{id}/archive` (the path's stat as the base64 JSON header
//! `X-Docker-Container-Path-Stat`), `GET` (a tar of the path, named by its base name) and
//! `PUT` (unpack a tar into a folder). Running containers are reached through their init's
//! `/proc/<pid>/root` (their own mounts, tmpfs included); stopped ones through their mounted
//! rootfs. Paths resolve as if chrooted (see `containers_paths`); volumes and bind mounts map
//! to their sources, so writes land in the mount as with Docker.
//!
//! Everything is done through [`berth_confine::Root`]s of the container's filesystem: the
//! destination folder of a PUT and every entry of the tar are resolved inside the container,
//! a GET walks the tree through descriptors, so a container that swaps a folder for a
//! symlink while `docker cp` runs (CVE-2018-15664) can only redirect it inside itself.

use super::containers_io::ChannelWriter;
use super::containers_paths::{go_mode, MountRoot, Scope};
use crate::containers::{start, Container};
use crate::server::http::{self, empty, ApiError, ApiResult, BodyReader};
use crate::server::router::Req;
use crate::state::Ctx;
use base64::Engine;
use berth_api::types::archive::{asserts_dir, base, PathStat, STAT_HEADER};
use berth_confine::{ConfineError, Root};
use hyper::header::HeaderValue;
use hyper::StatusCode;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The container's file system for one request; unmounts the rootfs it mounted when done.
struct Fs {
    scope: Option<Scope>,
    mounted: Option<PathBuf>,
    c: Arc<Container>,
}

impl Fs {
    fn scope(&self) -> Result<&Scope, ApiError> {
        self.scope
            .as_ref()
            .ok_or_else(|| ApiError::internal("container filesystem closed"))
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        // Close every descriptor inside the rootfs before unmounting it.
        self.scope = None;
        if let Some(r) = &self.mounted {
            if !self.c.running() {
                let _ = berth_core::mount::unmount(r);
            }
        }
    }
}

fn confine_err(e: ConfineError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// The running container's root: `/proc/<pid>/root` of its init, reached through a
/// descriptor of `/proc/<pid>` opened *before* checking that `pid` is still the container's
/// (a pid reused after the container exited gets a new `/proc/<pid>` folder, which this
/// descriptor never names).
fn live_root(c: &Container) -> Option<Root> {
    let pid = c.pid();
    if !c.running() || pid <= 0 {
        return None;
    }
    let proc = File::open(format!("/proc/{pid}")).ok()?;
    if !c.running() || c.pid() != pid {
        return None;
    }
    let root = Root::open(format!("/proc/self/fd/{}/root", proc.as_raw_fd())).ok()?;
    Some(Root::from_fd(
        root.as_fd().try_clone_to_owned().ok()?,
        format!("/proc/{pid}/root"),
    ))
}

fn open_fs(ctx: &Ctx, c: &Arc<Container>) -> Result<Fs, ApiError> {
    let r = c.record();
    let mut sources: Vec<(PathBuf, PathBuf)> = r
        .mounts
        .iter()
        .filter(|m| matches!(m.kind.as_str(), "bind" | "volume"))
        .filter_map(|m| {
            let (d, s) = (&m.destination, &m.source);
            (!s.is_empty()).then(|| (PathBuf::from(d), PathBuf::from(s)))
        })
        .collect();
    for (file, dest) in [
        (&r.hosts_path, "/etc/hosts"),
        (&r.hostname_path, "/etc/hostname"),
        (&r.resolv_conf_path, "/etc/resolv.conf"),
    ] {
        if let Some(p) = Some(file).filter(|p| Path::new(p).is_file()) {
            sources.push((PathBuf::from(dest), PathBuf::from(p)));
        }
    }
    // A mount whose source is gone is left out (the path then resolves in the rootfs).
    let mounts: Vec<MountRoot> = sources
        .into_iter()
        .filter_map(|(d, s)| MountRoot::open(d, &s).ok())
        .collect();
    let (root, mounted) = match live_root(c) {
        Some(root) => (root, None),
        None => {
            let path = start::mount_rootfs(ctx, &c.id)?;
            let root = Root::open(&path).map_err(confine_err)?;
            (root, Some(path))
        }
    };
    Ok(Fs {
        scope: Some(Scope::new(root, mounts)),
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

/// The stat of `path` and the symlink-free container path it names.
fn stat(fs: &Fs, path: &str, container: &str) -> Result<(PathBuf, PathStat), ApiError> {
    let err = |e| io_error(e, path, container);
    let scope = fs.scope()?;
    let cpath = scope.resolve(path, asserts_dir(path)).map_err(err)?;
    let (root, rel) = scope.locate(&cpath);
    let m = root
        .lstat(&rel)
        .map_err(|e| err(e.into()))?
        .ok_or_else(|| err(io::Error::from_raw_os_error(libc::ENOENT)))?;
    let link = if m.kind == berth_confine::FileKind::Symlink {
        scope
            .resolve(path, true)
            .map_err(err)?
            .display()
            .to_string()
    } else {
        String::new()
    };
    let mtime = chrono::DateTime::from_timestamp(m.mtime, m.mtime_nsec as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let st = PathStat {
        name: base(path),
        size: m.size as i64,
        mode: go_mode(m.kind, m.mode),
        mtime,
        link_target: link,
    };
    Ok((cpath, st))
}

/// The uid and gid of the container's `Config.User` (`copyUIDGID`), resolved by the
/// runtime's resolver with `/etc/passwd` and `/etc/group` read inside the container's root
/// (through its mounts; regular files only, bounded). A file that cannot be read counts as
/// missing.
fn user_ids(scope: &Scope, user: &str) -> Result<(u32, u32), ApiError> {
    let read = |f: &str| {
        let (root, rel) = scope.locate(&Path::new("/").join(f));
        Ok(root
            .read_regular(&rel, berth_runtime::user::LIMIT)
            .unwrap_or_default())
    };
    berth_runtime::user::resolve_with(read, user, &[])
        .map(|u| (u.uid, u.gid))
        .map_err(|e| ApiError::bad_request(e.to_string()))
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
    let (fs, cpath, v) = tokio::task::spawn_blocking(move || {
        let fs = open_fs(&ctx2, &c2)?;
        let (cpath, v) = stat(&fs, &path, &name)?;
        Ok::<_, ApiError>((fs, cpath, v))
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
        if let Some(scope) = fs.scope.as_ref() {
            let (root, rel) = scope.locate(&cpath);
            if let Err(e) = berth_archive::write_tree_in(root, &rel, Path::new(&name), &mut w) {
                tracing::warn!("archive of {}: {e}", cpath.display());
            }
        }
        drop(fs);
    });
    ctx.events
        .publish("container", "archive-path", &c.id, Default::default());
    Ok(resp)
}

/// Refuses writes into a read-only rootfs or read-only mount, as Docker does.
fn check_writable(fs: &Fs, cpath: &Path) -> Result<(), ApiError> {
    let (ro_mounts, ro_rootfs) = fs.c.view(|r| {
        let ro: Vec<PathBuf> = r
            .mounts
            .iter()
            .filter(|m| !m.rw)
            .map(|m| PathBuf::from(&m.destination))
            .collect();
        (ro, r.host_config.readonly_rootfs)
    });
    match fs.scope()?.mount_of(cpath) {
        Some(dest) => {
            let ro = ro_mounts.iter().any(|d| d == dest);
            if ro {
                return Err(ApiError::bad_request("mounted volume is marked read-only"));
            }
        }
        None => {
            if ro_rootfs {
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
        let scope = fs.scope()?;
        let cpath = scope.resolve(&path, true).map_err(err)?;
        let (root, rel) = scope.locate(&cpath);
        // The extraction point, resolved inside the container: every entry is then resolved
        // inside it.
        let dest = match root.sub(&rel) {
            Ok(d) => d,
            Err(ConfineError::NotADirectory { .. }) => {
                return Err(ApiError::bad_request("extraction point is not a directory"))
            }
            Err(e) => return Err(err(e.into())),
        };
        check_writable(&fs, &cpath)?;
        let user = c2.view(|r| r.config.user.clone());
        let chown = if copy_ids && !user.is_empty() {
            Some(user_ids(scope, &user)?)
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
        berth_archive::extract_in(plain, &dest, &opts).map_err(|e| match e {
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
