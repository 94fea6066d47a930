//! The image rows (issue 19): `load` and `pull` of an image of 50 small layers (the cost per
//! layer: records, claims, fsyncs, not bytes), `images` with 1,000 images; and the pull of an
//! image from a loopback registry that the big image's row shares.

use super::engines::{Engine, Kind};
use super::report::Row;
use super::scenarios::{latency, row};
use super::stats::time_ms;
use super::Opts;
use anyhow::Result;
use berth_testimg::bulk::{self, Fill};
use std::path::{Path, PathBuf};

/// How many small layers the many-layer image has on top of busybox.
const LAYERS: usize = 50;
/// How many images the `images` row lists.
const IMAGES: usize = 1000;

/// A docker-archive of busybox and [`LAYERS`] layers of four 8 KiB files each.
fn many_layers(work: &Path, rootfs: &Path) -> Result<PathBuf> {
    let dir = work.join("many-layers");
    std::fs::create_dir_all(&dir)?;
    let mut layers = vec![rootfs.to_path_buf()];
    for i in 0..LAYERS {
        let l = dir.join(format!("l{i}.tar"));
        let files: Vec<(String, u64, Fill)> = (0..4)
            .map(|j| (format!("l{i}-f{j}.txt"), 8 << 10, Fill::Text))
            .collect();
        bulk::layer_tar(&l, 100 + i as u64, &files)?;
        layers.push(l);
    }
    let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
    let arch = dir.join("layers50.tar");
    berth_testimg::docker_archive::write(&arch, &refs, "layers50:bench", &["sh"])?;
    Ok(arch)
}

/// The rows of this module that `opts` wants.
pub fn rows(opts: &Opts, work: &Path, rootfs: &Path, engines: &[&Engine]) -> Vec<Row> {
    let mut rows = Vec::new();
    // Keys: `layers50` (both rows), `load`, `pull`; `images1000`.
    let wants_layers = opts.wants("load") || opts.wants("pull") || opts.wants("layers50");
    if wants_layers {
        match many_layers(work, rootfs) {
            Ok(arch) => {
                if opts.wants("load") || opts.wants("layers50") {
                    eprintln!("bench: load of an image of {LAYERS} small layers");
                    let a = arch.display().to_string();
                    let results = latency(&opts.few(5, 0), engines, |e| {
                        let _ = e.cmd(&["rmi", "-f", "layers50:bench"]).output();
                        time_ms(&mut e.cmd(&["load", "-i", &a]))
                    });
                    rows.push(row(
                        &format!("load image of {LAYERS} small layers"),
                        "ms",
                        results,
                    ));
                }
                if opts.wants("pull") || opts.wants("layers50") {
                    eprintln!("bench: pull of an image of {LAYERS} small layers");
                    rows.push(pull(
                        opts,
                        work,
                        engines,
                        &arch,
                        "layers50",
                        &format!("pull image of {LAYERS} small layers from a loopback registry"),
                        &["layers50:bench"],
                    ));
                }
            }
            Err(e) => eprintln!("bench: the {LAYERS}-layer image: {e:#}"),
        }
    }
    if opts.wants("images1000") {
        eprintln!("bench: images with {IMAGES} images");
        rows.push(images_listing(opts, work, rootfs, engines));
    }
    rows
}

/// `images` with [`IMAGES`] distinct images (one shared layer) loaded.
fn images_listing(opts: &Opts, work: &Path, rootfs: &Path, engines: &[&Engine]) -> Row {
    let label = format!("images with {IMAGES} images");
    let arch = work.join("many-images.tar");
    let tags: Vec<String> = (0..IMAGES).map(|i| format!("many:{i}")).collect();
    if let Err(e) = berth_testimg::docker_archive::write_many(&arch, &[rootfs], &tags, &["sh"]) {
        let mut r = Row::new(&label, "ms");
        r.results.insert("berth".into(), Err(format!("{e:#}")));
        return r;
    }
    let a = arch.display().to_string();
    let mut ready = Vec::new();
    for e in engines {
        match time_ms(&mut e.cmd(&["load", "-q", "-i", &a])) {
            Ok(_) => ready.push(*e),
            Err(err) => eprintln!("bench: loading {IMAGES} images into {}: {err:#}", e.name),
        }
    }
    let results = latency(opts, &ready, |e| time_ms(&mut e.cmd(&["images"])));
    for e in &ready {
        for chunk in tags.chunks(200) {
            let mut args = vec!["rmi", "-f"];
            args.extend(chunk.iter().map(String::as_str));
            let _ = e.cmd(&args).output();
        }
    }
    let _ = std::fs::remove_file(&arch);
    row(&label, "ms", results)
}

/// Pushes `archive` to a fresh loopback registry as `name:latest` and times its pull by each
/// engine, after removing `local` tags holding its layers (so every layer is downloaded).
pub(super) fn pull(
    opts: &Opts,
    work: &Path,
    engines: &[&Engine],
    archive: &Path,
    name: &str,
    label: &str,
    local: &[&str],
) -> Row {
    let failed = |why: String| {
        let mut r = Row::new(label, "ms");
        r.results.insert("berth".into(), Err(why));
        r
    };
    let reg = match super::registry::Registry::start(&work.join(format!("registry-{name}"))) {
        Ok(r) => r,
        Err(e) => return failed(format!("registry: {e:#}")),
    };
    let target = format!("{}/{name}:latest", reg.addr);
    if let Err(e) = reg.push_archive(archive, &format!("{name}:latest")) {
        return failed(format!("push with skopeo: {e:#}"));
    }
    let results = latency(&opts.few(5, 0), engines, |e| {
        let mut rm = vec!["rmi", "-f", target.as_str()];
        rm.extend_from_slice(local);
        let _ = e.cmd(&rm).output();
        let mut args = vec!["pull", "-q"];
        if e.kind == Kind::Podman {
            args.push("--tls-verify=false");
        }
        args.push(&target);
        time_ms(&mut e.cmd(&args))
    });
    row(label, "ms", results)
}
