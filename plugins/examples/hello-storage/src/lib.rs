//! hello-storage: an out-of-tree berth storage plugin, written against `berth-plugins` only.
//!
//! The `hello` driver keeps every layer as a plain folder holding its full filesystem — a
//! copy of its parent's plus its own changes (like Docker's `vfs`):
//!
//! ```text
//! <root>/<id>/fs       the layer's filesystem
//! <root>/<id>/parent   the parent's id (absent for a base layer)
//! ```
//!
//! Diffs are found by comparing a layer with its parent (type, mode, owner, size, mtime, link
//! target) and written as tar streams with `.wh.` whiteouts; applied tars honour whiteouts and
//! opaque markers. Build it with `cargo build` and point berthd at the `.so` (see the
//! berth-plugins crate documentation).

mod walk;

use berth_plugins::core::storage::{Change, CreateOpts, Mount, Usage};
use berth_plugins::core::{DriverError, DriverResult, StorageDriver};
use berth_plugins::serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// The driver: layers under `root`.
struct Hello {
    root: PathBuf,
}

/// The constructor berthd calls with `{"root": ..., "storage_opts": {...}}`.
fn new_hello(config: &Value) -> Result<Box<dyn StorageDriver>, DriverError> {
    let root = config
        .get("root")
        .and_then(Value::as_str)
        .ok_or_else(|| DriverError::InvalidInput("hello: configuration has no \"root\"".into()))?;
    fs::create_dir_all(root).map_err(|e| DriverError::io(format!("creating {root}"), e))?;
    Ok(Box::new(Hello { root: root.into() }))
}

berth_plugins::export_plugin! {
    name: "hello-storage",
    version: env!("CARGO_PKG_VERSION"),
    storage: { "hello" => new_hello },
}

fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DriverError {
    move |e| DriverError::io(context, e)
}

impl Hello {
    fn layer(&self, id: &str) -> DriverResult<PathBuf> {
        if id.is_empty() || id.starts_with('.') || id.contains('/') {
            return Err(DriverError::InvalidInput(format!(
                "invalid layer id {id:?}"
            )));
        }
        Ok(self.root.join(id))
    }

    fn fs_of(&self, id: &str) -> DriverResult<PathBuf> {
        let dir = self.layer(id)?;
        if !dir.is_dir() {
            return Err(DriverError::NotFound(format!("layer {id} does not exist")));
        }
        Ok(dir.join("fs"))
    }

    fn parent_fs(&self, id: &str) -> DriverResult<Option<PathBuf>> {
        match fs::read_to_string(self.layer(id)?.join("parent")) {
            Ok(p) => self.fs_of(p.trim()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DriverError::io("reading the parent link", e)),
        }
    }
}

impl StorageDriver for Hello {
    fn name(&self) -> String {
        "hello".into()
    }

    fn status(&self) -> Vec<(String, String)> {
        vec![("Layout".into(), "plain folders (hello-storage)".into())]
    }

    fn create(&self, id: &str, parent: Option<&str>, _opts: &CreateOpts) -> DriverResult<()> {
        let dir = self.layer(id)?;
        if dir.exists() {
            return Err(DriverError::AlreadyExists(format!(
                "layer {id} already exists"
            )));
        }
        let tmp = self.root.join(format!(".{id}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io("creating the layer"))?;
        let built = (|| {
            match parent {
                Some(p) => {
                    let from = self.fs_of(p)?;
                    let status = Command::new("cp")
                        .arg("-a")
                        .arg(&from)
                        .arg(tmp.join("fs"))
                        .status()
                        .map_err(io("running cp"))?;
                    if !status.success() {
                        return Err(DriverError::Io(format!("copying layer {p} failed")));
                    }
                    fs::write(tmp.join("parent"), p).map_err(io("writing the parent link"))
                }
                None => fs::create_dir(tmp.join("fs")).map_err(io("creating the layer")),
            }?;
            fs::rename(&tmp, &dir).map_err(io("committing the layer"))
        })();
        if built.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        built
    }

    fn remove(&self, id: &str) -> DriverResult<()> {
        let dir = self.layer(id)?;
        if !dir.exists() {
            return Err(DriverError::NotFound(format!("layer {id} does not exist")));
        }
        fs::remove_dir_all(dir).map_err(io(format!("removing layer {id}")))
    }

    fn exists(&self, id: &str) -> bool {
        self.layer(id).is_ok_and(|d| d.is_dir())
    }

    fn list(&self) -> DriverResult<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(&self.root).map_err(io("listing layers"))? {
            let name = e.map_err(io("listing layers"))?.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with('.') {
                ids.push(name.into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn mounts(&self, id: &str) -> DriverResult<Vec<Mount>> {
        Ok(vec![Mount {
            fstype: "bind".into(),
            source: self.fs_of(id)?.display().to_string(),
            options: vec!["rbind".into(), "rw".into()],
        }])
    }

    fn apply_diff(&self, id: &str, diff: &mut dyn Read) -> DriverResult<u64> {
        let fs_dir = self.fs_of(id)?;
        let mut archive = tar::Archive::new(diff);
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        // Owners are set below, tolerating empty numeric fields as 0 (as Docker does).
        archive.set_unpack_xattrs(true);
        let bad = |e: std::io::Error| {
            let mut msg = format!("invalid layer tar: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            DriverError::InvalidInput(msg)
        };
        let mut bytes = 0;
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let rel = entry.path().map_err(bad)?.into_owned();
            if rel
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
            {
                return Err(DriverError::InvalidInput(format!(
                    "refusing layer entry {} outside the layer",
                    rel.display()
                )));
            }
            if let Some(target) = entry.link_name().map_err(bad)? {
                let base = rel.parent().unwrap_or(Path::new(""));
                let hard = entry.header().entry_type().is_hard_link();
                if walk::link_escapes(base, &target, hard) {
                    return Err(DriverError::InvalidInput(format!(
                        "refusing layer entry {}: its link target {} leaves the layer",
                        rel.display(),
                        target.display()
                    )));
                }
            }
            let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
            let dir = fs_dir.join(rel.parent().unwrap_or(Path::new("")));
            match name.as_deref() {
                Some(".wh..wh..opq") => walk::clear_dir(&dir)?,
                Some(n) if n.starts_with(".wh.") => walk::remove_any(&dir.join(&n[4..]))?,
                _ => {
                    let target = fs_dir.join(&rel);
                    let is_dir = entry.header().entry_type().is_dir();
                    if fs::symlink_metadata(&target).is_ok_and(|m| !(is_dir && m.is_dir())) {
                        walk::remove_any(&target)?;
                    }
                    bytes += entry.header().size().unwrap_or(0);
                    let kind = entry.header().entry_type();
                    if kind.is_fifo() || kind.is_character_special() || kind.is_block_special() {
                        walk::make_special(&target, entry.header())?;
                    } else {
                        entry.unpack_in(&fs_dir).map_err(bad)?;
                    }
                    walk::set_owner(&target, entry.header())?;
                }
            }
        }
        Ok(bytes)
    }

    fn diff(&self, id: &str, out: &mut dyn Write) -> DriverResult<()> {
        let layer = self.fs_of(id)?;
        let parent = self.parent_fs(id)?;
        let changes = walk::compare(&layer, parent.as_deref())?;
        walk::write_tar(&layer, &changes, out)
    }

    fn changes(&self, id: &str) -> DriverResult<Vec<Change>> {
        let layer = self.fs_of(id)?;
        let parent = self.parent_fs(id)?;
        Ok(walk::compare(&layer, parent.as_deref())?
            .into_iter()
            .map(|(rel, kind)| Change {
                path: format!("/{}", rel.display()),
                kind,
            })
            .collect())
    }

    fn usage(&self, id: &str) -> DriverResult<Usage> {
        let mut usage = Usage::default();
        walk::each(&self.fs_of(id)?, &mut |_, m| {
            usage.inodes += 1;
            if m.is_file() {
                usage.size += m.len();
            }
        })?;
        Ok(usage)
    }
}
