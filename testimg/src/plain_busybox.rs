//! Debian's dynamically linked busybox (package `busybox`), for images whose shell must look
//! commands up in `PATH` as upstream's busybox image does. Debian's `busybox-static` (the
//! binary the other test images use) is built with `FEATURE_SH_STANDALONE`: its `sh` runs its
//! own applet for `ls` whatever `/bin/ls` is, so a masked `/bin/ls` cannot be seen through it.
//!
//! The two packages conflict, so this one is never installed: [`plain_busybox`] fetches its
//! `.deb` with `apt-get download` (Debian's package mirror is the only network the machine
//! has), unpacks it with `dpkg-deb -x` into a cache folder (once per machine; concurrent
//! callers race harmlessly, the first rename wins) and lists the shared libraries it needs
//! (`ldd`), which the image then carries at the same paths.

use crate::TestImageError;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The busybox binary and the shared objects it loads (the dynamic loader included).
#[derive(Debug, Clone)]
pub struct PlainBusybox {
    /// The unpacked `bin/busybox`.
    pub binary: PathBuf,
    /// Absolute host paths of the libraries, as `ldd` names them (`/lib64/ld-linux-x86-64.so.2`).
    pub libs: Vec<PathBuf>,
}

/// How long `apt-get download` may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(180);

/// The cache folder: `$BERTH_TESTIMG_CACHE`, else `<tmp>/berth-testimg-cache`.
fn cache_dir() -> PathBuf {
    std::env::var_os("BERTH_TESTIMG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("berth-testimg-cache"))
}

/// Finds (fetching it the first time) Debian's dynamic busybox and its libraries.
pub fn plain_busybox() -> Result<PlainBusybox, TestImageError> {
    let cache = cache_dir();
    let unpacked = cache.join("busybox-deb");
    let binary = unpacked.join("bin/busybox");
    if !binary.is_file() {
        fetch(&cache, &unpacked)?;
    }
    let libs = libraries(&binary)?;
    Ok(PlainBusybox { binary, libs })
}

fn fail(what: &str, why: impl std::fmt::Display) -> TestImageError {
    TestImageError::PlainBusybox(format!("{what}: {why}"))
}

/// Downloads and unpacks the package into `unpacked` through a private temporary folder.
fn fetch(cache: &Path, unpacked: &Path) -> Result<(), TestImageError> {
    let work = cache.join(format!(".fetch-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| fail("creating the cache folder", e))?;
    let result = fetch_into(&work, unpacked);
    std::fs::remove_dir_all(&work).ok();
    result
}

fn fetch_into(work: &Path, unpacked: &Path) -> Result<(), TestImageError> {
    let mut child = Command::new("apt-get")
        .args(["download", "-q", "busybox"])
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail("running apt-get download busybox", e))?;
    let deadline = Instant::now() + DOWNLOAD_TIMEOUT;
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| fail("waiting for apt-get", e))?
        {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            return Err(fail("apt-get download busybox", "timed out"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        return Err(fail("apt-get download busybox", status));
    }
    let deb = std::fs::read_dir(work)
        .map_err(|e| fail("listing the download", e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| fail("apt-get download busybox", "no .deb came"))?;
    let tree = work.join("tree");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&tree)
        .output()
        .map_err(|e| fail("running dpkg-deb", e))?;
    if !out.status.success() {
        return Err(fail("dpkg-deb -x", String::from_utf8_lossy(&out.stderr)));
    }
    if !tree.join("bin/busybox").is_file() {
        return Err(fail("the busybox package", "has no bin/busybox"));
    }
    // Another caller may have won the race: its copy is as good as ours.
    if std::fs::rename(&tree, unpacked).is_err() && !unpacked.join("bin/busybox").is_file() {
        return Err(fail(
            "moving the package into the cache",
            unpacked.display(),
        ));
    }
    Ok(())
}

/// The shared objects `binary` loads, from `ldd`'s output (`libc.so.6 => /lib/…/libc.so.6 (…)`
/// and the loader's own line `/lib64/ld-linux-x86-64.so.2 (…)`; the vDSO has no file).
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, TestImageError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| fail("running ldd", e))?;
    if !out.status.success() {
        return Err(fail("ldd", String::from_utf8_lossy(&out.stderr)));
    }
    let libs = parse_ldd(&String::from_utf8_lossy(&out.stdout));
    if libs.is_empty() {
        return Err(fail("ldd", "listed no library"));
    }
    Ok(libs)
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line.trim(),
            };
            let path = path.split(" (").next().unwrap_or("").trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ldd() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibresolv.so.2 => /lib/x86_64-linux-gnu/libresolv.so.2 (0x00007f8d)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8d)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f8d)\n";
        assert_eq!(
            parse_ldd(text),
            [
                "/lib/x86_64-linux-gnu/libresolv.so.2",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }
}
