//! The process part of a spec, shared by init and exec: rlimits, user and groups,
//! capabilities, no_new_privs, the cwd (checked to be inside the container), dumpability,
//! signal state, closing inherited descriptors, PATH lookup and `execve` with Docker's error
//! texts and exit codes.

use serde_json::Value;
use std::ffi::CString;
use std::fs;
use std::os::fd::RawFd;

use crate::mounts::strs;

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        _ => return None,
    })
}

/// Applies the process part of a spec (rlimits, user, capabilities, no_new_privs) to the
/// calling process; the cwd is [`enter_cwd`]'s. Shared by init and exec.
pub fn setup_process(process: &Value) -> Result<(), String> {
    if let Some(adj) = process["oomScoreAdj"].as_i64() {
        // Only raise it explicitly; 0 is what a child of the monitor has unless told.
        if adj != 0 {
            fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(|e| format!("setting oom_score_adj: {e}"))?;
        }
    }
    for r in process["rlimits"].as_array().cloned().unwrap_or_default() {
        if let Some(res) = rlimit_resource(r["type"].as_str().unwrap_or("")) {
            let lim = libc::rlimit {
                rlim_cur: r["soft"].as_u64().unwrap_or(0),
                rlim_max: r["hard"].as_u64().unwrap_or(0),
            };
            // SAFETY: setrlimit with a valid struct pointer.
            if unsafe { libc::setrlimit(res, &lim) } != 0 {
                return Err(format!(
                    "setrlimit {}: {}",
                    r["type"],
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    let uid = process
        .pointer("/user/uid")
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32;
    let gid = process
        .pointer("/user/gid")
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32;
    let groups: Vec<libc::gid_t> = process
        .pointer("/user/additionalGids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_u64())
                .map(|g| g as libc::gid_t)
                .collect()
        })
        .unwrap_or_default();
    let c = &process["capabilities"];
    let sets = crate::caps::CapSets {
        bounding: strs(&c["bounding"]),
        effective: strs(&c["effective"]),
        permitted: strs(&c["permitted"]),
        inheritable: strs(&c["inheritable"]),
        ambient: strs(&c["ambient"]),
    };
    crate::caps::limit_bounding(&sets.bounding)
        .map_err(|e| format!("limiting the bounding set: {e}"))?;
    // SAFETY: prctl/setgroups/setresgid/setresuid with valid arguments; groups outlives the call.
    unsafe {
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(format!("setgroups: {}", std::io::Error::last_os_error()));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(format!("setgid {gid}: {}", std::io::Error::last_os_error()));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(format!("setuid {uid}: {}", std::io::Error::last_os_error()));
        }
    }
    crate::caps::apply(&sets).map_err(|e| format!("setting capabilities: {e}"))?;
    if process["noNewPrivileges"].as_bool().unwrap_or(false) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "setting no_new_privs: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Changes to the process's `cwd` — meant for after every descriptor not the container's is
/// closed — and checks that it lies inside the container's root: a `cwd` naming a descriptor
/// (`/proc/self/fd/N`) of a directory outside must not become the process's (CVE-2024-21626).
pub fn enter_cwd(process: &Value) -> Result<(), String> {
    let cwd = process["cwd"].as_str().unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(format!("cwd {cwd:?} is not an absolute path"));
    }
    // A missing workdir is made, as Docker's, never one under /proc (descriptors' targets):
    // resolved inside the container's root (after `pivot_root` the host is out of view
    // anyway), a symlink on the way followed there even when dangling, as runc does.
    if !cwd.starts_with("/proc/") {
        if let Ok(root) = berth_confine::Root::open("/") {
            let _ = root.mkdir_all(cwd, 0o755);
        }
    }
    std::env::set_current_dir(cwd)
        .map_err(|e| format!("chdir to cwd (\"{cwd}\") set in config.json failed: {e}"))?;
    // The kernel's getcwd answers a path that does not start with `/` ("(unreachable)/...")
    // for a directory its root cannot reach.
    let mut buf = [0u8; 4096];
    // SAFETY: getcwd into a buffer of the given length.
    let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if n <= 0 || buf[0] != b'/' {
        return Err(format!(
            "chdir to cwd (\"{cwd}\") set in config.json failed: current working directory is outside of container mount namespace root -- possible container breakout detected"
        ));
    }
    Ok(())
}

/// Makes the process non-dumpable: until it execs the container's command, no process of the
/// container without CAP_SYS_PTRACE can open its `/proc/PID/exe` (the host's binary,
/// CVE-2019-5736), its memory or its descriptors. `execve` of the container's command makes
/// it dumpable again.
pub fn non_dumpable() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// What [`sweep_fds`] does to each descriptor it reaches.
#[derive(Clone, Copy)]
enum FdAction {
    /// Set close-on-exec: the descriptor stays usable until the next `execve`.
    CloseOnExec,
    /// Close it now.
    Close,
}

/// Marks every descriptor above 2 close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC; a
/// `/proc/self/fd` walk where the kernel lacks it): whatever the process still holds stays
/// usable until, and only until, its `execve`.
pub fn cloexec_from_3() {
    sweep_fds(&[], FdAction::CloseOnExec);
}

/// Closes every descriptor above 2 except `keep` (close_range(2) over the gaps; a
/// `/proc/self/fd` walk where the kernel lacks it).
pub fn close_fds(keep: &[RawFd]) {
    sweep_fds(keep, FdAction::Close);
}

/// Applies `action` to every descriptor above 2 except `keep`: close_range(2) over the gaps
/// between the kept ones, or, where the kernel lacks it, one call per entry of
/// `/proc/self/fd`.
fn sweep_fds(keep: &[RawFd], action: FdAction) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let flags = match action {
        FdAction::CloseOnExec => CLOSE_RANGE_CLOEXEC,
        FdAction::Close => 0,
    };
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from: libc::c_uint = 3;
    let mut ok = true;
    for k in keep
        .iter()
        .map(|k| *k as libc::c_uint)
        .chain([libc::c_uint::MAX])
    {
        if k > from {
            // SAFETY: close_range only closes or flags descriptors of this process that it
            // will not use again (before its exec, for CLOSE_RANGE_CLOEXEC).
            ok &= unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, flags) } == 0;
        }
        from = k.saturating_add(1);
    }
    if ok {
        return;
    }
    let fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        if fd <= 2 || keep.contains(&fd) {
            continue;
        }
        match action {
            // SAFETY: fcntl on a descriptor number; a closed one just fails.
            FdAction::CloseOnExec => unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
            // SAFETY: closing descriptors this process will not use again.
            FdAction::Close => unsafe { libc::close(fd) },
        };
    }
}

/// Gives the process a clean signal state for exec: nothing blocked, every disposition
/// (SIGPIPE is ignored in Rust programs) back to the default.
pub fn reset_signals() {
    // SAFETY: sigset operations on a local set, sigprocmask and signal with valid arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// Applies `linux.sysctl` (`net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`), each
/// key first checked against the namespaces the container has of its own (`private`).
pub fn sysctls(map: &Value, private: crate::sysctl::Private) -> Result<(), String> {
    let Some(m) = map.as_object() else {
        return Ok(());
    };
    for (k, v) in m {
        crate::sysctl::check(k, private).map_err(|e| e.to_string())?;
        let path = crate::sysctl::path(k).map_err(|e| e.to_string())?;
        fs::write(&path, v.as_str().unwrap_or_default())
            .map_err(|e| format!("setting sysctl {k}: {e}"))?;
    }
    Ok(())
}

/// Finds `cmd` on `PATH` from `env` (as execvp would), inside the current root; like Go's
/// `exec.LookPath` (runc), a file named with a `/` must be executable too.
pub fn lookup(cmd: &str, env: &[String]) -> Result<String, (i32, String)> {
    if cmd.contains('/') {
        return match fs::metadata(cmd) {
            Ok(m) if m.is_dir() => Err((126, format!("exec: \"{cmd}\": is a directory"))),
            Ok(m) if std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 == 0 => {
                Err((126, format!("exec: \"{cmd}\": permission denied")))
            }
            Ok(_) => Ok(cmd.to_string()),
            Err(_) => Err((
                127,
                format!("exec: \"{cmd}\": stat {cmd}: no such file or directory"),
            )),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let p = format!("{}/{cmd}", dir.trim_end_matches('/'));
        // Like Go's exec.LookPath (runc): only executable regular files count.
        if let Ok(m) = fs::metadata(&p) {
            if m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            {
                return Ok(p);
            }
        }
    }
    Err((
        127,
        format!("exec: \"{cmd}\": executable file not found in $PATH"),
    ))
}

/// The executable `args` runs: its first word looked up on PATH (see [`lookup`]).
pub fn command_path(args: &[String], env: &[String]) -> Result<String, (i32, String)> {
    let Some(cmd) = args.first() else {
        return Err((127, "no command specified".into()));
    };
    lookup(cmd, env)
}

/// Replaces the process with `args` (looked up on PATH), `env`. Returns only on failure.
pub fn exec(args: &[String], env: &[String]) -> (i32, String) {
    let path = match command_path(args, env) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let cmd = args.first().map(String::as_str).unwrap_or(&path);
    match exec_path(&path, args, env) {
        nix::errno::Errno::EACCES => (126, format!("exec: \"{cmd}\": permission denied")),
        nix::errno::Errno::ENOEXEC => (126, format!("exec: \"{cmd}\": exec format error")),
        e => (127, format!("exec: \"{cmd}\": {e}")),
    }
}

/// Replaces the process with the executable at `path` (found by [`command_path`]), run as
/// `args`, with `env`. Returns only on failure, with the reason.
pub fn exec_path(path: &str, args: &[String], env: &[String]) -> nix::errno::Errno {
    let to_c = |v: &[String]| -> Vec<CString> {
        v.iter()
            .filter_map(|s| CString::new(s.as_str()).ok())
            .collect()
    };
    let (cargs, cenv) = (to_c(args), to_c(env));
    let Ok(cpath) = CString::new(path) else {
        return nix::errno::Errno::EINVAL;
    };
    // berthd's policy stops here: the user's command runs with the normal one.
    berth_core::sched::normal();
    match nix::unistd::execve(&cpath, &cargs, &cenv) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// An errno as Go's `syscall.Errno` spells it (`exec format error`), as runc's messages do.
pub fn errno_text(e: nix::errno::Errno) -> String {
    let text = e.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Finds an exec failure (`exec: "x": executable file not found in $PATH`) in a runtime's
/// error text: Docker's exit code (127 not found, 126 not executable) and the `exec: ...` part.
pub fn exec_error_code(msg: &str) -> Option<(i32, String)> {
    let start = msg.find("exec: \"")?;
    let text = msg[start..]
        .trim_end_matches(": unknown")
        .trim()
        .to_string();
    let code = if text.contains("permission denied")
        || text.contains("is a directory")
        || text.contains("exec format error")
    {
        126
    } else {
        127
    };
    Some((code, text))
}
