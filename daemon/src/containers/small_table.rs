//! Spawning container monitors from a thread with a file table of its own.
//!
//! A spawn copies the spawning thread's file table into the child, and the exec then closes
//! every close-on-exec file of the copy: ~0.7 µs per open file. berthd holds a socket per
//! running container's monitor, so at 1,000 running each monitor spawn cost ~0.7 ms of CPU
//! more than at none — once per `run`. So monitors are spawned by one thread that unshared
//! its file table at berthd's start (`unshare(CLONE_FILES)`) and closed in it everything but
//! the standard streams, the sealed monitor binary and its end of a socket pair: its table
//! stays a handful of files however many containers run. The two ends of a monitor's pipes
//! that it must get reach it over that socket pair (SCM_RIGHTS), and the thread answers once
//! the spawned process has exited (it leaves as soon as the monitor has detached).
//!
//! One request at a time: a message is the flag byte 1 if a stdin descriptor follows the
//! stdout one (0 if not), then the arguments, each ended by a NUL byte; the answer is the
//! byte 0 on success, otherwise the byte 1 and the error's text.

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::ffi::{OsStr, OsString};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Longest request: the monitor's arguments are a state folder's path and two flags.
const MAX_REQUEST: usize = 16 * 1024;

/// berthd's end of the spawning thread's socket pair.
pub struct SmallTable {
    sock: Mutex<OwnedFd>,
    /// The thread stopped answering: spawns go through the caller's table from then on.
    gone: AtomicBool,
}

/// Why a spawn through the thread did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The thread is not there to ask (the caller spawns from its own table instead).
    #[error("monitor spawner: the thread is gone: {0}")]
    Gone(String),
    /// The thread tried and the spawn failed.
    #[error("{0}")]
    Failed(String),
}

impl SmallTable {
    /// Starts the thread; `None` if the kernel refused (monitors are then spawned from the
    /// calling thread, paying for berthd's whole table).
    pub fn start() -> Option<SmallTable> {
        // The sealed copy of the monitor binary must be in the table the thread copies.
        let exe = super::monitor_exe::sealed_fd();
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| tracing::warn!("monitor spawner: socketpair: {e}"))
        .ok()?;
        let ours_raw = ours.as_raw_fd();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("monitor-spawner".into())
            .spawn(move || {
                let ready = own_table(&[theirs.as_raw_fd(), exe.unwrap_or(-1)], ours_raw);
                let ok = ready.is_ok();
                let _ = tx.send(ready);
                if ok {
                    serve(&theirs);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("monitor spawner: no thread: {e}");
            return None;
        }
        match rx.recv() {
            Ok(Ok(())) => Some(SmallTable {
                sock: Mutex::new(ours),
                gone: AtomicBool::new(false),
            }),
            Ok(Err(e)) => {
                tracing::warn!("monitor spawner: {e}; monitors are spawned from berthd's table");
                None
            }
            Err(_) => None,
        }
    }

    /// Runs `berth-monitor args` with `stdout` (and `stdin`, else /dev/null) and waits for
    /// the process to exit. The thread gets copies of the descriptors: the caller's close
    /// when it drops them (and stay the caller's should the thread be gone). Blocking.
    pub fn spawn(
        &self,
        args: &[&OsStr],
        stdin: Option<&OwnedFd>,
        stdout: &OwnedFd,
    ) -> Result<(), SpawnError> {
        if self.gone.load(Ordering::Acquire) {
            return Err(SpawnError::Gone("earlier".into()));
        }
        let r = self.ask(args, stdin, stdout);
        if let Err(SpawnError::Gone(e)) = &r {
            tracing::warn!(
                "monitor spawner thread gone ({e}): monitors are spawned from berthd's table"
            );
            self.gone.store(true, Ordering::Release);
        }
        r
    }

    fn ask(
        &self,
        args: &[&OsStr],
        stdin: Option<&OwnedFd>,
        stdout: &OwnedFd,
    ) -> Result<(), SpawnError> {
        let mut msg = vec![u8::from(stdin.is_some())];
        for a in args {
            msg.extend_from_slice(a.as_bytes());
            msg.push(0);
        }
        let mut fds = vec![stdout.as_raw_fd()];
        fds.extend(stdin.map(AsRawFd::as_raw_fd));
        let sock = self
            .sock
            .lock()
            .map_err(|_| SpawnError::Gone("lock poisoned".into()))?;
        sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(&msg)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| SpawnError::Gone(format!("sending: {e}")))?;
        let mut buf = [0u8; 1024];
        let n = loop {
            match nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SpawnError::Gone(format!("no answer: {e}"))),
                Ok(n) => break n,
            }
        };
        match &buf[..n] {
            [0] => Ok(()),
            [1, e @ ..] => Err(SpawnError::Failed(String::from_utf8_lossy(e).into_owned())),
            _ => Err(SpawnError::Gone("closed".into())),
        }
    }
}

/// In the thread: blocks every signal in it, gives it a file table of its own and closes in
/// it every file at or above 3 but those in `keep` (`-1`: none) — `berthds_end` (of the pair)
/// among them.
///
/// Signals first: a process-wide signal goes to any thread that does not block it, and
/// tokio's handlers write to a pipe of berthd's table — closed in this one, so a SIGTERM or
/// SIGCHLD handled here would be lost (berthd did not stop on SIGTERM). A spawn keeps the
/// mask: the monitor empties its own first thing.
fn own_table(keep: &[RawFd], berthds_end: RawFd) -> Result<(), String> {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None)
        .map_err(|e| format!("blocking signals: {e}"))?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FILES)
        .map_err(|e| format!("unshare(CLONE_FILES): {e}"))?;
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&f| f >= 3 && f != berthds_end)
        .filter_map(|&f| u32::try_from(f).ok())
        .collect();
    keep.sort_unstable();
    let mut from = 3u32;
    for k in keep.into_iter().chain([u32::MAX]) {
        if k > from {
            // SAFETY: close_range on this thread's own (just unshared) table; the kept files
            // are outside every range closed, and nothing else in this thread uses the rest.
            let r = unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, 0u32) };
            if r != 0 {
                return Err(format!("close_range: {}", std::io::Error::last_os_error()));
            }
        }
        from = k.saturating_add(1);
    }
    Ok(())
}

/// In the thread: serves requests until berthd's end closes.
fn serve(sock: &OwnedFd) {
    let mut buf = vec![0u8; MAX_REQUEST];
    loop {
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let (n, fds) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::ENOMEM) => continue,
                Err(_) => return,
            };
            let mut fds = Vec::new();
            for c in msg.cmsgs().into_iter().flatten() {
                if let ControlMessageOwned::ScmRights(got) = c {
                    // SAFETY: each fd was just received with SCM_RIGHTS and is ours alone.
                    fds.extend(got.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                }
            }
            (msg.bytes, fds)
        };
        if n == 0 {
            return;
        }
        let answer = match run(&buf[..n], fds) {
            Ok(()) => vec![0],
            Err(e) => [&[1u8][..], e.as_bytes()].concat(),
        };
        if nix::sys::socket::send(sock.as_raw_fd(), &answer, MsgFlags::empty()).is_err() {
            return;
        }
    }
}

/// One request: spawns the monitor and waits for the process that leaves once it detached.
fn run(msg: &[u8], fds: Vec<OwnedFd>) -> Result<(), String> {
    let (flag, rest) = msg.split_first().ok_or("empty request")?;
    let mut fds = fds.into_iter();
    let stdout = fds.next().ok_or("no stdout descriptor")?;
    let stdin = match flag {
        1 => Stdio::from(fds.next().ok_or("no stdin descriptor")?),
        _ => Stdio::null(),
    };
    let args: Vec<OsString> = rest
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let mut child = super::monitor_exe::command()
        .args(&args)
        .stdin(stdin)
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting berth-monitor: {e}"))?;
    let _ = child.wait();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `/proc` folder of the thread named `name` of this process.
    fn thread_dir(name: &str) -> Option<std::path::PathBuf> {
        std::fs::read_dir("/proc/self/task")
            .ok()?
            .flatten()
            .find(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .map(|t| t.path())
    }

    #[test]
    fn the_thread_holds_a_handful_of_files_and_answers_errors() {
        let open: Vec<std::fs::File> = (0..200)
            .filter_map(|_| std::fs::File::open("/proc/self/stat").ok())
            .collect();
        let t = SmallTable::start().expect("spawner thread");
        let dir = thread_dir("monitor-spawner").expect("the thread");
        let n = std::fs::read_dir(dir.join("fd")).expect("fd").count();
        assert!(n <= 8, "{n} files in the spawner thread's table");
        // No signal is handled in it (the handlers' pipe is not in its table).
        let status = std::fs::read_to_string(dir.join("status")).expect("status");
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .map(str::trim)
            .expect("SigBlk");
        let mask = u64::from_str_radix(blocked, 16).expect("hex mask");
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGCHLD,
            libc::SIGPIPE,
        ] {
            assert!(
                mask & (1 << (sig - 1)) != 0,
                "signal {sig} not blocked: {blocked}"
            );
        }
        drop(open);
        // No berth-monitor beside the test binary: the spawn's error comes back.
        let (_r, w) = std::io::pipe().expect("pipe");
        let w = OwnedFd::from(w);
        let e = t
            .spawn(&["--version".as_ref()], None, &w)
            .expect_err("no monitor binary here");
        assert!(
            matches!(&e, SpawnError::Failed(m) if m.contains("berth-monitor")),
            "{e}"
        );
    }

    #[test]
    fn a_thread_gone_is_told_apart_from_a_failed_spawn_and_remembered() {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        drop(theirs);
        let t = SmallTable {
            sock: Mutex::new(ours),
            gone: AtomicBool::new(false),
        };
        let (_r, w) = std::io::pipe().expect("pipe");
        let w = OwnedFd::from(w);
        for _ in 0..2 {
            let e = t
                .spawn(&["x".as_ref()], None, &w)
                .expect_err("nobody answers");
            assert!(matches!(e, SpawnError::Gone(_)), "{e}");
        }
        assert!(t.gone.load(Ordering::Acquire));
        // The caller's descriptor is still open, to spawn from its own table.
        assert!(nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).is_ok());
    }
}
