//! The `vfs` storage driver: every layer is a full copy of its parent plus its own changes.
//!
//! Slow and space-hungry, but it works on any filesystem and needs no kernel support, like
//! Docker's vfs driver. Layout under the driver root: `dir/<id>/` holds the layer's complete
//! tree, `meta/<id>.parent` its parent's id (written atomically). A copy is made in a temporary
//! folder and renamed into place, so a crash never leaves a half-made layer under its name.

mod plugin;

use berth_archive::{apply_layer, changes_between, write_diff_between, ApplyOptions, Whiteouts};
use berth_core::storage::{Change, CreateOpts, Mount, Usage};
use berth_core::{DriverError, DriverResult, StorageDriver};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The driver.
#[derive(Debug)]
pub struct Vfs {
    root: PathBuf,
    max_layer: u64,
}

/// Builds the driver from `{"root": ..., "storage_opts": {...}}`.
pub fn new_driver(config: &serde_json::Value) -> Result<Box<dyn StorageDriver>, DriverError> {
    let root = config
        .get("root")
        .and_then(|v| v.as_str())
        .ok_or_else(|| DriverError::InvalidInput("vfs: configuration needs \"root\"".into()))?;
    let max_layer = config
        .get("max_layer_size")
        .and_then(|v| v.as_u64())
        .unwrap_or(64 << 30);
    if let Some(opts) = config.get("storage_opts").and_then(|v| v.as_object()) {
        if let Some(k) = opts.keys().next() {
            return Err(DriverError::InvalidInput(format!(
                "vfs: unknown option {k}"
            )));
        }
    }
    Ok(Box::new(Vfs::new(Path::new(root), max_layer)?))
}

fn io_err(ctx: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DriverError {
    move |e| DriverError::io(ctx, e)
}

fn check_id(id: &str) -> DriverResult<()> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return Err(DriverError::InvalidInput(format!(
            "invalid layer id {id:?}"
        )));
    }
    Ok(())
}

/// Makes `dir` `0710` (root's traversal only).
fn private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o710))
}

impl Vfs {
    /// Opens (creating) the driver root and clears leftovers of interrupted creates.
    pub fn new(root: &Path, max_layer: u64) -> DriverResult<Vfs> {
        // Other users may not list the layers (a layer's own folder is the container's `/`,
        // so it keeps the layer's mode).
        for d in ["dir", "meta"] {
            fs::create_dir_all(root.join(d))
                .and_then(|_| private(&root.join(d)))
                .map_err(io_err(format!("creating {}", root.join(d).display())))?;
        }
        private(root).map_err(io_err(format!("restricting {}", root.display())))?;
        let v = Vfs {
            root: root.to_path_buf(),
            max_layer,
        };
        berth_core::atomic::clean_temps(&root.join("meta"));
        if let Ok(entries) = fs::read_dir(root.join("dir")) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().contains(".tmp-") {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(v)
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join("dir").join(id)
    }

    fn parent(&self, id: &str) -> Option<String> {
        fs::read_to_string(self.root.join("meta").join(format!("{id}.parent")))
            .ok()
            .filter(|s| !s.is_empty())
    }
}

/// Copies the tree `from` into the empty folder `to`, preserving everything (via a tar pipe).
pub fn copy_tree(from: &Path, to: &Path) -> DriverResult<()> {
    let (r, mut w) = std::io::pipe().map_err(io_err("creating a pipe"))?;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            let res = write_diff_between(from, None, &mut w);
            drop(w);
            res
        });
        let applied = apply_layer(
            r,
            to,
            &ApplyOptions {
                whiteouts: Whiteouts::Delete,
                allow_devices: true,
                max_size: u64::MAX,
            },
        );
        let written = writer
            .join()
            .map_err(|_| DriverError::Internal("copy thread panicked".into()))?;
        written.map_err(|e| DriverError::Io(e.to_string()))?;
        applied
            .map(|_| ())
            .map_err(|e| DriverError::Io(e.to_string()))
    })
}

impl StorageDriver for Vfs {
    fn name(&self) -> String {
        "vfs".into()
    }

    fn status(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn create(&self, id: &str, parent: Option<&str>, _opts: &CreateOpts) -> DriverResult<()> {
        check_id(id)?;
        let dir = self.dir(id);
        if dir.exists() {
            return Err(DriverError::AlreadyExists(format!(
                "layer {id} already exists"
            )));
        }
        let tmp = self
            .root
            .join("dir")
            .join(format!("{id}.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        if let Some(p) = parent {
            check_id(p)?;
            let pdir = self.dir(p);
            if !pdir.is_dir() {
                let _ = fs::remove_dir_all(&tmp);
                return Err(DriverError::NotFound(format!(
                    "parent layer {p} does not exist"
                )));
            }
            if let Err(e) = copy_tree(&pdir, &tmp) {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        }
        let meta = self.root.join("meta").join(format!("{id}.parent"));
        berth_core::atomic::write_atomic(&meta, parent.unwrap_or("").as_bytes())
            .map_err(io_err(format!("writing {}", meta.display())))?;
        fs::rename(&tmp, &dir).map_err(io_err(format!("renaming {}", tmp.display())))
    }

    fn remove(&self, id: &str) -> DriverResult<()> {
        check_id(id)?;
        match fs::remove_dir_all(self.dir(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DriverError::io(format!("removing layer {id}"), e)),
        }
        let _ = fs::remove_file(self.root.join("meta").join(format!("{id}.parent")));
        Ok(())
    }

    fn exists(&self, id: &str) -> bool {
        check_id(id).is_ok() && self.dir(id).is_dir()
    }

    fn list(&self) -> DriverResult<Vec<String>> {
        let entries = fs::read_dir(self.root.join("dir")).map_err(io_err("listing layers"))?;
        Ok(entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.contains(".tmp-"))
            .collect())
    }

    fn mounts(&self, id: &str) -> DriverResult<Vec<Mount>> {
        if !self.exists(id) {
            return Err(DriverError::NotFound(format!("layer {id} does not exist")));
        }
        Ok(vec![Mount {
            fstype: "bind".into(),
            source: self.dir(id).display().to_string(),
            options: vec!["rbind".into(), "rw".into()],
        }])
    }

    fn apply_diff(&self, id: &str, diff: &mut dyn Read) -> DriverResult<u64> {
        if !self.exists(id) {
            return Err(DriverError::NotFound(format!("layer {id} does not exist")));
        }
        let opts = ApplyOptions {
            whiteouts: Whiteouts::Delete,
            allow_devices: true,
            max_size: self.max_layer,
        };
        apply_layer(diff, &self.dir(id), &opts)
            .map(|s| s.bytes)
            .map_err(|e| DriverError::InvalidInput(e.to_string()))
    }

    fn diff_dir(&self, id: &str) -> DriverResult<Option<PathBuf>> {
        if !self.exists(id) {
            return Err(DriverError::NotFound(format!("layer {id} does not exist")));
        }
        Ok(Some(self.dir(id)))
    }

    fn diff(&self, id: &str, out: &mut dyn Write) -> DriverResult<()> {
        let parent = self.parent(id).map(|p| self.dir(&p));
        write_diff_between(&self.dir(id), parent.as_deref(), &mut &mut *out)
            .map_err(|e| DriverError::Io(e.to_string()))
    }

    fn changes(&self, id: &str) -> DriverResult<Vec<Change>> {
        let parent = self.parent(id).map(|p| self.dir(&p));
        let list = changes_between(&self.dir(id), parent.as_deref())
            .map_err(|e| DriverError::Io(e.to_string()))?;
        Ok(list
            .into_iter()
            .map(|(path, kind)| Change { path, kind })
            .collect())
    }

    fn usage(&self, id: &str) -> DriverResult<Usage> {
        let (size, inodes) = berth_archive::diff::tree_usage(&self.dir(id));
        Ok(Usage { size, inodes })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        berth_storage_conformance::run_all(&|root| {
            super::new_driver(&serde_json::json!({"root": root})).expect("vfs")
        });
    }
}
