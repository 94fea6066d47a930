//! `COPY` and `ADD`: lay the sources out in a staging folder exactly as they must appear in
//! the image (Docker's folder and trailing-slash rules, globs, `--chown`, `--chmod`, local tar
//! auto-extraction for `ADD`), checksum that tree for the build cache, and hand it over as a
//! layer.
//!
//! Both sides are trees someone else controls, so both are [`Root`]s: a source path is
//! resolved inside the build context (or the `COPY --from` image), its symlinks followed
//! there as Docker's classic builder does, and everything is written into the staging tree
//! through descriptors, so a symlink in the context, in a copied folder or in the image can
//! neither read nor write a host file.

use berth_confine::{ConfineError, CopyOptions, FileKind, Follow, Owner, Root};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

/// Largest decompressed size of a local archive `ADD` extracts: 64 GiB (Docker has no
/// limit; this keeps a small gzip bomb in a context from filling the disk).
pub const MAX_ADD_EXTRACT: u64 = 64 << 30;

/// Deepest folder nesting a `COPY`/`ADD` source may have (Docker has no limit; copying
/// recurses once per level, and the build thread's stack is sized for this many).
pub const MAX_DEPTH: usize = 4096;

/// Why a copy failed (Docker's wording where it has one).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source matched nothing in the build context.
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotFound(String),
    /// A source matched nothing in the `COPY --from` image.
    #[error("COPY failed: stat {0}: file does not exist")]
    NotFoundInImage(String),
    /// A source escapes the context.
    #[error("COPY failed: forbidden path outside the build context: {0} ()")]
    Outside(String),
    /// A source folder nests deeper than [`MAX_DEPTH`].
    #[error("COPY failed: {0}: folders nested deeper than {MAX_DEPTH} levels")]
    TooDeep(String),
    /// An operation inside the context, the image or the staging tree failed.
    #[error("COPY failed: {0}")]
    Confine(#[from] ConfineError),
    /// I/O.
    #[error("COPY failed: {0}")]
    Io(String),
}

fn io(e: std::io::Error) -> CopyError {
    CopyError::Io(e.to_string())
}

/// A source path made relative to its root; a `..` that climbs above it is refused.
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

/// A destination made relative to the image's `/` (`..` stops there, as in the container).
pub fn clean_dest(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
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

/// Expands one source (with `*`/`?` in its last component) inside `root`: the paths,
/// relative to the root, it names.
fn expand(spec: &CopySpec<'_>, src: &str) -> Result<Vec<PathBuf>, CopyError> {
    let rel = clean_rel(src)?;
    let missing = || {
        let shown = rel.display().to_string();
        if spec.from_image {
            CopyError::NotFoundInImage(shown)
        } else {
            CopyError::NotFound(shown)
        }
    };
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains('*') || name.contains('?') {
        let dir = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut out: Vec<PathBuf> = spec
            .root
            .read_dir(&dir)
            .map_err(|_| missing())?
            .into_iter()
            .filter(|n| glob_match(&name, &n.to_string_lossy()))
            .map(|n| dir.join(n))
            .collect();
        out.sort();
        if out.is_empty() {
            return Err(missing());
        }
        return Ok(out);
    }
    // Symlinks on the way (the last one included) are followed inside the root.
    match spec.root.stat(&rel)? {
        Some(_) => Ok(vec![rel]),
        None => Err(missing()),
    }
}

/// Refuses a source folder nested deeper than [`MAX_DEPTH`] (walked without recursion,
/// symlinks not followed).
fn check_depth(root: &Root, top: &Path) -> Result<(), CopyError> {
    let mut stack = vec![(top.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(CopyError::TooDeep(top.display().to_string()));
        }
        for name in root.read_dir(&dir)? {
            let rel = dir.join(name);
            if root.lstat(&rel)?.is_some_and(|s| s.kind == FileKind::Dir) {
                stack.push((rel, depth + 1));
            }
        }
    }
    Ok(())
}

/// Whether the regular file `rel` (followed inside `root`) starts like a tar, gzip or zstd.
fn is_archive(root: &Root, rel: &Path) -> Result<bool, CopyError> {
    let mut f = root.open_file(
        rel,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
        Follow::Yes,
    )?;
    if !f.metadata().map_err(io)?.is_file() {
        return Ok(false);
    }
    let mut head = [0u8; 262];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    Ok((n >= 2 && head.starts_with(&[0x1f, 0x8b]))
        || (n >= 4 && head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]))
        || (n >= 262 && &head[257..262] == b"ustar"))
}

/// A reader that fails once more than `left` bytes went through it.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "archive larger than {MAX_ADD_EXTRACT} bytes once decompressed"
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Extracts the local archive `rel` of `root` into the folder `dest_rel` of `staging`.
fn extract_archive(
    root: &Root,
    rel: &Path,
    staging: &Root,
    dest_rel: &Path,
    chown: Option<(u32, u32)>,
) -> Result<(), CopyError> {
    let dir = staging.mkdir_all(dest_rel, 0o755)?;
    let f = root.open_file(
        rel,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
        Follow::Yes,
    )?;
    let (_, plain) = berth_archive::decompress(f).map_err(io)?;
    let plain = Capped {
        inner: plain,
        left: MAX_ADD_EXTRACT,
    };
    // The folder is handed over by descriptor: whatever its path, the entries land in it.
    let opts = berth_archive::ExtractOptions {
        chown,
        ..Default::default()
    };
    berth_archive::extract(plain, &berth_confine::proc_path(&dir.as_fd()), &opts)
        .map_err(|e| CopyError::Io(e.to_string()))?;
    Ok(())
}

/// Options of one COPY/ADD.
pub struct CopySpec<'a> {
    /// Where sources are read from (the context, or another stage's or image's root).
    pub root: &'a Root,
    /// Whether `root` is an image (`COPY --from`): Docker words a missing source differently.
    pub from_image: bool,
    /// Sources as written.
    pub sources: &'a [String],
    /// Destination inside the image, relative to its `/`, symlinks of the base image already
    /// resolved ([`Root::scoped_path`]).
    pub dest: &'a Path,
    /// The destination is a folder: written with a trailing `/`, or a folder in the base image.
    pub dest_is_dir: bool,
    /// `ADD` (local archives are extracted).
    pub add: bool,
    /// `--chown` as numeric uid, gid.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` mode.
    pub chmod: Option<u32>,
}

/// Lays the copy out in `staging` (which plays the image's `/`).
pub fn stage(spec: &CopySpec<'_>, staging: &Root) -> Result<(), CopyError> {
    let mut srcs = Vec::new();
    for s in spec.sources {
        srcs.extend(expand(spec, s)?);
    }
    let dest_is_dir = spec.dest_is_dir || srcs.len() > 1;
    let opts = CopyOptions {
        owner: spec.chown.map(|(uid, gid)| Owner { uid, gid }),
        follow_top: true,
    };
    for src in &srcs {
        let kind = spec.root.stat(src)?.map(|s| s.kind);
        if kind == Some(FileKind::Dir) {
            check_depth(spec.root, src)?;
            // A folder's contents are merged into the destination; symlinks inside it are
            // copied as symlinks.
            staging.copy_in(spec.dest, spec.root, src, &opts)?;
        } else if spec.add && kind == Some(FileKind::File) && is_archive(spec.root, src)? {
            extract_archive(spec.root, src, staging, spec.dest, spec.chown)?;
        } else {
            let target = if dest_is_dir {
                spec.dest.join(src.file_name().unwrap_or_default())
            } else {
                spec.dest.to_path_buf()
            };
            if let Some(p) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                staging.mkdir_all(p, 0o755)?;
            }
            staging.copy_in(&target, spec.root, src, &opts)?;
        }
    }
    // Folders made above the destination get the owner too; `--chmod` applies to what
    // was copied.
    let mut walk = vec![PathBuf::new()];
    while let Some(d) = walk.pop() {
        for name in staging.read_dir(&d)? {
            let rel = d.join(name);
            let Some(st) = staging.lstat(&rel)? else {
                continue;
            };
            if let Some((u, g)) = spec.chown {
                staging.chown(&rel, u, g)?;
            }
            if let Some(mode) = spec.chmod {
                if st.kind != FileKind::Symlink && rel.starts_with(spec.dest) {
                    staging.chmod(&rel, mode)?;
                }
            }
            if st.kind == FileKind::Dir {
                walk.push(rel);
            }
        }
    }
    Ok(())
}

/// `st_mode` as `stat(2)` gives it (type bits and permission bits).
fn full_mode(st: &berth_confine::Stat) -> u32 {
    let t = match st.kind {
        FileKind::Dir => libc::S_IFDIR,
        FileKind::Symlink => libc::S_IFLNK,
        FileKind::Char => libc::S_IFCHR,
        FileKind::Block => libc::S_IFBLK,
        FileKind::Fifo => libc::S_IFIFO,
        FileKind::Socket => libc::S_IFSOCK,
        FileKind::File => libc::S_IFREG,
    };
    t | st.mode
}

/// The content checksum of a staged tree (paths, modes, owners, contents — not times),
/// read through its root: nothing in it is followed.
pub fn checksum(staging: &Root) -> String {
    let mut h = Sha256::new();
    let mut stack = vec![PathBuf::new()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(names) = staging.read_dir(&d) else {
            continue;
        };
        for name in names {
            let p = d.join(name);
            if let Ok(Some(st)) = staging.lstat(&p) {
                if st.kind == FileKind::Dir {
                    stack.push(p.clone());
                }
                files.push((p, st));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, st) in files {
        let line = format!(
            "{}\0{:o}\0{}:{}\0",
            p.display(),
            full_mode(&st),
            st.uid,
            st.gid
        );
        h.update(line.as_bytes());
        match st.kind {
            FileKind::File => {
                let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
                if let Ok(mut f) = staging.open_file(&p, flags, 0, Follow::No) {
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n) = f.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                }
            }
            FileKind::Symlink => {
                if let Ok(t) = staging.read_link(&p) {
                    h.update(t.as_os_str().as_encoded_bytes());
                }
            }
            _ => {}
        }
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn spec<'a>(root: &'a Root, sources: &'a [String], dest: &'a Path) -> CopySpec<'a> {
        CopySpec {
            root,
            from_image: false,
            sources,
            dest,
            dest_is_dir: false,
            add: false,
            chown: None,
            chmod: None,
        }
    }

    #[test]
    fn docker_copy_rules() {
        let t = tempfile::tempdir().expect("tmp");
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("dir/sub")).expect("mkdir");
        fs::write(ctx.join("a.txt"), "a").expect("w");
        fs::write(ctx.join("b.txt"), "b").expect("w");
        fs::write(ctx.join("dir/sub/c"), "c").expect("w");
        symlink("a.txt", ctx.join("link")).expect("ln");
        let st = t.path().join("st");
        fs::create_dir_all(&st).expect("mkdir");
        let (cr, sr) = (Root::open(&ctx).expect("ctx"), Root::open(&st).expect("st"));
        let globs = ["*.txt".to_string()];
        stage(&spec(&cr, &globs, Path::new("out")), &sr).expect("stage");
        assert!(st.join("out/a.txt").is_file() && st.join("out/b.txt").is_file());
        let dir = ["dir".to_string()];
        let mut s = spec(&cr, &dir, Path::new("d"));
        s.chmod = Some(0o600);
        stage(&s, &sr).expect("stage");
        assert!(st.join("d/sub/c").is_file());
        let one = ["a.txt".to_string()];
        stage(&spec(&cr, &one, Path::new("renamed")), &sr).expect("stage");
        assert!(st.join("renamed").is_file());
        // A symlink named as the source is followed (inside the context); its name is kept.
        let link = ["link".to_string()];
        let mut s = spec(&cr, &link, Path::new("l"));
        s.dest_is_dir = true;
        stage(&s, &sr).expect("stage");
        let m = fs::symlink_metadata(st.join("l/link")).expect("l/link");
        assert!(m.is_file());
        let nope = ["nope".to_string()];
        assert!(matches!(
            stage(&spec(&cr, &nope, Path::new("x")), &sr),
            Err(CopyError::NotFound(_))
        ));
        let out = ["../../etc/passwd".to_string()];
        let e = stage(&spec(&cr, &out, Path::new("x")), &sr).expect_err("outside");
        assert_eq!(
            e.to_string(),
            "COPY failed: forbidden path outside the build context: ../../etc/passwd ()"
        );
        let c1 = checksum(&sr);
        assert_eq!(c1, checksum(&sr));
        fs::write(st.join("renamed"), "changed").expect("w");
        assert_ne!(c1, checksum(&sr));
    }

    /// The attacks of issue #15 against the copy itself: nothing is read from or written to
    /// the host outside the context and the staging tree.
    #[test]
    fn context_symlinks_stay_inside() {
        let t = tempfile::tempdir().expect("tmp");
        let canary = t.path().join("canary");
        fs::create_dir_all(&canary).expect("mkdir");
        fs::write(canary.join("secret"), "host secret").expect("w");
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("a")).expect("mkdir");
        fs::create_dir_all(ctx.join("b/x")).expect("mkdir");
        symlink(&canary, ctx.join("a/x")).expect("ln");
        fs::write(ctx.join("b/x/f"), "f").expect("w");
        symlink("/", ctx.join("h")).expect("ln");
        let st = t.path().join("st");
        fs::create_dir_all(&st).expect("mkdir");
        let (cr, sr) = (Root::open(&ctx).expect("ctx"), Root::open(&st).expect("st"));
        // `a/x -> canary`, then `b/x/f`: the symlink is replaced, the host folder untouched.
        let ab = ["a".to_string(), "b".to_string()];
        stage(&spec(&cr, &ab, Path::new("o")), &sr).expect("stage");
        assert!(st.join("o/x/f").is_file());
        let names: Vec<_> = fs::read_dir(&canary).expect("ls").flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // `h -> /`: resolved inside the context, the host file is not found.
        let rel = canary.strip_prefix("/").expect("abs");
        let src = [format!("h/{}/secret", rel.display())];
        assert!(matches!(
            stage(&spec(&cr, &src, Path::new("s")), &sr),
            Err(CopyError::NotFound(_))
        ));
        assert!(!st.join("s").exists());
    }
}
