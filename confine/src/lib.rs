//! berth-confine: the one layer that resolves paths a hostile party controls.
//!
//! Images, build contexts, `COPY --from` images, volumes and running containers are trees
//! whose symlinks and `..` components someone else chose. Every path berthd, the monitor or
//! the container init resolves inside such a tree goes through a [`Root`]: a directory
//! descriptor of the tree's top, and the operations berth needs (open, create, mkdir -p,
//! mknod, symlink, stat, chown, chmod, rename, remove, read a capped regular file, copy a
//! tree), each resolving its path *inside* the root and acting on the last component through
//! a descriptor of its parent folder, never by a host path built with `root.join(untrusted)`.
//!
//! Resolution uses `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` (Linux ≥ 5.6): symlinks
//! and `..` are followed as the container would see them, clamped at the root, and
//! `/proc/PID/fd`-style magic links are refused. On older kernels an `O_PATH | O_NOFOLLOW`
//! walk does the same in user space ([`resolve`]). Either way the result cannot name a file
//! outside the root, even while the tree's owner swaps folders for symlinks concurrently
//! (the `docker cp` race, CVE-2018-15664): each step is taken from a descriptor, not re-read
//! from a path.

mod dir;
mod error;
mod ops;
pub mod resolve;
mod scoped;
mod tree;
mod xattr;
pub use dir::Dir;
pub use ops::is_plain_name;

pub use error::ConfineError;
pub use ops::{FileKind, Stat};
pub use tree::{CopyOptions, Owner};

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Whether the last component of a path is followed when it is a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Follow it (inside the root), as `open(2)` does.
    Yes,
    /// Act on the symlink itself, as `lstat(2)` does.
    No,
}

/// A tree that someone else controls, held open by a descriptor of its top folder.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens the trusted host folder `path` as a root. `path` itself is berth's (a data-root
    /// folder, a mount point, `/proc/PID/root`), so it is followed as given; everything below
    /// it is resolved inside it.
    pub fn open(path: impl AsRef<Path>) -> Result<Root, ConfineError> {
        let path = path.as_ref();
        let fd = ops::open_host_dir(path).map_err(|e| ConfineError::io("opening root", path, e))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// A root from a descriptor of its top folder; `label` names it in error messages.
    pub fn from_fd(fd: OwnedFd, label: impl Into<PathBuf>) -> Root {
        Root {
            fd,
            path: label.into(),
        }
    }

    /// The host path the root was opened at (for messages and for handing to other tools
    /// that do their own confinement, such as the kernel's mount code through [`proc_path`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How `rel` is named in messages: the root's path with `rel` appended (text only; never
    /// opened).
    pub fn display(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        self.path.join(rel)
    }

    /// Resolves `rel` inside the root and returns an `O_PATH` descriptor of what it names.
    pub fn resolve(&self, rel: impl AsRef<Path>, follow: Follow) -> Result<OwnedFd, ConfineError> {
        let rel = rel.as_ref();
        resolve::resolve(self.fd.as_fd(), rel, follow)
            .map_err(|e| ConfineError::io("resolving", self.display(rel), e))
    }

    /// A new root at the folder `rel` names inside this one (symlinks followed inside this
    /// root). Paths resolved in the new root are clamped at it.
    pub fn sub(&self, rel: impl AsRef<Path>) -> Result<Root, ConfineError> {
        let rel = rel.as_ref();
        let fd = self.resolve(rel, Follow::Yes)?;
        let st =
            ops::fstat(fd.as_fd()).map_err(|e| ConfineError::io("stat", self.display(rel), e))?;
        if st.kind != FileKind::Dir {
            return Err(ConfineError::NotADirectory {
                path: self.display(rel),
            });
        }
        Ok(Root {
            fd,
            path: self.display(rel),
        })
    }

    /// Another descriptor of the same root.
    pub fn try_clone(&self) -> Result<Root, ConfineError> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| ConfineError::io("duplicating root", &self.path, e))?;
        Ok(Root {
            fd,
            path: self.path.clone(),
        })
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `/proc/self/fd/N` for a descriptor: how a descriptor is handed to calls that take only a
/// path (`mount(2)`'s target, `chmod` of an `O_PATH` descriptor). The kernel resolves it to
/// the very file the descriptor holds, whatever happened to the path since.
pub fn proc_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}
