//! userns-runtime: an out-of-tree berth isolation runtime plugin (driver `userns`) that runs
//! every container in a **user namespace of its own**: the container's uids and gids
//! 0..65536 are the host's 100000..165536, so its root is an unprivileged host user.
//!
//! It is berth's OCI runtime (runc, driven with a bundle: `berth_runtime::oci`) with three
//! changes made in [`Runtime::create`]:
//! - the spec gets a `user` namespace and `uidMappings`/`gidMappings` (runc writes the maps);
//! - the container's filesystem is mounted a second time, **idmapped**, at
//!   `<dir>/<id>/rootfs` (`idmap.rs`): each overlay layer is an idmapped mount (on-disk uid
//!   0 is seen as host uid 100000) and a fresh overlay is made of them, so the image's files
//!   belong to the container's root and what it writes is stored with the image's own uids
//!   (`docker diff` and `commit` see uid 0, as with any other runtime);
//! - the spec's root is that mount, reachable by the mapped root: `<dir>` is `0711`,
//!   `<dir>/<id>` belongs to the mapped root and is `0700`.
//!
//! [`Runtime::delete`] unmounts it again. Configuration (all optional; berthd passes `root`
//! and, for a `runtimes` entry, `args`): `{"path", "args", "root"}` as for berth's `runc`
//! driver, `"uid"`/`"gid"` (first host id, 100000), `"size"` (65536), `"dir"`
//! (`/run/berth-userns`). See README.md for what it isolates and what it does not.

mod idmap;

use berth_plugins::core::runtime::{Spec, State, StdioFds};
use berth_plugins::core::{DriverError, DriverResult, Runtime};
use berth_plugins::serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The host ids the container's ids 0..size stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Map {
    /// The host uid of the container's uid 0.
    pub uid: u32,
    /// The host gid of the container's gid 0.
    pub gid: u32,
    /// How many ids are mapped.
    pub size: u32,
}

/// The runtime: berth's OCI runtime plus the user namespace.
struct Userns {
    inner: Box<dyn Runtime>,
    map: Map,
    dir: PathBuf,
}

fn number(config: &Value, key: &str, default: u32) -> DriverResult<u32> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| DriverError::InvalidInput(format!("userns: {key:?} must be a uid"))),
    }
}

/// The constructor berthd (and each container's monitor) calls.
fn open(config: &Value) -> DriverResult<Box<dyn Runtime>> {
    let map = Map {
        uid: number(config, "uid", 100_000)?,
        gid: number(config, "gid", 100_000)?,
        size: number(config, "size", 65_536)?,
    };
    let fits = |first: u32| first.checked_add(map.size).is_some();
    if map.uid == 0 || map.gid == 0 || map.size == 0 || !fits(map.uid) || !fits(map.gid) {
        return Err(DriverError::InvalidInput(format!(
            "userns: the mapping {map:?} must be a non-empty range of host ids above 0"
        )));
    }
    let dir = config
        .get("dir")
        .and_then(Value::as_str)
        .unwrap_or("/run/berth-userns");
    Ok(Box::new(Userns {
        inner: berth_runtime::oci::open(config)?,
        map,
        dir: PathBuf::from(dir),
    }))
}

berth_plugins::export_plugin! {
    name: "userns-runtime",
    version: env!("CARGO_PKG_VERSION"),
    runtime: { "userns" => open },
}

impl Userns {
    /// `<dir>/<id>`: the container's folder, owned by its mapped root.
    fn top(&self, id: &str) -> DriverResult<PathBuf> {
        if id.is_empty() || id.starts_with('.') || id.contains('/') {
            return Err(DriverError::InvalidInput(format!(
                "invalid container id {id:?}"
            )));
        }
        Ok(self.dir.join(id))
    }

    /// The spec runc gets: the user namespace, the maps, and the idmapped root at `rootfs`.
    fn spec(&self, spec: &Spec, rootfs: &Path) -> DriverResult<Spec> {
        let bad = |e: berth_plugins::serde_json::Error| DriverError::InvalidInput(e.to_string());
        let mut v = berth_plugins::serde_json::to_value(spec).map_err(bad)?;
        let linux = &mut v["linux"];
        if !linux.is_object() {
            *linux = json!({});
        }
        if !linux["namespaces"].is_array() {
            linux["namespaces"] = json!([]);
        }
        if let Some(ns) = linux["namespaces"].as_array_mut() {
            if ns.iter().any(|n| n["type"] == "user") {
                return Err(DriverError::Unsupported(
                    "userns: the container already has a user namespace".into(),
                ));
            }
            ns.push(json!({"type": "user"}));
        }
        let m = self.map;
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": m.uid, "size": m.size}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": m.gid, "size": m.size}]);
        v["root"]["path"] = json!(rootfs);
        berth_plugins::serde_json::from_value(v).map_err(bad)
    }

    /// Unmounts and removes `<dir>/<id>` (what [`Runtime::create`] made), if it is there.
    fn release(&self, id: &str) -> DriverResult<()> {
        let top = self.top(id)?;
        idmap::unmount(&top.join("rootfs"))?;
        for p in [top.join("rootfs"), top] {
            match std::fs::remove_dir(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(DriverError::io(format!("removing {}", p.display()), e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn prepare(&self, id: &str, bundle: &Path, spec: &Spec) -> DriverResult<Spec> {
        let top = self.top(id)?;
        self.release(id)?;
        let source = spec
            .root()
            .as_ref()
            .map(|r| bundle.join(r.path()))
            .ok_or_else(|| DriverError::InvalidInput("userns: the spec has no root".into()))?;
        idmap::folders(&self.dir, &top, self.map)?;
        let rootfs = top.join("rootfs");
        idmap::mount_idmapped(&source, &rootfs, self.map)?;
        self.spec(spec, &rootfs)
    }
}

impl Runtime for Userns {
    fn name(&self) -> String {
        "userns".into()
    }

    fn create(&self, id: &str, bundle: &Path, spec: &Spec, stdio: StdioFds) -> DriverResult<i32> {
        let created = self
            .prepare(id, bundle, spec)
            .and_then(|spec| self.inner.create(id, bundle, &spec, stdio));
        if created.is_err() {
            let _ = self.release(id);
        }
        created
    }

    fn start(&self, id: &str) -> DriverResult<()> {
        self.inner.start(id)
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> DriverResult<()> {
        self.inner.kill(id, signal, all)
    }

    fn delete(&self, id: &str) -> DriverResult<()> {
        let deleted = self.inner.delete(id);
        self.release(id).and(deleted)
    }

    fn state(&self, id: &str) -> DriverResult<State> {
        self.inner.state(id)
    }

    fn pause(&self, id: &str) -> DriverResult<()> {
        self.inner.pause(id)
    }

    fn resume(&self, id: &str) -> DriverResult<()> {
        self.inner.resume(id)
    }

    fn take_console(&self, id: &str) -> Option<std::os::fd::OwnedFd> {
        self.inner.take_console(id)
    }

    fn set_up_error(&self, id: &str) -> Option<DriverError> {
        self.inner.set_up_error(id)
    }
}
