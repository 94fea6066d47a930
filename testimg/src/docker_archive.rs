//! Writes a multi-layer image in the docker-archive format (`docker save`'s legacy layout:
//! `manifest.json`, the config blob and one uncompressed tar per layer) from layer tarballs,
//! so tests and benchmarks can `load` or push a real multi-layer image made locally.

use crate::TestImageError;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(h.finalize()), total))
}

fn entry<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, name, data)
}

/// Writes `dest`, a docker-archive of an image whose layers are the tarballs `layers` (bottom
/// first), tagged `repo_tag` (e.g. `big:local`), with `cmd` as its default command.
/// Returns the image ID (`sha256:` of the config), as every engine computes it.
pub fn write(
    dest: &Path,
    layers: &[&Path],
    repo_tag: &str,
    cmd: &[&str],
) -> Result<String, TestImageError> {
    let ids = write_many(dest, layers, &[repo_tag.to_string()], cmd)?;
    Ok(ids.into_iter().next().unwrap_or_default())
}

/// Like [`write`] with one image per tag in `repo_tags`, all on the same layers (stored once);
/// with more than one tag each image's config carries the label `berth.testimg.n=<index>`,
/// so the images are distinct (`images` with 1,000 images). Returns the image IDs.
pub fn write_many(
    dest: &Path,
    layers: &[&Path],
    repo_tags: &[String],
    cmd: &[&str],
) -> Result<Vec<String>, TestImageError> {
    let io_err = |e| TestImageError::Io(dest.to_path_buf(), e);
    let mut diff_ids = Vec::new();
    for l in layers {
        let (hex, _) = sha256_file(l).map_err(|e| TestImageError::Io(l.to_path_buf(), e))?;
        diff_ids.push(hex);
    }
    let history: Vec<serde_json::Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| serde_json::json!({"created": "2026-11-28T00:00:00Z", "created_by": format!("berth-testimg layer {i}")}))
        .collect();
    let layer_names: Vec<String> = diff_ids.iter().map(|d| format!("{d}/layer.tar")).collect();
    let mut configs = Vec::new();
    let mut manifest = Vec::new();
    for (i, tag) in repo_tags.iter().enumerate() {
        let mut config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-11-28T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": cmd,
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| format!("sha256:{d}")).collect::<Vec<_>>()},
            "history": history,
        });
        if repo_tags.len() > 1 {
            config["config"]["Labels"] = serde_json::json!({"berth.testimg.n": i.to_string()});
        }
        let bytes = serde_json::to_vec(&config).map_err(|e| io_err(io::Error::other(e)))?;
        let hex = hex::encode(Sha256::digest(&bytes));
        manifest.push(serde_json::json!({
            "Config": format!("{hex}.json"),
            "RepoTags": [tag],
            "Layers": layer_names,
        }));
        configs.push((hex, bytes));
    }
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| io_err(io::Error::other(e)))?;
    let file = File::create(dest).map_err(io_err)?;
    let mut b = tar::Builder::new(BufWriter::new(file));
    let mut build = || -> io::Result<()> {
        for (hex, bytes) in &configs {
            entry(&mut b, &format!("{hex}.json"), bytes)?;
        }
        for (l, name) in layers.iter().zip(&layer_names) {
            let mut f = File::open(l)?;
            let len = f.metadata()?.len();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(len);
            h.set_mtime(1_700_000_000);
            b.append_data(&mut h, name, &mut f)?;
        }
        entry(&mut b, "manifest.json", &manifest_bytes)?;
        b.finish()
    };
    build().map_err(io_err)?;
    let mut w = b.into_inner().map_err(io_err)?;
    w.flush().map_err(io_err)?;
    Ok(configs
        .iter()
        .map(|(hex, _)| format!("sha256:{hex}"))
        .collect())
}
