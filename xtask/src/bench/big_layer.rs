//! The image rows of one large layer (issue 19): `load` and `pull` (from a loopback registry)
//! of an image whose one layer holds 1 GiB of random, incompressible data. The layer and the
//! archive are made in the bench's folder and deleted after; the rows are skipped, with a
//! message, when the disk holding it has less than 5 GB free (the engines keep their copies
//! too).

use super::engines::Engine;
use super::report::Row;
use super::scenarios::{latency, row};
use super::stats::time_ms;
use super::Opts;
use anyhow::{Context, Result};
use berth_testimg::bulk::{self, Fill};
use std::path::Path;

/// The layer's size (with `--quick`, 32 MiB).
const SIZE: u64 = 1 << 30;
/// The free space the rows need.
const NEED: u64 = 5_000_000_000;

/// Bytes free for root on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: statvfs is plain old data; all-zero is a valid value for it to be overwritten.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a statvfs buffer owned by this frame.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error()).context("statvfs");
    }
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The rows of this module that `opts` wants (keys `1gb`, `load`, `pull`).
pub fn rows(opts: &Opts, work: &Path, engines: &[&Engine]) -> Vec<Row> {
    let load = opts.wants("load") || opts.wants("1gb");
    let pull = opts.wants("pull") || opts.wants("1gb");
    if !(load || pull) {
        return Vec::new();
    }
    let free = free_bytes(work).unwrap_or(0);
    if free < NEED {
        eprintln!(
            "bench: the 1 GB layer rows are skipped: {} MB free under {}, they need {} MB",
            free >> 20,
            work.display(),
            NEED >> 20
        );
        return Vec::new();
    }
    let size = if opts.quick { 32 << 20 } else { SIZE };
    let dir = work.join("big-layer");
    let out = made(opts, work, &dir, engines, size, load, pull);
    let _ = std::fs::remove_dir_all(&dir);
    out.unwrap_or_else(|e| {
        let mut r = Row::new("image with one 1 GB layer", "ms");
        r.results.insert("berth".into(), Err(format!("{e:#}")));
        vec![r]
    })
}

fn made(
    opts: &Opts,
    work: &Path,
    dir: &Path,
    engines: &[&Engine],
    size: u64,
    load: bool,
    pull: bool,
) -> Result<Vec<Row>> {
    std::fs::create_dir_all(dir)?;
    eprintln!("bench: making a layer of {} MB of random data", size >> 20);
    let layer = dir.join("layer.tar");
    bulk::layer_tar(&layer, 77, &[("big.bin".into(), size, Fill::Random)])?;
    let arch = dir.join("gig.tar");
    berth_testimg::docker_archive::write(&arch, &[layer.as_path()], "gig:bench", &["sh"])?;
    std::fs::remove_file(&layer)?;
    let mb = size >> 20;
    let mut rows = Vec::new();
    if load {
        eprintln!("bench: load of an image with one {mb} MB layer");
        let a = arch.display().to_string();
        let results = latency(&opts.few(3, 0), engines, |e| {
            let _ = e.cmd(&["rmi", "-f", "gig:bench"]).output();
            time_ms(&mut e.cmd(&["load", "-q", "-i", &a]))
        });
        rows.push(row(
            &format!("load image with one {mb} MB layer (random data)"),
            "ms",
            results,
        ));
        for e in engines {
            let _ = e.cmd(&["rmi", "-f", "gig:bench"]).output();
        }
    }
    if pull {
        eprintln!("bench: pull of an image with one {mb} MB layer");
        let label =
            format!("pull image with one {mb} MB layer (random data) from a loopback registry");
        rows.push(super::images::pull(
            opts,
            work,
            engines,
            &arch,
            "gig",
            &label,
            &["gig:bench"],
        ));
        let _ = std::fs::remove_dir_all(work.join("registry-gig"));
        for e in engines {
            remove_pulled(e);
        }
    }
    Ok(rows)
}

/// Removes the image the pull row left (`127.0.0.1:PORT/gig:latest`).
fn remove_pulled(e: &Engine) {
    let listed = e
        .cmd(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for name in listed.lines().filter(|l| l.ends_with("/gig:latest")) {
        let _ = e.cmd(&["rmi", "-f", name]).output();
    }
}
