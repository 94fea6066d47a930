//! `COPY` and `ADD`: lay the sources out in a staging folder exactly as they must appear in
//! the image (Docker's folder and trailing-slash rules, globs, `--chown`, `--chmod`, local tar
//! auto-extraction for `ADD`), checksum that tree for the build cache, and hand it over as a
//! layer.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Why a copy failed (Docker's wording where it has one).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source matched nothing.
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotFound(String),
    /// A source escapes the context.
    #[error("COPY failed: forbidden path outside the build context: {0}")]
    Outside(String),
    /// I/O.
    #[error("COPY failed: {0}")]
    Io(String),
}

fn io(e: std::io::Error) -> CopyError {
    CopyError::Io(e.to_string())
}

fn clean_rel(p: &str) -> Result<PathBuf, CopyError> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => {
                return Err(CopyError::Outside(p.to_string()));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn glob_match(pat: &str, name: &str) -> bool {
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => rec(&p[1..], n) || (!n.is_empty() && rec(p, &n[1..])),
            (Some(b'?'), Some(_)) => rec(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &n[1..]),
            _ => false,
        }
    }
    rec(pat.as_bytes(), name.as_bytes())
}

/// Expands one source (with `*`/`?` in its last component) inside `root`.
fn expand(root: &Path, src: &str) -> Result<Vec<PathBuf>, CopyError> {
    let rel = clean_rel(src)?;
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains('*') || name.contains('?') {
        let dir = root.join(rel.parent().unwrap_or(Path::new("")));
        let mut out: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|_| CopyError::NotFound(src.to_string()))?
            .flatten()
            .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        out.sort();
        if out.is_empty() {
            return Err(CopyError::NotFound(src.to_string()));
        }
        return Ok(out);
    }
    let p = root.join(&rel);
    if fs::symlink_metadata(&p).is_err() {
        return Err(CopyError::NotFound(src.to_string()));
    }
    Ok(vec![p])
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), CopyError> {
    let m = fs::symlink_metadata(from).map_err(io)?;
    if m.file_type().is_symlink() {
        let t = fs::read_link(from).map_err(io)?;
        let _ = fs::remove_file(to);
        return std::os::unix::fs::symlink(t, to).map_err(io);
    }
    if m.is_dir() {
        fs::create_dir_all(to).map_err(io)?;
        fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777)).map_err(io)?;
        let mut entries: Vec<_> = fs::read_dir(from).map_err(io)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        return Ok(());
    }
    if let Some(p) = to.parent() {
        fs::create_dir_all(p).map_err(io)?;
    }
    fs::copy(from, to).map_err(io)?;
    Ok(())
}

fn is_archive(p: &Path) -> bool {
    let mut head = [0u8; 262];
    let Ok(mut f) = fs::File::open(p) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    if n >= 2 && head.starts_with(&[0x1f, 0x8b]) {
        return true;
    }
    if n >= 4 && head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return true;
    }
    n >= 262 && &head[257..262] == b"ustar"
}

/// Fetches `url` (ADD with a remote source) into `target` with `mode`.
pub fn download(url: &str, target: &Path, mode: u32) -> Result<(), CopyError> {
    let resp = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .and_then(|c| c.get(url).send())
        .map_err(|e| CopyError::Io(format!("failed to fetch {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(CopyError::Io(format!(
            "failed to fetch {url}: {}",
            resp.status()
        )));
    }
    if let Some(p) = target.parent() {
        fs::create_dir_all(p).map_err(io)?;
    }
    let mut out = fs::File::create(target).map_err(io)?;
    let mut body = resp;
    std::io::copy(&mut body, &mut out)
        .map_err(|e| CopyError::Io(format!("failed to fetch {url}: {e}")))?;
    fs::set_permissions(target, fs::Permissions::from_mode(mode)).map_err(io)
}

/// Options of one COPY/ADD.
pub struct CopySpec<'a> {
    /// Where sources are read from (the context, or another stage's root).
    pub root: &'a Path,
    /// Sources as written.
    pub sources: &'a [String],
    /// Destination (absolute, WORKDIR applied).
    pub dest: &'a str,
    /// `ADD` (local archives are extracted).
    pub add: bool,
    /// `--chown` as numeric uid, gid.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` mode.
    pub chmod: Option<u32>,
}

/// Lays the copy out under `staging` (which plays the image's `/`).
pub fn stage(spec: &CopySpec<'_>, staging: &Path) -> Result<(), CopyError> {
    let mut srcs = Vec::new();
    for s in spec.sources {
        srcs.extend(expand(spec.root, s)?);
    }
    let dest_rel = clean_rel(spec.dest)?;
    let dest_is_dir = spec.dest.ends_with('/') || srcs.len() > 1;
    let dest = staging.join(&dest_rel);
    for src in &srcs {
        let m = fs::symlink_metadata(src).map_err(io)?;
        if m.is_dir() {
            copy_tree(src, &dest)?;
        } else if spec.add && is_archive(src) {
            fs::create_dir_all(&dest).map_err(io)?;
            let f = fs::File::open(src).map_err(io)?;
            let (_, plain) = berth_archive::decompress(f).map_err(io)?;
            berth_archive::apply_layer(plain, &dest, &berth_archive::ApplyOptions::default())
                .map_err(|e| CopyError::Io(e.to_string()))?;
        } else {
            let target = if dest_is_dir {
                dest.join(src.file_name().unwrap_or_default())
            } else {
                dest.clone()
            };
            copy_tree(src, &target)?;
        }
    }
    // Parents of the destination exist in the image as plain folders.
    let mut walk = vec![staging.to_path_buf()];
    while let Some(d) = walk.pop() {
        for e in fs::read_dir(&d).map_err(io)?.flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).map_err(io)?;
            if let Some((u, g)) = spec.chown {
                let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                    .map_err(|e| CopyError::Io(e.to_string()))?;
                // SAFETY: lchown with a valid path.
                unsafe { libc::lchown(c.as_ptr(), u, g) };
            }
            if let Some(mode) = spec.chmod {
                if !m.file_type().is_symlink() && p.starts_with(&dest) {
                    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(io)?;
                }
            }
            if m.is_dir() {
                walk.push(p);
            }
        }
    }
    Ok(())
}

/// The content checksum of a staged tree (paths, modes, owners, contents — not times).
pub fn checksum(staging: &Path) -> String {
    let mut h = Sha256::new();
    let mut stack = vec![staging.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if let Ok(m) = fs::symlink_metadata(&p) {
                if m.is_dir() {
                    stack.push(p.clone());
                }
                files.push((p, m));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, m) in files {
        let rel = p.strip_prefix(staging).unwrap_or(&p).display().to_string();
        h.update(format!("{rel}\0{:o}\0{}:{}\0", m.mode(), m.uid(), m.gid()).as_bytes());
        if m.is_file() {
            if let Ok(mut f) = fs::File::open(&p) {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
        } else if let Ok(t) = fs::read_link(&p) {
            h.update(t.as_os_str().as_encoded_bytes());
        }
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_copy_rules() {
        let t = tempfile::tempdir().expect("tmp");
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("dir/sub")).expect("mkdir");
        fs::write(ctx.join("a.txt"), "a").expect("w");
        fs::write(ctx.join("b.txt"), "b").expect("w");
        fs::write(ctx.join("dir/sub/c"), "c").expect("w");
        let st = t.path().join("st");
        fs::create_dir_all(&st).expect("mkdir");
        stage(
            &CopySpec {
                root: &ctx,
                sources: &["*.txt".into()],
                dest: "/out",
                add: false,
                chown: None,
                chmod: None,
            },
            &st,
        )
        .expect("stage");
        assert!(st.join("out/a.txt").is_file() && st.join("out/b.txt").is_file());
        stage(
            &CopySpec {
                root: &ctx,
                sources: &["dir".into()],
                dest: "/d",
                add: false,
                chown: None,
                chmod: Some(0o600),
            },
            &st,
        )
        .expect("stage");
        assert!(st.join("d/sub/c").is_file());
        stage(
            &CopySpec {
                root: &ctx,
                sources: &["a.txt".into()],
                dest: "/renamed",
                add: false,
                chown: None,
                chmod: None,
            },
            &st,
        )
        .expect("stage");
        assert!(st.join("renamed").is_file());
        assert!(matches!(
            stage(
                &CopySpec {
                    root: &ctx,
                    sources: &["nope".into()],
                    dest: "/x",
                    add: false,
                    chown: None,
                    chmod: None
                },
                &st
            ),
            Err(CopyError::NotFound(_))
        ));
        assert!(matches!(
            stage(
                &CopySpec {
                    root: &ctx,
                    sources: &["../../etc/passwd".into()],
                    dest: "/x",
                    add: false,
                    chown: None,
                    chmod: None
                },
                &st
            ),
            Err(CopyError::Outside(_))
        ));
        let c1 = checksum(&st);
        assert_eq!(c1, checksum(&st));
    }
}
