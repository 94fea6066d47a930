//! `berth cp`: copies files and folders between a container and the local file system (or a
//! tar stream on stdin/stdout with `-`), deciding names as the docker CLI does (moby's
//! `PrepareArchiveCopy`: into an existing folder, onto an existing file, or as a new name).

use anyhow::{bail, Result};
use base64::Engine;
use berth_api::client::enc;
use berth_api::types::archive::{asserts_dir, base, dir, PathStat, STAT_HEADER};
use berth_api::{Client, ClientError};
use clap::Args;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

/// `cp` flags.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH (`-`: a tar stream on stdin).
    pub src: String,
    /// DEST_PATH or CONTAINER:DEST_PATH (`-`: a tar stream on stdout).
    pub dst: String,
}

/// Docker's `splitCpArg`: `container:path`, or a local path.
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// The stat header of a container path; `None` when it does not exist.
fn stat(c: &mut Client, ctr: &str, path: &str) -> Result<Option<PathStat>, ClientError> {
    let q = format!("/containers/{ctr}/archive?path={}", enc(path));
    match c.request("HEAD", &q, &[], None) {
        Ok(r) => Ok(Some(stat_of(&r))),
        Err(ClientError::Daemon { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn stat_of(r: &berth_api::Response) -> PathStat {
    r.header(&STAT_HEADER.to_ascii_lowercase())
        .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default()
}

/// Where an archive named `src_base` lands for destination `dst` (moby's
/// `PrepareArchiveCopy`): the folder to unpack into and the name the top entry takes.
fn prepare(
    src_is_dir: bool,
    src_base: String,
    dst: &str,
    dst_exists: bool,
    dst_is_dir: bool,
) -> Result<(String, String)> {
    match (dst_exists, dst_is_dir) {
        (true, true) => Ok((dst.to_string(), src_base)),
        (true, false) if src_is_dir => bail!("cannot copy directory"),
        _ if !dst_exists && !src_is_dir && asserts_dir(dst) => bail!("no such directory"),
        _ => Ok((dir(dst), base(dst))),
    }
}

/// `berth cp`.
pub fn cp(c: &mut Client, a: CpArgs) -> Result<i32> {
    match (split(&a.src), split(&a.dst)) {
        ((None, _), (None, _)) => bail!("must specify at least one container source"),
        ((Some(_), _), (Some(_), _)) => bail!("copying between containers is not supported"),
        ((Some(ctr), src), (None, dst)) => from_container(c, &a, ctr, src, dst),
        ((None, src), (Some(ctr), dst)) => to_container(c, &a, src, ctr, dst),
    }
}

fn from_container(c: &mut Client, a: &CpArgs, ctr: &str, src: &str, dst: &str) -> Result<i32> {
    let mut src_path = src.to_string();
    let mut rebase_name = None;
    if a.follow_link {
        if let Some(st) = stat(c, ctr, src)? {
            if st.is_symlink() {
                src_path = st.link_target;
                rebase_name = Some(base(src));
            }
        }
    }
    let q = format!("/containers/{ctr}/archive?path={}", enc(&src_path));
    let mut r = c.request("GET", &q, &[], None)?;
    let st = stat_of(&r);
    if dst == "-" {
        std::io::copy(r.reader(), &mut std::io::stdout().lock())?;
        return Ok(0);
    }
    let src_is_dir = st.is_dir();
    let tar_base = base(&src_path);
    let src_base = rebase_name.unwrap_or_else(|| tar_base.clone());
    let meta = std::fs::metadata(dst).ok();
    let (into, name) = prepare(
        src_is_dir,
        src_base,
        dst,
        meta.is_some(),
        meta.as_ref().is_some_and(|m| m.is_dir()),
    )?;
    if !Path::new(&into).is_dir() {
        bail!("no such directory: {into}");
    }
    let opts = berth_archive::ExtractOptions {
        no_overwrite_dir_non_dir: true,
        // As the docker CLI: the files belong to whoever runs `cp`.
        chown: Some((
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )),
        rebase: Some((PathBuf::from(tar_base), PathBuf::from(name))),
    };
    berth_archive::extract(r.reader(), Path::new(&into), &opts)?;
    done(a, dst);
    Ok(0)
}

fn to_container(c: &mut Client, a: &CpArgs, src: &str, ctr: &str, dst: &str) -> Result<i32> {
    let mut dst_path = dst.to_string();
    let mut st = stat(c, ctr, dst)?;
    if let Some(s) = st.as_ref().filter(|s| s.is_symlink()) {
        dst_path = s.link_target.clone();
        st = stat(c, ctr, &dst_path)?;
    }
    let dst_is_dir = st.as_ref().is_some_and(PathStat::is_dir);
    let mut q = format!("/containers/{ctr}/archive?noOverwriteDirNonDir=true");
    if a.archive {
        q.push_str("&copyUIDGID=true");
    }
    if src == "-" {
        if !dst_is_dir {
            bail!("destination \"{ctr}:{dst}\" must be a directory");
        }
        q.push_str(&format!("&path={}", enc(&dst_path)));
        let mut input = std::io::stdin();
        c.request(
            "PUT",
            &q,
            &[("Content-Type", "application/x-tar")],
            Some(&mut input),
        )?;
        return Ok(0);
    }
    // Docker's ResolveHostSourcePath: the parent's symlinks always, the last element with -L.
    let (resolved, rebase) = if a.follow_link {
        let r = std::fs::canonicalize(src).map_err(|e| anyhow::anyhow!("lstat {src}: {e}"))?;
        (r, Some(base(src)))
    } else {
        let parent =
            std::fs::canonicalize(dir(src)).map_err(|e| anyhow::anyhow!("lstat {src}: {e}"))?;
        let b = base(src);
        (if b == "." { parent } else { parent.join(&b) }, None)
    };
    let meta =
        std::fs::symlink_metadata(&resolved).map_err(|e| anyhow::anyhow!("lstat {src}: {e}"))?;
    let src_base = rebase.unwrap_or_else(|| base(src));
    let (into, name) = prepare(meta.is_dir(), src_base, &dst_path, st.is_some(), dst_is_dir)?;
    q.push_str(&format!("&path={}", enc(&into)));
    let (mut rd, mut wr) = std::io::pipe()?;
    let writer = std::thread::spawn(move || -> Result<(), berth_archive::ArchiveError> {
        let r = berth_archive::write_tree(&resolved, Path::new(&name), &mut wr);
        let _ = wr.flush();
        r
    });
    let sent = c.request(
        "PUT",
        &q,
        &[("Content-Type", "application/x-tar")],
        Some(&mut rd as &mut dyn Read),
    );
    drop(rd);
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("archiving {src} failed"))?;
    sent?;
    written?;
    done(a, &format!("{ctr}:{dst}"));
    Ok(0)
}

/// Docker's closing line, only on a terminal.
fn done(a: &CpArgs, to: &str) {
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied to {to}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_docker_splits_them() {
        assert_eq!(split("c:/tmp"), (Some("c"), "/tmp"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("/a:b"), (None, "/a:b"));
    }

    #[test]
    fn prepare_follows_moby() {
        let p = |d, b: &str, dst, e, isd| prepare(d, b.into(), dst, e, isd).ok();
        assert_eq!(
            p(false, "f", "/tmp", true, true),
            Some(("/tmp".into(), "f".into()))
        );
        assert_eq!(
            p(false, "f", "/tmp/g", false, false),
            Some(("/tmp".into(), "g".into()))
        );
        assert_eq!(p(true, "d", "/tmp/g", true, false), None);
        assert_eq!(p(false, "f", "/tmp/new/", false, false), None);
        assert_eq!(
            p(true, ".", "/tmp/n", false, false),
            Some(("/tmp".into(), "n".into()))
        );
    }
}
