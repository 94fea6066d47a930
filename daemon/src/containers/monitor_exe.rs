//! The `berth-monitor` binary as berthd runs it: from a sealed in-memory copy.
//!
//! A container's init (a clone of its monitor) and an exec's helper enter the container before
//! they exec its command; until then, and if the command is `#!/proc/self/exe` or names it as
//! its ELF interpreter afterwards too, `/proc/PID/exe` of a process in the container is the
//! monitor's binary (CVE-2019-5736). So berthd copies the binary once into a memfd, seals it
//! against every change (`F_SEAL_WRITE`, `SHRINK`, `GROW`, `SEAL`) and runs monitors and exec
//! helpers from that copy: what a container can reach is the sealed copy, never the host's
//! file. (The init and helper are also non-dumpable until they exec:
//! `berth_runtime::process::non_dumpable`.) `argv[0]` stays the path on disk, and the monitor
//! names itself `berth-monitor` (its `comm` would otherwise be the descriptor's number).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Where the monitor binary is on disk (beside berthd).
pub fn on_disk() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("berth-monitor")))
        .unwrap_or_else(|| PathBuf::from("berth-monitor"))
}

/// The sealed copy (made once; `None` if the kernel refused, then the file on disk is run).
fn sealed() -> Option<&'static OwnedFd> {
    static COPY: OnceLock<Option<OwnedFd>> = OnceLock::new();
    COPY.get_or_init(|| match seal(&on_disk()) {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::warn!("running berth-monitor from disk, no sealed copy: {e}");
            None
        }
    })
    .as_ref()
}

fn seal(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    // SAFETY: memfd_create with a NUL-terminated name and flags; the result is checked.
    let fd = unsafe {
        libc::memfd_create(
            c"berth-monitor".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut std::fs::File::open(path)?, &mut dst)?;
    let fd = OwnedFd::from(dst);
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own descriptor with integer arguments.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// The sealed copy's descriptor, made now if it was not yet (`None`: the file on disk is run).
pub fn sealed_fd() -> Option<std::os::fd::RawFd> {
    sealed().map(AsRawFd::as_raw_fd)
}

/// A command running `berth-monitor` (from the sealed copy when there is one).
pub fn command() -> Command {
    let disk = on_disk();
    match sealed() {
        Some(fd) => {
            // The child resolves its own `/proc/self/fd/N` while exec'ing, before the
            // close-on-exec descriptor is closed.
            let mut c = Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            std::os::unix::process::CommandExt::arg0(&mut c, disk);
            c
        }
        None => Command::new(disk),
    }
}
