//! The container's init, running inside the freshly cloned namespaces: stdio, mounts,
//! `pivot_root` (or the stage's switch, `berth_core::stage`), masked and read-only paths,
//! hostname, rlimits, user, capabilities, then — once the runtime says `start` — `execve` of
//! the user's command. Failures before exec are
//! reported on the status pipe as `<code>:<message>` and the process exits with that code.

use crate::mounts::{self, strs};
use crate::process;
use nix::mount::{mount, MsFlags};
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// The descriptors init works with.
#[derive(Debug, Clone, Copy)]
pub struct InitIo {
    /// stdin, stdout, stderr for the process.
    pub stdio: [RawFd; 3],
    /// Whether stdin is a terminal to make the controlling one.
    pub tty: bool,
    /// Read end: one byte once the parent placed us in our cgroup.
    pub cgroup_ready: RawFd,
    /// Read end: one byte to exec.
    pub start: RawFd,
    /// Write end (close-on-exec): `R` when set up, or `<code>:<message>` on failure.
    pub status: RawFd,
    /// With a terminal: a unix socket to send the pty master on (see [`crate::console`]);
    /// -1 otherwise.
    pub console: RawFd,
    /// Init's namespace is a copy of a staged template's (`berth_core::stage`): the rootfs
    /// becomes `/` by [`berth_core::stage::switch`], not by `pivot_root`.
    pub staged: bool,
}

fn fail(status: RawFd, code: i32, msg: &str) -> ! {
    // SAFETY: the fd is ours for the life of this process; ManuallyDrop avoids a double close.
    let mut f = std::mem::ManuallyDrop::new(unsafe { fs::File::from_raw_fd(status) });
    let _ = f.write_all(format!("{code}:{msg}").as_bytes());
    // SAFETY: _exit ends the process without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Runs init. Never returns. `join`: cgroup v1 `tasks` files to move itself into first
/// (empty when the runtime places it).
pub fn run(spec: &Value, io: InitIo, join: &[PathBuf]) -> ! {
    let st = io.status;
    // A copy of the monitor until its exec: nothing may reach the host binary through it.
    process::non_dumpable();
    for (i, fd) in io.stdio.iter().enumerate() {
        if *fd != i as RawFd {
            // SAFETY: dup2 onto the standard descriptors of this new process.
            unsafe { libc::dup2(*fd, i as RawFd) };
        }
    }
    // Nothing of the monitor's (its socket, pty master, signalfd, berthd's ready pipe) may
    // stay open in the container, not even before exec.
    process::close_fds(&[io.cgroup_ready, io.start, io.status, io.console]);
    // SAFETY: setsid on our own process; TIOCSCTTY on a terminal we were given as stdin.
    unsafe {
        libc::setsid();
        if io.tty && io.console < 0 {
            libc::ioctl(0, libc::TIOCSCTTY, 0);
        }
    }
    // Our only thread, so moving it moves the process; done before anything else runs, while
    // the host's cgroup filesystems are still in view.
    for tasks in join {
        if let Err(e) = fs::write(tasks, "0") {
            fail(st, 1, &format!("joining cgroup {}: {e}", tasks.display()));
        }
    }
    // Otherwise the filesystem view is built while the runtime moves us into our cgroup
    // (a migration through `cgroup.procs` waits for an RCU grace period: this overlaps them).
    let layout = mounts::CgroupLayout::host();
    let shared = crate::shared_mounts::Shared::open(spec, &layout);
    if let Err(e) = setup(spec, shared.empty, io.staged) {
        fail(st, 1, &e);
    }
    if io.console >= 0 {
        if let Err(e) = crate::console::setup_in_container(io.console) {
            fail(st, 1, &e);
        }
        // SAFETY: closing our end of the console socket, used only above.
        unsafe { libc::close(io.console) };
    }
    let mut b = [0u8; 1];
    // SAFETY: the fd is ours and used only here.
    let mut ready = unsafe { fs::File::from_raw_fd(io.cgroup_ready) };
    if ready.read_exact(&mut b).is_err() {
        fail(
            st,
            1,
            "runtime went away before the container was placed in its cgroup",
        );
    }
    drop(ready);
    if let Err(e) = finish_setup(spec, &layout, shared.cgroup) {
        fail(st, 1, &e);
    }
    let process = &spec["process"];
    // As runc: without no_new_privs the filter goes on while init still has CAP_SYS_ADMIN
    // (so it also covers switching user and dropping capabilities); with it, once the
    // process is set up, so that the profile constrains as little of init as possible.
    let nnp = process["noNewPrivileges"].as_bool().unwrap_or(false);
    let seccomp = &spec["linux"]["seccomp"];
    if !nnp {
        if let Err(e) = crate::seccomp::install(seccomp) {
            fail(st, 1, &e.to_string());
        }
    }
    if let Err(e) = process::setup_process(process) {
        fail(st, 1, &e);
    }
    process::close_fds(&[io.start, io.status]);
    if let Err(e) = process::enter_cwd(process) {
        fail(st, 1, &e);
    }
    if nnp {
        if let Err(e) = crate::seccomp::install(seccomp) {
            fail(st, 1, &e.to_string());
        }
    }
    // Looked up before `R`, as runc does at create: a command that is missing or not
    // executable fails the `start` that would release it, with Docker's 127 or 126.
    let (args, env) = (strs(&process["args"]), strs(&process["env"]));
    let path = match process::command_path(&args, &env) {
        Ok(p) => p,
        Err((code, msg)) => fail(st, code, &msg),
    };
    // SAFETY: as above; ManuallyDrop because `fail` may use the descriptor again.
    let mut status = std::mem::ManuallyDrop::new(unsafe { fs::File::from_raw_fd(st) });
    let _ = status.write_all(b"R");
    // SAFETY: as above.
    let mut start = unsafe { fs::File::from_raw_fd(io.start) };
    if start.read_exact(&mut b).is_err() {
        // SAFETY: ending the process.
        unsafe { libc::_exit(1) };
    }
    drop(start);
    process::reset_signals();
    // Only 0-2 are the container's; the status pipe (already close-on-exec) stays usable
    // to report a failed exec.
    process::cloexec_from_3();
    let err = process::exec_path(&path, &args, &env);
    exec_failed(st, &format!("exec {path}: {}", process::errno_text(err)))
}

/// The exec itself failed, after the `start` that released the init returned (an exec format
/// error, a missing ELF interpreter): as with Docker and runc, the container's stderr says
/// `exec /path: <reason>` (the logs keep it) and the exit code is 1.
fn exec_failed(status: RawFd, msg: &str) -> ! {
    // SAFETY: fd 2 is the container's stderr; SIGPIPE (back to the default for the exec) is
    // ignored so that a closed stderr or status pipe cannot kill us before the exit code is set.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let line = format!("{msg}\n");
        libc::write(2, line.as_ptr().cast(), line.len());
    }
    fail(status, 1, msg)
}

/// In the cgroup: the cgroup namespace, the cgroup filesystems, the read-only root.
/// `skeleton`: the shared v1 `/sys/fs/cgroup` tmpfs, when the container may use it.
fn finish_setup(
    spec: &Value,
    layout: &mounts::CgroupLayout,
    mut skeleton: Option<OwnedFd>,
) -> Result<(), String> {
    let ns = spec["linux"]["namespaces"].as_array();
    if ns.is_some_and(|ns| ns.iter().any(|n| n["type"] == "cgroup")) {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| format!("unsharing the cgroup namespace: {e}"))?;
    }
    for (dest, flags) in mounts::cgroup_mount_points(spec) {
        mounts::mount_cgroups(std::path::Path::new(&dest), flags, layout, skeleton.take())?;
    }
    if spec["root"]["readonly"].as_bool().unwrap_or(false) {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("making the root read-only: {e}"))?;
    }
    Ok(())
}

/// Namespaces joined by path, mounts, root, hostname, sysctls, masked and read-only paths
/// (everything that does not need the container's cgroup). `empty`: the shared empty tmpfs
/// for masked folders, when the container may use it.
fn setup(spec: &Value, empty: Option<OwnedFd>, staged: bool) -> Result<(), String> {
    let ns = spec["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Kinds joined by path were not cloned: until joined, they are still the host's.
    let host = crate::sysctl::HostNs::current();
    for n in &ns {
        let Some(path) = n["path"].as_str() else {
            continue;
        };
        let flag = match n["type"].as_str().unwrap_or("") {
            "network" => nix::sched::CloneFlags::CLONE_NEWNET,
            "ipc" => nix::sched::CloneFlags::CLONE_NEWIPC,
            "uts" => nix::sched::CloneFlags::CLONE_NEWUTS,
            _ => continue,
        };
        let f = fs::File::open(path).map_err(|e| format!("opening namespace {path}: {e}"))?;
        nix::sched::setns(f, flag).map_err(|e| format!("joining namespace {path}: {e}"))?;
    }
    // A network namespace of its own starts with `lo` down; it comes up here, as runc does,
    // whatever joins the namespace later (nothing, with `--network none`).
    if ns
        .iter()
        .any(|n| n["type"] == "network" && n["path"].is_null())
    {
        berth_core::netns::loopback_up()
            .map_err(|e| format!("setting up the loopback interface: {e}"))?;
    }
    // The container's tree is made private as a whole, unless the spec asks for another
    // `rootfsPropagation` (a bind with shared or slave propagation): then, as runc does, the
    // tree gets that propagation and only the mount holding the rootfs is made private.
    let root = PathBuf::from(spec["root"]["path"].as_str().unwrap_or("/"));
    let root_prop = spec["linux"]["rootfsPropagation"]
        .as_str()
        .and_then(mounts::propagation)
        .filter(|p| !p.contains(MsFlags::MS_PRIVATE));
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        root_prop.unwrap_or(MsFlags::MS_REC | MsFlags::MS_PRIVATE),
        None::<&str>,
    )
    .map_err(|e| format!("setting the propagation of mounts: {e}"))?;
    if root_prop.is_some() {
        mounts::parent_mount_private(&root)?;
    }
    mount(
        Some(&root),
        &root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("binding rootfs {}: {e}", root.display()))?;
    // Opened after the bind above, so that it holds the mount that becomes the new root.
    let confined = berth_confine::Root::open(&root)
        .map_err(|e| format!("opening rootfs {}: {e}", root.display()))?;
    for m in spec["mounts"].as_array().cloned().unwrap_or_default() {
        mounts::do_mount(&confined, &m, root_prop.is_none())?;
    }
    mounts::devices(&confined)?;
    crate::devices::make(&confined, &spec["linux"]["devices"])?;
    drop(confined);
    let private = crate::sysctl::private_in(&ns, &host);
    let own_uts = ns.iter().any(|n| n["type"] == "uts" && n["path"].is_null());
    if let Some(h) = spec["hostname"]
        .as_str()
        .filter(|h| !h.is_empty() && own_uts)
    {
        nix::unistd::sethostname(h).map_err(|e| format!("sethostname: {e}"))?;
    }
    mounts::pivot(&root, root_prop, staged)?;
    process::sysctls(&spec["linux"]["sysctl"], private)?;
    crate::shared_mounts::mask(&strs(&spec["linux"]["maskedPaths"]), empty);
    mounts::readonly(&strs(&spec["linux"]["readonlyPaths"]));
    Ok(())
}

/// Wraps a raw fd we own.
pub fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass descriptors they own and no longer use raw.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A close-on-exec pipe as raw fds (read, write).
pub fn pipe() -> std::io::Result<(RawFd, RawFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    use std::os::fd::IntoRawFd;
    Ok((r.into_raw_fd(), w.into_raw_fd()))
}
