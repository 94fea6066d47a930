//! Reading a tree through descriptors ([`Dir`]): each folder is opened
//! `O_DIRECTORY | O_NOFOLLOW` relative to its parent's descriptor, entries are looked at with
//! `fstatat(AT_SYMLINK_NOFOLLOW)`, files opened `O_NOFOLLOW` and checked to be the regular
//! file that was listed. A walk that starts inside a root therefore cannot be redirected out
//! of it by a folder swapped for a symlink while it runs (`docker cp` out, export, diff).

use crate::ops::{fstat, list_dir, FileKind, Stat};
use crate::resolve::{self, openat, readlinkat};
use crate::{ConfineError, Follow, Root};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// An open folder of a tree being read.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl Dir {
    /// Opens the trusted host folder `path` (berth's own: a layer's folder, a mount point).
    pub fn open_host(path: &Path) -> io::Result<Dir> {
        let fd = crate::ops::open_host_dir(path)?;
        let fd = resolve::reopen(fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)?;
        Ok(Dir { fd })
    }

    /// Another descriptor of the same folder.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// The names in the folder (without `.` and `..`), sorted.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let mut v = list_dir(self.fd.try_clone()?)?;
        v.sort();
        Ok(v)
    }

    /// `lstat` of the entry `name`; `None` when it does not exist.
    pub fn lstat(&self, name: &OsStr) -> io::Result<Option<Stat>> {
        match openat(self.fd.as_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
            Ok(fd) => fstat(fd.as_fd()).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stat of the folder itself.
    pub fn stat(&self) -> io::Result<Stat> {
        fstat(self.fd.as_fd())
    }

    /// Opens the sub-folder `name`, never through a symlink.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        let fd = openat(
            self.fd.as_fd(),
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
        Ok(Dir { fd })
    }

    /// Opens the regular file `name` for reading, never through a symlink, never a fifo or
    /// device (fails with `EINVAL` when `name` is not a regular file any more).
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let fd = openat(
            self.fd.as_fd(),
            name,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
            0,
        )?;
        if fstat(fd.as_fd())?.kind != FileKind::File {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(File::from(fd))
    }

    /// The target of the symlink `name`.
    pub fn read_link(&self, name: &OsStr) -> io::Result<PathBuf> {
        readlinkat(self.fd.as_fd(), name).map(PathBuf::from)
    }

    /// Extended attribute names of the entry `name` (not followed).
    pub fn xattrs(&self, name: &OsStr) -> io::Result<Vec<String>> {
        crate::xattr::list_at(self.fd.as_fd(), name)
    }

    /// The extended attribute `key` of the entry `name` (not followed); `None` when absent.
    pub fn xattr(&self, name: &OsStr, key: &str) -> io::Result<Option<Vec<u8>>> {
        crate::xattr::get_at(self.fd.as_fd(), name, key)
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Dir {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl Root {
    /// The folder holding `rel`'s last component (resolved inside the root) as a [`Dir`],
    /// and that name; `None` as the name when `rel` is the root itself (then the [`Dir`] is
    /// the root).
    pub fn open_parent(
        &self,
        rel: impl AsRef<Path>,
    ) -> Result<(Dir, Option<OsString>), ConfineError> {
        let rel = rel.as_ref();
        let (parent, name) = resolve::split(rel);
        let fd = resolve::open_in(
            self.as_fd(),
            parent,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            Follow::Yes,
        )
        .map_err(|e| ConfineError::io("opening folder", self.display(parent), e))?;
        Ok((Dir { fd }, name))
    }

    /// Opens the regular file `rel` for reading without following any symlink on the way:
    /// every folder is opened `O_NOFOLLOW` from its parent's descriptor and the file itself
    /// with [`Dir::open_file`], so a symlink anywhere in `rel` (or a `..`) is an error rather
    /// than a detour (reading back file bodies of an unpacked layer).
    pub fn open_regular_nofollow(&self, rel: impl AsRef<Path>) -> Result<File, ConfineError> {
        let rel = rel.as_ref();
        let fail = |e| ConfineError::io("opening", self.display(rel), e);
        let mut names = Vec::new();
        for c in rel.components() {
            match c {
                std::path::Component::Normal(n) => names.push(n),
                std::path::Component::CurDir | std::path::Component::RootDir => {}
                _ => {
                    return Err(ConfineError::InvalidPath {
                        path: self.display(rel),
                    })
                }
            }
        }
        let Some((last, dirs)) = names.split_last() else {
            return Err(ConfineError::InvalidPath {
                path: self.display(rel),
            });
        };
        let mut dir = self.open_top()?;
        for d in dirs {
            dir = dir.open_dir(d).map_err(fail)?;
        }
        dir.open_file(last).map_err(fail)
    }

    /// The root's own folder as a [`Dir`].
    pub fn open_top(&self) -> Result<Dir, ConfineError> {
        let fd = resolve::reopen(self.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| ConfineError::io("opening folder", self.path(), e))?;
        Ok(Dir { fd })
    }
}
