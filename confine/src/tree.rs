//! Copying a tree from one root into another (build `COPY`/`ADD`, `COPY --from`, seeding a
//! volume from the image): the source is walked through descriptors and never followed
//! below its top, the destination is written through [`Root`] operations, so neither side's
//! symlinks lead out of its root.

use crate::ops::{fstat, list_dir, FileKind, Stat};
use crate::resolve::openat;
use crate::{ConfineError, Follow, Root};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// An owner to give every copied file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// How [`Root::copy_in`] copies.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Give every copied file this owner instead of the source's.
    pub owner: Option<Owner>,
    /// Follow the source path's last component when it is a symlink (inside the source root).
    pub follow_top: bool,
}

impl Root {
    /// Copies what `src_rel` names in `src` to `dst_rel` in this root: a folder's contents
    /// are merged into the folder `dst_rel` (made if missing), anything else becomes
    /// `dst_rel` (replacing a non-folder there). Modes, owners (or `opts.owner`), times and
    /// symlinks (as symlinks) are kept; device nodes and fifos are made again.
    pub fn copy_in(
        &self,
        dst_rel: impl AsRef<Path>,
        src: &Root,
        src_rel: impl AsRef<Path>,
        opts: &CopyOptions,
    ) -> Result<(), ConfineError> {
        let (dst_rel, src_rel) = (dst_rel.as_ref(), src_rel.as_ref());
        let follow = if opts.follow_top {
            Follow::Yes
        } else {
            Follow::No
        };
        let fd = src.resolve(src_rel, follow)?;
        let st =
            fstat(fd.as_fd()).map_err(|e| ConfineError::io("stat", src.display(src_rel), e))?;
        let mut c = Copier {
            dst: self,
            src,
            opts,
        };
        c.run(fd, &st, src_rel, dst_rel)
    }
}

struct Copier<'a> {
    dst: &'a Root,
    src: &'a Root,
    opts: &'a CopyOptions,
}

/// A source folder being copied: its entries left, where it is on both sides, and its own
/// metadata (applied once its contents are in, so its times stay the source's). The copy
/// keeps these on a heap stack: an image can nest folders thousands deep, and a recursive
/// walk would overflow the calling thread's stack.
struct Frame {
    dir: OwnedFd,
    names: std::vec::IntoIter<std::ffi::OsString>,
    src_rel: PathBuf,
    dst_rel: PathBuf,
    st: Stat,
}

impl Copier<'_> {
    fn src_err(&self, op: &'static str, rel: &Path) -> impl FnOnce(io::Error) -> ConfineError {
        let p = self.src.display(rel);
        move |e| ConfineError::io(op, p, e)
    }

    /// Copies the entry held by `fd` and, for a folder, everything below it.
    fn run(
        &mut self,
        fd: OwnedFd,
        st: &Stat,
        src_rel: &Path,
        dst_rel: &Path,
    ) -> Result<(), ConfineError> {
        let mut stack: Vec<Frame> = Vec::new();
        if let Some(f) = self.entry(fd, st, src_rel, dst_rel, true)? {
            stack.push(f);
        }
        while let Some(f) = stack.last_mut() {
            let Some(name) = f.names.next() else {
                if let Some(done) = stack.pop() {
                    self.meta(&done.st, &done.dst_rel)?;
                }
                continue;
            };
            let s_rel = f.src_rel.join(&name);
            let d_rel = f.dst_rel.join(&name);
            let child = openat(f.dir.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                .map_err(self.src_err("opening", &s_rel))?;
            let st = fstat(child.as_fd()).map_err(self.src_err("stat", &s_rel))?;
            if let Some(sub) = self.entry(child, &st, &s_rel, &d_rel, false)? {
                stack.push(sub);
            }
        }
        Ok(())
    }

    /// Copies one entry (held by the `O_PATH | O_NOFOLLOW` descriptor `fd`); `top` for the
    /// first, whose missing parents are made (below it the parent was just copied). A folder
    /// is made and returned to be walked; its metadata waits for its contents.
    fn entry(
        &mut self,
        fd: OwnedFd,
        st: &Stat,
        src_rel: &Path,
        dst_rel: &Path,
        top: bool,
    ) -> Result<Option<Frame>, ConfineError> {
        let existing = self.dst.lstat(dst_rel)?;
        match (st.kind, existing.map(|e| e.kind)) {
            (FileKind::Dir, Some(FileKind::Dir)) => {}
            (FileKind::Dir, Some(_)) => {
                self.dst.remove(dst_rel)?;
                self.dst.mkdir(dst_rel, st.mode)?;
            }
            (FileKind::Dir, None) if top => {
                self.dst.mkdir_all(dst_rel, 0o755)?;
            }
            (FileKind::Dir, None) => self.dst.mkdir(dst_rel, st.mode)?,
            (_, Some(FileKind::Dir)) => self.dst.remove_all(dst_rel)?,
            (_, Some(_)) => self.dst.remove(dst_rel)?,
            (_, None) => {}
        }
        match st.kind {
            FileKind::Dir => {
                let dir = crate::resolve::reopen(fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(self.src_err("opening folder", src_rel))?;
                let names = list_dir(dir.try_clone().map_err(self.src_err("dup", src_rel))?)
                    .map_err(self.src_err("reading folder", src_rel))?;
                return Ok(Some(Frame {
                    dir,
                    names: names.into_iter(),
                    src_rel: src_rel.to_path_buf(),
                    dst_rel: dst_rel.to_path_buf(),
                    st: *st,
                }));
            }
            FileKind::File => self.file(fd.as_fd(), st, src_rel, dst_rel)?,
            FileKind::Symlink => {
                let target = crate::resolve::readlink_fd(fd.as_fd())
                    .map_err(self.src_err("readlink", src_rel))?;
                self.dst.symlink(Path::new(&target), dst_rel)?;
            }
            FileKind::Socket => return Ok(None),
            kind => self.dst.mknod(dst_rel, kind, st.mode, st.rdev)?,
        }
        self.meta(st, dst_rel)?;
        Ok(None)
    }

    fn file(
        &mut self,
        fd: BorrowedFd<'_>,
        st: &Stat,
        src_rel: &Path,
        dst_rel: &Path,
    ) -> Result<(), ConfineError> {
        let mut from = File::from(
            crate::resolve::reopen(fd, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)
                .map_err(self.src_err("opening", src_rel))?,
        );
        let now = fstat(from.as_fd()).map_err(self.src_err("stat", src_rel))?;
        if now.kind != FileKind::File {
            return Err(ConfineError::NotRegular {
                path: self.src.display(src_rel),
            });
        }
        let mut to = self.dst.create_new(dst_rel, st.mode & 0o777)?;
        io::copy(&mut from, &mut to)
            .map_err(|e| ConfineError::io("copying", self.dst.display(dst_rel), e))?;
        Ok(())
    }

    fn meta(&self, st: &Stat, dst_rel: &Path) -> Result<(), ConfineError> {
        let (uid, gid) = match self.opts.owner {
            Some(o) => (o.uid, o.gid),
            None => (st.uid, st.gid),
        };
        self.dst.chown(dst_rel, uid, gid)?;
        if st.kind != FileKind::Symlink {
            self.dst.chmod(dst_rel, st.mode)?;
        }
        self.dst.set_times(dst_rel, st.mtime, st.mtime_nsec)
    }
}
