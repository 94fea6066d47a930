//! The `overlay2` storage driver, laid out as Docker's.
//!
//! Under the driver root, each layer is a folder `<id>/` with `diff/` (its own content),
//! `work/` (overlayfs scratch), `link` (its short name) and, when it has a parent, `lower`
//! (`l/<short>:l/<short>...`, nearest parent first) and `parent`. `l/<short>` is a symlink to
//! `../<id>/diff`; the 26-character short names keep the mount options of deep chains under
//! the kernel's page-size limit. We pass *absolute* `l/` paths in the options (no chdir in a
//! multi-threaded daemon), which fits about 75 layers deep in one page.
//!
//! Whiteouts are stored as overlayfs expects (0/0 character devices, `trusted.overlay.opaque`),
//! so a container's upper folder *is* its diff.

mod plugin;

use berth_archive::{apply_layer, changes_overlay, write_diff_overlay, ApplyOptions, Whiteouts};
use berth_core::atomic::Flush;
use berth_core::storage::{Change, CreateOpts, Mount, Usage};
use berth_core::{DriverError, DriverResult, StorageDriver};
use rand::Rng;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The driver.
#[derive(Debug)]
pub struct Overlay {
    root: PathBuf,
    max_layer: u64,
    backing: String,
}

fn io_err(ctx: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DriverError {
    move |e| DriverError::io(ctx, e)
}

/// Builds the driver from `{"root": ..., "storage_opts": {...}}`.
pub fn new_driver(config: &serde_json::Value) -> Result<Box<dyn StorageDriver>, DriverError> {
    let root = config.get("root").and_then(|v| v.as_str()).ok_or_else(|| {
        DriverError::InvalidInput("overlay2: configuration needs \"root\"".into())
    })?;
    if let Some(opts) = config.get("storage_opts").and_then(|v| v.as_object()) {
        if let Some(k) = opts.keys().next() {
            return Err(match k.as_str() {
                "overlay2.size" => DriverError::Unsupported(
                    "Storage option overlay2.size not supported: backing filesystem is not xfs with pquota".into(),
                ),
                other => DriverError::InvalidInput(format!("overlay2: unknown option {other}")),
            });
        }
    }
    let max_layer = config
        .get("max_layer_size")
        .and_then(|v| v.as_u64())
        .unwrap_or(64 << 30);
    Ok(Box::new(Overlay::new(Path::new(root), max_layer)?))
}

fn check_id(id: &str) -> DriverResult<()> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') || id == "l" {
        return Err(DriverError::InvalidInput(format!(
            "invalid layer id {id:?}"
        )));
    }
    Ok(())
}

fn short_name() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    (0..26)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

fn fs_name(path: &Path) -> String {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: statfs fills the zeroed struct; the path pointer is valid for the call.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    match st.f_type as i64 {
        0xEF53 => "extfs",
        0x58465342 => "xfs",
        0x9123683E => "btrfs",
        0x01021994 => "tmpfs",
        _ => "unknown",
    }
    .into()
}

/// Sets `dir`'s mode (a folder of the driver's that other users may not list).
fn private(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

impl Overlay {
    /// Opens the root, checking that overlayfs works on it.
    pub fn new(root: &Path, max_layer: u64) -> DriverResult<Overlay> {
        fs::create_dir_all(root.join("l"))
            .and_then(|_| private(root, 0o710))
            .and_then(|_| private(&root.join("l"), 0o700))
            .map_err(io_err(format!("creating {}", root.display())))?;
        let o = Overlay {
            root: root.to_path_buf(),
            max_layer,
            backing: fs_name(root),
        };
        o.probe()?;
        Ok(o)
    }

    /// Mounts a tiny overlay to prove the kernel and filesystem support it.
    fn probe(&self) -> DriverResult<()> {
        let t = self.root.join(format!(".probe-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        for d in ["lower1", "lower2", "upper", "work", "merged"] {
            fs::create_dir_all(t.join(d)).map_err(io_err("creating overlay probe"))?;
        }
        let opts = format!(
            "lowerdir={}:{},upperdir={},workdir={}",
            t.join("lower1").display(),
            t.join("lower2").display(),
            t.join("upper").display(),
            t.join("work").display()
        );
        let r = mount("overlay", &t.join("merged"), "overlay", &opts);
        if r.is_ok() {
            umount(&t.join("merged"));
        }
        let _ = fs::remove_dir_all(&t);
        r.map_err(|e| {
            DriverError::Unsupported(format!(
                "overlayfs does not work on {} ({}): {e}",
                self.root.display(),
                self.backing
            ))
        })
    }

    fn layer(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn lowers(&self, id: &str) -> Vec<PathBuf> {
        fs::read_to_string(self.layer(id).join("lower"))
            .map(|s| {
                s.split(':')
                    .filter(|x| !x.is_empty())
                    .map(|x| self.root.join(x))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn mount(src: &str, target: &Path, fstype: &str, data: &str) -> std::io::Result<()> {
    let c = |s: &[u8]| {
        std::ffi::CString::new(s).map_err(|_| std::io::Error::other("NUL in mount argument"))
    };
    let (s, t, f, d) = (
        c(src.as_bytes())?,
        c(target.as_os_str().as_encoded_bytes())?,
        c(fstype.as_bytes())?,
        c(data.as_bytes())?,
    );
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, d.as_ptr().cast()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn umount(target: &Path) {
    if let Ok(t) = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()) {
        // SAFETY: valid path pointer.
        unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    }
}

impl StorageDriver for Overlay {
    fn name(&self) -> String {
        "overlay2".into()
    }

    fn status(&self) -> Vec<(String, String)> {
        vec![
            ("Backing Filesystem".into(), self.backing.clone()),
            ("Supports d_type".into(), "true".into()),
            ("Using metacopy".into(), "false".into()),
            ("Native Overlay Diff".into(), "true".into()),
            ("userxattr".into(), "false".into()),
        ]
    }

    fn create(&self, id: &str, parent: Option<&str>, opts: &CreateOpts) -> DriverResult<()> {
        check_id(id)?;
        let dir = self.layer(id);
        if dir.exists() {
            return Err(DriverError::AlreadyExists(format!(
                "layer {id} already exists"
            )));
        }
        let lower = match parent {
            Some(p) => {
                check_id(p)?;
                let plink = fs::read_to_string(self.layer(p).join("link")).map_err(|_| {
                    DriverError::NotFound(format!("parent layer {p} does not exist"))
                })?;
                let plower = fs::read_to_string(self.layer(p).join("lower")).unwrap_or_default();
                let mut l = format!("l/{}", plink.trim());
                if !plower.is_empty() {
                    l.push(':');
                    l.push_str(&plower);
                }
                Some(l)
            }
            None => None,
        };
        let tmp = self.root.join(format!("{id}.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        for d in ["diff", "work"] {
            fs::create_dir_all(tmp.join(d))
                .map_err(io_err(format!("creating {}", tmp.display())))?;
        }
        // The layer's folder is not for other users (`diff` keeps its mode: it is the mode
        // of the container's `/`).
        private(&tmp, 0o710)
            .and_then(|_| private(&tmp.join("work"), 0o700))
            .map_err(io_err(format!("restricting {}", tmp.display())))?;
        let short = short_name();
        // The files sit in a temporary folder renamed into place whole, so readers see all or
        // nothing. An image layer's are flushed one by one (it outlives everything); a
        // container's rw layer's are not (as Docker's overlay2 does): three flushes cost
        // ~18 ms per `create` here, and a rw layer cut short by a power loss has an empty
        // `link` and reads as missing (`exists`), not as a wrong chain.
        let put = |name: &str, data: &[u8]| {
            if opts.rw {
                fs::write(tmp.join(name), data).map_err(io_err(format!("writing {name}")))
            } else {
                // Flushed; the folder is not, it is renamed into place whole below.
                berth_core::atomic::write_atomic_with(&tmp.join(name), Flush::File, |f| {
                    f.write_all(data)
                })
                .map_err(io_err(format!("writing {name}")))
            }
        };
        put("link", short.as_bytes())?;
        if let (Some(l), Some(p)) = (&lower, parent) {
            put("lower", l.as_bytes())?;
            put("parent", p.as_bytes())?;
        }
        fs::rename(&tmp, &dir).map_err(io_err(format!("renaming {}", tmp.display())))?;
        std::os::unix::fs::symlink(format!("../{id}/diff"), self.root.join("l").join(&short))
            .map_err(io_err("creating the short link"))
    }

    fn remove(&self, id: &str) -> DriverResult<()> {
        check_id(id)?;
        let dir = self.layer(id);
        if let Ok(link) = fs::read_to_string(dir.join("link")) {
            let _ = fs::remove_file(self.root.join("l").join(link.trim()));
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DriverError::io(format!("removing layer {id}"), e)),
        }
    }

    fn exists(&self, id: &str) -> bool {
        check_id(id).is_ok()
            && fs::metadata(self.layer(id).join("link")).is_ok_and(|m| m.is_file() && m.len() > 0)
    }

    fn list(&self) -> DriverResult<Vec<String>> {
        let entries = fs::read_dir(&self.root).map_err(io_err("listing layers"))?;
        Ok(entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "l" && !n.contains(".tmp-") && !n.starts_with('.'))
            .collect())
    }

    fn mounts(&self, id: &str) -> DriverResult<Vec<Mount>> {
        if !self.exists(id) {
            return Err(DriverError::NotFound(format!("layer {id} does not exist")));
        }
        let dir = self.layer(id);
        let lowers = self.lowers(id);
        if lowers.is_empty() {
            return Ok(vec![Mount {
                fstype: "bind".into(),
                source: dir.join("diff").display().to_string(),
                options: vec!["rbind".into(), "rw".into()],
            }]);
        }
        let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let opts = vec![
            format!("lowerdir={}", lowerdir.join(":")),
            format!("upperdir={}", dir.join("diff").display()),
            format!("workdir={}", dir.join("work").display()),
        ];
        if opts.iter().map(|o| o.len() + 1).sum::<usize>() > 4000 {
            return Err(DriverError::Unsupported(format!(
                "layer {id} is too deep for one overlay mount"
            )));
        }
        Ok(vec![Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: opts,
        }])
    }

    fn apply_diff(&self, id: &str, diff: &mut dyn Read) -> DriverResult<u64> {
        if !self.exists(id) {
            return Err(DriverError::NotFound(format!("layer {id} does not exist")));
        }
        let opts = ApplyOptions {
            whiteouts: Whiteouts::Overlay,
            allow_devices: true,
            max_size: self.max_layer,
        };
        apply_layer(diff, &self.layer(id).join("diff"), &opts)
            .map(|s| s.bytes)
            .map_err(|e| DriverError::InvalidInput(e.to_string()))
    }

    fn independent_diffs(&self) -> bool {
        true
    }

    fn diff_dir(&self, id: &str) -> DriverResult<Option<PathBuf>> {
        if !self.exists(id) {
            return Err(DriverError::NotFound(format!("layer {id} does not exist")));
        }
        Ok(Some(self.layer(id).join("diff")))
    }

    fn diff(&self, id: &str, out: &mut dyn Write) -> DriverResult<()> {
        write_diff_overlay(&self.layer(id).join("diff"), &mut &mut *out)
            .map_err(|e| DriverError::Io(e.to_string()))
    }

    fn changes(&self, id: &str) -> DriverResult<Vec<Change>> {
        let lowers = self.lowers(id);
        // Each lower layer is its own root: a path is looked up inside it, never through a
        // symlink the image planted leading elsewhere on the host.
        let roots: Vec<berth_confine::Root> = lowers
            .iter()
            .filter_map(|l| berth_confine::Root::open(l).ok())
            .collect();
        let exists = |rel: &Path| roots.iter().any(|r| matches!(r.lstat(rel), Ok(Some(_))));
        let list = changes_overlay(&self.layer(id).join("diff"), &exists)
            .map_err(|e| DriverError::Io(e.to_string()))?;
        Ok(list
            .into_iter()
            .map(|(path, kind)| Change { path, kind })
            .collect())
    }

    fn usage(&self, id: &str) -> DriverResult<Usage> {
        let (size, inodes) = berth_archive::diff::tree_usage(&self.layer(id).join("diff"));
        Ok(Usage { size, inodes })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        berth_storage_conformance::run_all(&|root| {
            super::new_driver(&serde_json::json!({"root": root})).expect("overlay2")
        });
    }
}
