//! `docker exec`: join a running container's namespaces and cgroup, fork into its pid
//! namespace, set the process up like init does, exec. Runs in a short-lived helper process
//! (`berth-monitor exec`), never in the daemon.
//!
//! A container in a user namespace of its own (a runtime that maps its root to an
//! unprivileged host uid, such as the `userns-runtime` example) is joined in that namespace
//! last, once every other namespace has been joined with host root's privileges; the process
//! then takes the container's uid inside it, like the container's init.

use crate::process;
use nix::sched::{setns, CloneFlags};
use serde_json::Value;
use std::fs;

/// Joins container `pid` and runs `process` (an OCI process object); returns the exit code
/// to exit with (the command's, or 126 with Docker's message on stdout). With `status` (a
/// descriptor of this helper), a command that cannot start writes that message there
/// instead, and the descriptor reaches end of file once the command runs (close-on-exec).
pub fn exec_into(pid: i32, process: &Value, status: Option<i32>) -> i32 {
    // Nothing of berthd's and of this helper (the host binary behind `/proc/PID/exe`, its
    // descriptors) may be reachable from the container: see `process::non_dumpable`.
    process::non_dumpable();
    process::cloexec_from_3();
    // Join its cgroups first (the paths are the same relative paths under each hierarchy).
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let base = if ctrls.is_empty() {
            "/sys/fs/cgroup".to_string()
        } else {
            let first = ctrls
                .split(',')
                .next()
                .unwrap_or(ctrls)
                .trim_start_matches("name=");
            let dir = format!("/sys/fs/cgroup/{ctrls}");
            if std::path::Path::new(&dir).exists() {
                dir
            } else {
                format!("/sys/fs/cgroup/{first}")
            }
        };
        let _ = fs::write(
            format!("{base}{path}/cgroup.procs"),
            std::process::id().to_string(),
        );
    }
    let order = [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("user", CloneFlags::CLONE_NEWUSER),
    ];
    // Which namespaces to join is decided before joining any: once in the container's mount
    // namespace, `/proc` is the container's.
    let mut files = Vec::new();
    for (name, flag) in order {
        match fs::File::open(format!("/proc/{pid}/ns/{name}")) {
            Ok(f) => {
                let own = fs::read_link(format!("/proc/self/ns/{name}")).ok();
                let theirs = fs::read_link(format!("/proc/{pid}/ns/{name}")).ok();
                if own.is_none() || own != theirs {
                    files.push((f, flag));
                }
            }
            Err(e) => {
                eprintln!("cannot exec in a stopped container: {e}");
                return 126;
            }
        }
    }
    for (f, flag) in files {
        if let Err(e) = setns(f, flag) {
            eprintln!("joining the {} namespace: {e}", ns_name(flag));
            return 126;
        }
    }
    // SAFETY: fork in this single-threaded helper; the child only execs or exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            // Whose child we are, as seen from here (0: outside our PID namespace).
            // SAFETY: getppid has no preconditions.
            let helper = unsafe { libc::getppid() };
            if process["terminal"].as_bool().unwrap_or(false) {
                // SAFETY: new session and controlling terminal on our own stdin.
                unsafe {
                    libc::setsid();
                    libc::ioctl(0, libc::TIOCSCTTY, 0);
                }
            }
            // Only 0-2 are the container's: the rest goes before anything else happens.
            process::close_fds(status.as_slice());
            let fail = |e: String| -> ! { start_failed(&e, status) };
            // The container's filter, which berthd passes along (`"seccomp"`), installed as
            // init does (see `init::run`).
            let nnp = process["noNewPrivileges"].as_bool().unwrap_or(false);
            if !nnp {
                if let Err(e) = crate::seccomp::install(&process["seccomp"]) {
                    fail(e.to_string());
                }
            }
            if let Err(e) = process::setup_process(process) {
                fail(e);
            }
            if let Err(e) = process::enter_cwd(process) {
                fail(e);
            }
            die_with_helper(helper);
            if nnp {
                if let Err(e) = crate::seccomp::install(&process["seccomp"]) {
                    fail(e.to_string());
                }
            }
            process::reset_signals();
            let args: Vec<String> = process["args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let env: Vec<String> = process["env"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let (_, msg) = process::exec(&args, &env);
            start_failed(&msg, status)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            if let Some(fd) = status {
                // Only the child's copy may keep it open: its exec or exit ends it.
                // SAFETY: closing this helper's own descriptor, used nowhere else here.
                unsafe { libc::close(fd) };
            }
            loop {
                match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => return c,
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return 126,
                }
            }
        }
        Err(e) => {
            eprintln!("fork: {e}");
            126
        }
    }
}

/// Makes the exec's process die with this helper (SIGKILL when the helper ends), so that
/// killing the helper — an `ExecSync` past its timeout — ends the process in the container,
/// not just its parent. Set after the user's credentials (a change of them clears it); a
/// helper already gone by then (`helper` is no longer the parent) ends the child at once.
fn die_with_helper(helper: libc::pid_t) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != helper {
        // SAFETY: ending the child, whose helper is gone.
        unsafe { libc::_exit(137) }
    }
}

/// Ends an exec's child that could not start its command as Docker's does: exit code 126
/// whatever the reason (a missing command too: 127 is `docker run`'s), and dockerd's text on
/// the `status` descriptor (a detached exec: berthd answers the start with it) or else on
/// the exec's stdout, ended by `\r\n` (dockerd writes it into the hijacked stream).
fn start_failed(reason: &str, status: Option<i32>) -> ! {
    use std::io::{IsTerminal, Write};
    // runc reports a directory as EACCES ("permission denied"), as execve does.
    let reason = reason.replace(": is a directory", ": permission denied");
    // On a terminal the line discipline turns the `\n` into `\r\n` itself.
    let end = if std::io::stdout().is_terminal() {
        "\n"
    } else {
        "\r\n"
    };
    let msg = format!(
        "OCI runtime exec failed: exec failed: unable to start container process: {reason}: unknown"
    );
    if let Some(fd) = status {
        // SAFETY: writing this process's own descriptor; it ends right after.
        unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
        // SAFETY: ending the child.
        unsafe { libc::_exit(126) }
    }
    let msg = msg + end;
    let _ = std::io::stdout().write_all(msg.as_bytes());
    let _ = std::io::stdout().flush();
    // SAFETY: ending the child.
    unsafe { libc::_exit(126) }
}

fn ns_name(f: CloneFlags) -> &'static str {
    match f {
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWUSER => "user",
        _ => "mnt",
    }
}
