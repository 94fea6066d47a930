//! The operations on a [`Root`]: each resolves its path inside the root and acts on the last
//! component through a descriptor of its parent folder (`*at` system calls), so no host path
//! is ever built from what the tree's owner chose.

use crate::resolve::{self, cstr, openat, split};
use crate::{ConfineError, Follow, Root};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The type of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

/// What `stat` says of a file.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub kind: FileKind,
    /// Permission bits with setuid/setgid/sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
}

fn kind_of(mode: libc::mode_t) -> FileKind {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        libc::S_IFCHR => FileKind::Char,
        libc::S_IFBLK => FileKind::Block,
        libc::S_IFIFO => FileKind::Fifo,
        libc::S_IFSOCK => FileKind::Socket,
        _ => FileKind::File,
    }
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        kind: kind_of(st.st_mode),
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        rdev: st.st_rdev,
        mtime: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec,
        ino: st.st_ino,
        dev: st.st_dev,
        nlink: st.st_nlink,
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `fstatat(fd, "", AT_EMPTY_PATH)`: the file a descriptor holds (an `O_PATH` one too).
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    fstatat(
        fd,
        OsStr::new(""),
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
    )
}

fn fstatat(dir: BorrowedFd<'_>, name: &OsStr, flags: libc::c_int) -> io::Result<Stat> {
    let c = cstr(name)?;
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated, `st` is writable, `dir` is open.
    check(unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, flags) })?;
    Ok(stat_of(&st))
}

/// Opens a trusted host folder as an `O_PATH` descriptor.
pub(crate) fn open_host_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: `c` is NUL-terminated and alive for the call.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Mode bits for a new file made with a given `umask`-free mode.
fn with_type(kind: FileKind, perm: u32) -> libc::mode_t {
    let t = match kind {
        FileKind::Char => libc::S_IFCHR,
        FileKind::Block => libc::S_IFBLK,
        FileKind::Fifo => libc::S_IFIFO,
        FileKind::Socket => libc::S_IFSOCK,
        FileKind::Dir => libc::S_IFDIR,
        FileKind::Symlink => libc::S_IFLNK,
        FileKind::File => libc::S_IFREG,
    };
    t | (perm & 0o7777)
}

impl Root {
    /// The folder holding `rel`'s last component (resolved inside the root, symlinks
    /// followed) and that component's name.
    pub fn parent(&self, rel: impl AsRef<Path>) -> Result<(OwnedFd, OsString), ConfineError> {
        let rel = rel.as_ref();
        let (dir, name) = split(rel);
        let Some(name) = name else {
            return Err(ConfineError::InvalidPath {
                path: self.display(rel),
            });
        };
        let fd = self.resolve(dir, Follow::Yes)?;
        Ok((fd, name))
    }

    /// Opens `rel` with `open(2)` flags (`libc::O_RDONLY`, `O_WRONLY | O_CREAT | O_TRUNC`...).
    pub fn open_file(
        &self,
        rel: impl AsRef<Path>,
        flags: libc::c_int,
        mode: u32,
        follow: Follow,
    ) -> Result<File, ConfineError> {
        let rel = rel.as_ref();
        resolve::open_in(self.as_fd(), rel, flags, mode as libc::mode_t, follow)
            .map(File::from)
            .map_err(|e| ConfineError::io("opening", self.display(rel), e))
    }

    /// Creates the regular file `rel` (which must not exist; a symlink there is not
    /// followed) with `mode`, open for writing.
    pub fn create_new(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File, ConfineError> {
        self.open_file(
            rel,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            mode,
            Follow::No,
        )
    }

    /// Opens the regular file `rel` for writing, created if missing and truncated, never
    /// through a symlink at its last component.
    pub fn create(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File, ConfineError> {
        self.open_file(
            rel,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            mode,
            Follow::No,
        )
    }

    /// `lstat` of `rel` (the last component not followed); `None` when it does not exist.
    pub fn lstat(&self, rel: impl AsRef<Path>) -> Result<Option<Stat>, ConfineError> {
        self.stat_as(rel.as_ref(), Follow::No)
    }

    /// `stat` of `rel` (symlinks followed inside the root); `None` when it does not exist.
    pub fn stat(&self, rel: impl AsRef<Path>) -> Result<Option<Stat>, ConfineError> {
        self.stat_as(rel.as_ref(), Follow::Yes)
    }

    fn stat_as(&self, rel: &Path, follow: Follow) -> Result<Option<Stat>, ConfineError> {
        match self.resolve(rel, follow) {
            Ok(fd) => fstat(fd.as_fd())
                .map(Some)
                .map_err(|e| ConfineError::io("stat", self.display(rel), e)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes the folder `rel` (its parent must exist); an existing folder is fine.
    pub fn mkdir(&self, rel: impl AsRef<Path>, mode: u32) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        let c = cstr(&name).map_err(|e| ConfineError::io("mkdir", self.display(rel), e))?;
        // SAFETY: `c` is NUL-terminated; `dir` is an open descriptor.
        let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) };
        match check(rc) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                match fstatat(dir.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if st.kind == FileKind::Dir => Ok(()),
                    _ => Err(ConfineError::io("mkdir", self.display(rel), e)),
                }
            }
            other => other.map_err(|e| ConfineError::io("mkdir", self.display(rel), e)),
        }
    }

    /// Makes the folder `rel` and every missing folder above it, each inside the root
    /// (symlinks on the way followed inside it), and returns an `O_PATH` descriptor of it.
    pub fn mkdir_all(&self, rel: impl AsRef<Path>, mode: u32) -> Result<OwnedFd, ConfineError> {
        let mut rel = rel.as_ref().to_path_buf();
        let mut hops = 0;
        'again: loop {
            let mut prefix = PathBuf::new();
            let comps: Vec<_> = rel.components().collect();
            for (i, c) in comps.iter().enumerate() {
                prefix.push(c);
                match self.resolve(&prefix, Follow::Yes) {
                    Ok(fd) => {
                        let st = fstat(fd.as_fd())
                            .map_err(|e| ConfineError::io("stat", self.display(&prefix), e))?;
                        if st.kind != FileKind::Dir {
                            return Err(ConfineError::NotADirectory {
                                path: self.display(&prefix),
                            });
                        }
                    }
                    Err(e) if e.is_not_found() => {
                        // A dangling symlink: make what it points at (inside the root).
                        if let Some(st) = self.lstat(&prefix)? {
                            if st.kind == FileKind::Symlink && hops < 40 {
                                hops += 1;
                                let target = self.read_link(&prefix)?;
                                let mut next = if target.has_root() {
                                    target
                                } else {
                                    prefix.parent().unwrap_or(Path::new("")).join(target)
                                };
                                for c in &comps[i + 1..] {
                                    next.push(c);
                                }
                                rel = next;
                                continue 'again;
                            }
                        }
                        self.mkdir(&prefix, mode)?
                    }
                    Err(e) => return Err(e),
                }
            }
            return self.resolve(&rel, Follow::Yes);
        }
    }

    /// Makes the symlink `rel` pointing at `target` (stored as given: it is only ever
    /// followed inside a root).
    pub fn symlink(
        &self,
        target: impl AsRef<Path>,
        rel: impl AsRef<Path>,
    ) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        let err = |e| ConfineError::io("symlink", self.display(rel), e);
        let t = cstr(target.as_ref().as_os_str()).map_err(err)?;
        let c = cstr(&name).map_err(err)?;
        // SAFETY: both strings are NUL-terminated; `dir` is open.
        check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) }).map_err(err)
    }

    /// Makes a device node, fifo or socket node at `rel`.
    pub fn mknod(
        &self,
        rel: impl AsRef<Path>,
        kind: FileKind,
        perm: u32,
        rdev: u64,
    ) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        let err = |e| ConfineError::io("mknod", self.display(rel), e);
        let c = cstr(&name).map_err(err)?;
        // SAFETY: `c` is NUL-terminated; `dir` is open; mode and dev are plain integers.
        check(unsafe {
            libc::mknodat(
                dir.as_raw_fd(),
                c.as_ptr(),
                with_type(kind, perm),
                rdev as libc::dev_t,
            )
        })
        .map_err(err)
    }

    /// Makes `rel` a hard link to `existing` (both inside the root; neither followed).
    pub fn hard_link(
        &self,
        existing: impl AsRef<Path>,
        rel: impl AsRef<Path>,
    ) -> Result<(), ConfineError> {
        let (existing, rel) = (existing.as_ref(), rel.as_ref());
        let (sdir, sname) = self.parent(existing)?;
        let (ddir, dname) = self.parent(rel)?;
        let err = |e| ConfineError::io("link", self.display(rel), e);
        let s = cstr(&sname).map_err(err)?;
        let d = cstr(&dname).map_err(err)?;
        // SAFETY: NUL-terminated names; open descriptors; flags 0 = do not follow.
        check(unsafe {
            libc::linkat(
                sdir.as_raw_fd(),
                s.as_ptr(),
                ddir.as_raw_fd(),
                d.as_ptr(),
                0,
            )
        })
        .map_err(err)
    }

    /// `lchown`: the owner of `rel` itself (a symlink is not followed).
    pub fn chown(&self, rel: impl AsRef<Path>, uid: u32, gid: u32) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let fd = self.resolve(rel, Follow::No)?;
        let empty = c"";
        // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH acts on `fd` itself.
        check(unsafe {
            libc::fchownat(
                fd.as_raw_fd(),
                empty.as_ptr(),
                uid,
                gid,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map_err(|e| ConfineError::io("chown", self.display(rel), e))
    }

    /// The permission bits of `rel` (a symlink is left alone: its mode means nothing).
    pub fn chmod(&self, rel: impl AsRef<Path>, mode: u32) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let fd = self.resolve(rel, Follow::No)?;
        chmod_fd(fd.as_fd(), mode).map_err(|e| ConfineError::io("chmod", self.display(rel), e))
    }

    /// Access and modification times of `rel` itself (seconds, nanoseconds).
    pub fn set_times(
        &self,
        rel: impl AsRef<Path>,
        sec: i64,
        nsec: i64,
    ) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let (dir, name) = match self.parent(rel) {
            Ok(x) => x,
            // The root itself.
            Err(ConfineError::InvalidPath { .. }) => {
                (self.resolve(rel, Follow::Yes)?, OsString::new())
            }
            Err(e) => return Err(e),
        };
        let err = |e| ConfineError::io("utimes", self.display(rel), e);
        let c = cstr(&name).map_err(err)?;
        let t = libc::timespec {
            tv_sec: sec as libc::time_t,
            tv_nsec: nsec as _,
        };
        let times = [t, t];
        let flags = if name.is_empty() {
            libc::AT_EMPTY_PATH
        } else {
            libc::AT_SYMLINK_NOFOLLOW
        };
        // SAFETY: NUL-terminated name, open descriptor, a two-element timespec array.
        check(unsafe { libc::utimensat(dir.as_raw_fd(), c.as_ptr(), times.as_ptr(), flags) })
            .map_err(err)
    }

    /// Renames `from` to `to`, both inside the root (neither last component followed).
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<(), ConfineError> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        let err = |e| ConfineError::io("rename", self.display(to), e);
        let f = cstr(&fname).map_err(err)?;
        let t = cstr(&tname).map_err(err)?;
        // SAFETY: NUL-terminated names and open descriptors.
        check(unsafe { libc::renameat(fdir.as_raw_fd(), f.as_ptr(), tdir.as_raw_fd(), t.as_ptr()) })
            .map_err(err)
    }

    /// Removes the file, symlink or empty folder `rel`; a missing one is fine.
    pub fn remove(&self, rel: impl AsRef<Path>) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        unlink_in(dir.as_fd(), &name)
            .map_err(|e| ConfineError::io("removing", self.display(rel), e))
    }

    /// Removes `rel` and everything below it (symlinks removed, never followed); a missing
    /// one is fine.
    pub fn remove_all(&self, rel: impl AsRef<Path>) -> Result<(), ConfineError> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        remove_tree_in(dir.as_fd(), &name)
            .map_err(|e| ConfineError::io("removing", self.display(rel), e))
    }

    /// The target of the symlink `rel`.
    pub fn read_link(&self, rel: impl AsRef<Path>) -> Result<PathBuf, ConfineError> {
        let rel = rel.as_ref();
        let fd = self.resolve(rel, Follow::No)?;
        resolve::readlink_fd(fd.as_fd())
            .map(PathBuf::from)
            .map_err(|e| ConfineError::io("readlink", self.display(rel), e))
    }

    /// Reads the regular file `rel` whole (symlinks followed inside the root), refusing
    /// anything that is not a regular file (a fifo would block, `/dev/zero` never ends) and
    /// anything larger than `limit` bytes.
    pub fn read_regular(&self, rel: impl AsRef<Path>, limit: u64) -> Result<Vec<u8>, ConfineError> {
        let rel = rel.as_ref();
        let fd = self.resolve(rel, Follow::Yes)?;
        let st = fstat(fd.as_fd()).map_err(|e| ConfineError::io("stat", self.display(rel), e))?;
        if st.kind != FileKind::File {
            return Err(ConfineError::NotRegular {
                path: self.display(rel),
            });
        }
        if st.size > limit {
            return Err(ConfineError::TooLarge {
                path: self.display(rel),
                limit,
            });
        }
        let f = open_regular(fd.as_fd())
            .map_err(|e| ConfineError::io("opening", self.display(rel), e))?;
        let mut buf = Vec::with_capacity(st.size as usize);
        f.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ConfineError::io("reading", self.display(rel), e))?;
        if buf.len() as u64 > limit {
            return Err(ConfineError::TooLarge {
                path: self.display(rel),
                limit,
            });
        }
        Ok(buf)
    }

    /// The names in the folder `rel` (symlinks on the way followed inside the root; the
    /// folder itself must be a folder), without `.` and `..`.
    pub fn read_dir(&self, rel: impl AsRef<Path>) -> Result<Vec<OsString>, ConfineError> {
        let rel = rel.as_ref();
        let fd = resolve::open_in(
            self.as_fd(),
            rel,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            Follow::Yes,
        )
        .map_err(|e| ConfineError::io("opening folder", self.display(rel), e))?;
        list_dir(fd).map_err(|e| ConfineError::io("reading folder", self.display(rel), e))
    }
}

/// Opens the regular file an `O_PATH` descriptor holds for reading, checking again that
/// it is one.
fn open_regular(fd: BorrowedFd<'_>) -> io::Result<File> {
    let f = File::from(resolve::reopen(
        fd,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
    )?);
    if fstat(f.as_fd())?.kind != FileKind::File {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(f)
}

/// `fchmod` of an `O_PATH` descriptor (through `/proc/self/fd`); symlinks skipped.
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    if fstat(fd)?.kind == FileKind::Symlink {
        return Ok(());
    }
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let c = cstr(OsStr::new(&p))?;
    // SAFETY: NUL-terminated path alive for the call.
    check(unsafe { libc::chmod(c.as_ptr(), (mode & 0o7777) as libc::mode_t) })
}

/// The entries of an open folder, without `.` and `..`.
pub(crate) fn list_dir(fd: OwnedFd) -> io::Result<Vec<OsString>> {
    // Reading through /proc/self/fd/N opens the very folder the descriptor holds.
    let p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let mut out = Vec::new();
    for e in std::fs::read_dir(&p)? {
        out.push(e?.file_name());
    }
    drop(fd);
    Ok(out)
}

fn unlink_in(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = cstr(name)?;
    let st = match fstatat(dir, name, libc::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let flags = if st.kind == FileKind::Dir {
        libc::AT_REMOVEDIR
    } else {
        0
    };
    // SAFETY: NUL-terminated name; open descriptor.
    match check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) }) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_tree_in(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    /// A folder being emptied: its descriptor, the names left to remove, and its own name in
    /// the folder below it on the stack (or in `dir` for the first). The walk keeps these on
    /// a heap stack: a container can nest folders thousands deep, and a recursive walk would
    /// overflow the calling thread's stack.
    struct Frame {
        fd: OwnedFd,
        names: Vec<OsString>,
        name: OsString,
    }
    let open_frame = |parent: BorrowedFd<'_>, name: &OsStr| -> io::Result<Frame> {
        let fd = openat(
            parent,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
        let names = list_dir(fd.try_clone()?)?;
        Ok(Frame {
            fd,
            names,
            name: name.to_owned(),
        })
    };
    match fstatat(dir, name, libc::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.kind == FileKind::Dir => {}
        Ok(_) => return unlink_in(dir, name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let mut stack = vec![open_frame(dir, name)?];
    while let Some(top) = stack.last_mut() {
        let Some(n) = top.names.pop() else {
            let Some(done) = stack.pop() else { break };
            let parent = stack.last().map(|f| f.fd.as_fd()).unwrap_or(dir);
            unlink_in(parent, &done.name)?;
            continue;
        };
        match fstatat(top.fd.as_fd(), &n, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.kind == FileKind::Dir => {
                let frame = open_frame(top.fd.as_fd(), &n)?;
                stack.push(frame);
            }
            Ok(_) => unlink_in(top.fd.as_fd(), &n)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether a name is one a folder entry can have (no `/`, not empty, not `.` or `..`).
pub fn is_plain_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/')
}
