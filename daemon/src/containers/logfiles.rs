//! The files of a container's json-file log as the monitor rotates them (`<id>-json.log`,
//! `.1`, `.2`...): listed oldest first, and, for a follower, the file written after the one
//! it has read to its end — found again by inode, as rotations may happen while it looks.

use std::path::PathBuf;

/// The files of the log at `path`, oldest first: the rotated `<log>.N` ... `<log>.1`, then
/// `<log>` itself (json-file rotation, `max-file`). `None` while a rotation is under way (the
/// monitor renames `.N-1` to `.N` down to `<log>` to `.1`, leaving one name missing at a
/// time).
fn log_files_now(path: &std::path::Path) -> Option<Vec<PathBuf>> {
    let rotated = |n: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    let mut files = Vec::new();
    let mut hole = false;
    for n in 1.. {
        let p = rotated(n);
        if p.exists() {
            if hole {
                return None;
            }
            files.push(p);
        } else if hole || !rotated(n + 1).exists() {
            break;
        } else {
            hole = true;
        }
    }
    if !path.exists() {
        return None;
    }
    files.reverse();
    files.push(path.to_path_buf());
    Some(files)
}

/// [`log_files_now`], waiting out a rotation under way (briefly; then the view as it is).
pub async fn log_files(path: &std::path::Path) -> Vec<PathBuf> {
    for _ in 0..50 {
        if let Some(f) = log_files_now(path) {
            return f;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| {
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        })
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    files
}

/// The inode of the file at `path` (to see the log rotated under a follower).
pub async fn inode(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    tokio::fs::metadata(path).await.ok().map(|m| m.ino())
}

/// The inodes of the log's files, in [`log_files`] order.
async fn inodes(files: &[PathBuf]) -> Vec<Option<u64>> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        out.push(inode(f).await);
    }
    out
}

/// The log file that follows the one with inode `ino` (opened, with its inode): the next in
/// [`log_files`] order, or the oldest left when ours has been rotated out altogether. The
/// monitor may rotate while we look: a view that changed under us is taken again.
pub async fn successor(
    path: &std::path::Path,
    ino: Option<u64>,
) -> Option<(tokio::fs::File, Option<u64>)> {
    for tries in 0..20 {
        let files = log_files(path).await;
        let seen = inodes(&files).await;
        let next = match seen.iter().position(|i| i.is_some() && *i == ino) {
            Some(k) if k + 1 < files.len() => k + 1,
            Some(_) => return None,
            // Ours is gone (rotated out, or mid-rename: look again first).
            None if tries < 19 => {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                continue;
            }
            None => 0,
        };
        let Ok(f) = tokio::fs::File::open(&files[next]).await else {
            continue;
        };
        let got = f.metadata().await.ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino()
        });
        if got == seen[next] && log_files(path).await == files && inodes(&files).await == seen {
            return Some((f, got));
        }
    }
    None
}
