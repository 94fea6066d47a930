//! A pod sandbox's namespaces, held without any process: a short-lived thread unshares new
//! network, IPC and UTS namespaces (only itself: berthd's other threads never change
//! namespace), sets the pod's hostname, brings loopback up, and bind-mounts each
//! `/proc/thread-self/ns/<kind>` onto a file in the pod's run-time folder — the namespaces live
//! as long as those mounts, which containers join by path (`setns`). What a pod shares with
//! the host (`hostNetwork`, `hostIPC`) is simply not pinned. Releasing detaches the mounts
//! (also that of the PID namespace of the pod's init, [`super::pod_init`]).

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::io;
use std::path::{Path, PathBuf};

/// The namespace kinds a pod holds, with their clone flag.
const KINDS: [(&str, CloneFlags); 3] = [
    ("net", CloneFlags::CLONE_NEWNET),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
];

/// Which of the pod's namespaces are its own.
#[derive(Debug, Clone, Copy)]
pub struct Own {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

impl Own {
    fn has(&self, kind: &str) -> bool {
        match kind {
            "net" => self.net,
            "ipc" => self.ipc,
            _ => self.uts,
        }
    }
}

/// The file namespace `kind` of the pod whose folder is `dir` is pinned to.
pub fn path(dir: &Path, kind: &str) -> PathBuf {
    dir.join(kind)
}

/// Whether the pod's namespace `kind` is pinned (its file is a namespace, not the empty file
/// under it).
pub fn pinned(dir: &Path, kind: &str) -> bool {
    nix::sys::statfs::statfs(&path(dir, kind))
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// Makes and pins the namespaces `own` asks for in `dir` (made if missing).
pub fn pin(dir: &Path, own: Own, hostname: &str) -> io::Result<()> {
    crate::modes::private_dir_all(dir)?;
    let mut flags = CloneFlags::empty();
    for (kind, f) in KINDS {
        if own.has(kind) {
            flags |= f;
        }
    }
    if flags.is_empty() {
        return Ok(());
    }
    let dir = dir.to_path_buf();
    let hostname = hostname.to_string();
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(flags).map_err(io::Error::from)?;
            if own.uts && !hostname.is_empty() {
                nix::unistd::sethostname(&hostname).map_err(io::Error::from)?;
            }
            if own.net {
                berth_core::netns::loopback_up()?;
            }
            for (kind, _) in KINDS.iter().filter(|(k, _)| own.has(k)) {
                let target = path(&dir, kind);
                std::fs::File::create(&target)?;
                let source = PathBuf::from(format!("/proc/thread-self/ns/{kind}"));
                mount(
                    Some(&source),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(io::Error::from)?;
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace worker panicked")))
    });
    if made.is_err() {
        release(&dir);
    }
    made
}

/// Detaches the pinned namespaces in `dir` (the PID namespace of the pod's init too) and
/// removes their files (idempotent).
pub fn release(dir: &Path) {
    let kinds = KINDS.iter().map(|(k, _)| *k);
    for kind in kinds.chain([super::pod_init::KIND]) {
        let p = path(dir, kind);
        while pinned(dir, kind) {
            if umount2(&p, MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
        let _ = std::fs::remove_file(&p);
    }
}
