//! Helpers of the hostile-input tests (issue #15): unique names, a host canary folder whose
//! one file no attack may touch, a byte search for leaked host data, and the attacking
//! container.

use crate::TestDaemon;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other run uses: `berth-hostile-<what>-<pid>-<nanoseconds>`.
pub fn unique(what: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("berth-hostile-{what}-{}-{n}", std::process::id())
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Starts the attacker: busybox running `sh -c script` detached as `name`, without a
/// network.
pub fn run_attacker(d: &TestDaemon, name: &str, script: &str) {
    d.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ])
    .ok();
}

/// A canary folder on the host holding one file; removed when dropped.
pub struct Canary {
    dir: PathBuf,
    file: String,
    content: String,
}

impl Canary {
    /// A fresh canary (named after `what`) holding `secret` = `host-secret-untouched`.
    pub fn new(what: &str) -> Canary {
        Canary::holding(what, "secret", "host-secret-untouched")
    }

    /// A fresh canary (named after `what`) holding the one file `file` with `content`.
    pub fn holding(what: &str, file: &str, content: &str) -> Canary {
        let dir = std::env::temp_dir().join(unique(what));
        std::fs::create_dir_all(&dir).expect("canary");
        std::fs::write(dir.join(file), content).expect("canary file");
        Canary {
            dir,
            file: file.to_string(),
            content: content.to_string(),
        }
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its folder as text (for scripts and symlink targets).
    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// Panics unless the canary still holds exactly its one untouched file.
    #[track_caller]
    pub fn assert_untouched(&self) {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .expect("canary readable")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec![self.file.clone()], "the canary folder changed");
        assert_eq!(
            std::fs::read_to_string(self.dir.join(&self.file)).expect("canary file"),
            self.content
        );
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
