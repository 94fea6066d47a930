//! The container's init, running inside the freshly cloned namespaces: stdio, mounts,
//! `pivot_root`, masked and read-only paths, hostname, rlimits, user, capabilities, then — once
//! the runtime says `start` — `execve` of the user's command. Failures before exec are
//! reported on the status pipe as `<code>:<message>` and the process exits with that code.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::Value;
use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// The descriptors init works with.
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
}

fn fail(status: RawFd, code: i32, msg: &str) -> ! {
    // SAFETY: the fd is ours for the life of this process; ManuallyDrop avoids a double close.
    let mut f = std::mem::ManuallyDrop::new(unsafe { fs::File::from_raw_fd(status) });
    let _ = f.write_all(format!("{code}:{msg}").as_bytes());
    // SAFETY: _exit ends the process without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

fn flags_of(options: &[String]) -> (MsFlags, String) {
    let mut f = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => f |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => f |= MsFlags::MS_NOSUID,
            "nodev" => f |= MsFlags::MS_NODEV,
            "noexec" => f |= MsFlags::MS_NOEXEC,
            "strictatime" => f |= MsFlags::MS_STRICTATIME,
            "relatime" => f |= MsFlags::MS_RELATIME,
            "noatime" => f |= MsFlags::MS_NOATIME,
            "bind" => f |= MsFlags::MS_BIND,
            "rbind" => f |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "z" | "Z" => {}
            other => data.push(other.to_string()),
        }
    }
    (f, data.join(","))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves `dest` under `root` without following symlinks out of it.
fn inside(root: &Path, dest: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in Path::new(dest).components() {
        if let std::path::Component::Normal(n) = c {
            p.push(n);
            if let Ok(t) = fs::read_link(&p) {
                // Re-root absolute symlinks; drop relative ones that climb.
                if t.is_absolute() {
                    p = inside(root, &t.display().to_string());
                } else {
                    p.pop();
                    let joined = p.join(&t);
                    if joined.starts_with(root) {
                        p = joined;
                    }
                }
            }
        }
    }
    p
}

fn do_mount(root: &Path, m: &Value) -> Result<(), String> {
    let dest = m["destination"].as_str().unwrap_or("");
    let kind = m["type"].as_str().unwrap_or("");
    let source = m["source"].as_str().unwrap_or("");
    let opts = strs(&m["options"]);
    let (flags, data) = flags_of(&opts);
    let target = inside(root, dest);
    let is_bind = kind == "bind" || flags.contains(MsFlags::MS_BIND);
    if is_bind && Path::new(source).is_file() {
        if let Some(p) = target.parent() {
            let _ = fs::create_dir_all(p);
        }
        if !target.exists() {
            let _ = fs::File::create(&target);
        }
    } else {
        fs::create_dir_all(&target).map_err(|e| format!("creating mount point {dest}: {e}"))?;
    }
    if is_bind {
        let bflags = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
        mount(
            Some(source),
            &target,
            None::<&str>,
            bflags | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("bind mounting {source} on {dest}: {e}"))?;
        let extra = flags
            & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        if !extra.is_empty() {
            mount(
                None::<&str>,
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
                None::<&str>,
            )
            .map_err(|e| format!("remounting {dest}: {e}"))?;
        }
        return Ok(());
    }
    let data = if data.is_empty() {
        None
    } else {
        Some(data.as_str())
    };
    mount(Some(source), &target, Some(kind), flags, data)
        .map_err(|e| format!("mounting {kind} on {dest}: {e}"))
}

fn devices(root: &Path, tty: bool) -> Result<(), String> {
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = root.join("dev").join(d);
        let _ = fs::File::create(&target);
        let src = format!("/dev/{d}");
        mount(
            Some(src.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("binding {src}: {e}"))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = std::os::unix::fs::symlink(target, root.join("dev").join(link));
    }
    if tty {
        if let Ok(name) = fs::read_link("/proc/self/fd/0") {
            let console = root.join("dev/console");
            let _ = fs::File::create(&console);
            let _ = mount(
                Some(name.as_path()),
                &console,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            );
        }
    }
    Ok(())
}

fn pivot(root: &Path) -> Result<(), String> {
    std::env::set_current_dir(root).map_err(|e| format!("chdir to rootfs: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
}

fn mask(paths: &[String]) {
    for p in paths {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let _ = mount(
                    Some("tmpfs"),
                    p.as_str(),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    None::<&str>,
                );
            }
            Ok(_) => {
                let _ = mount(
                    Some("/dev/null"),
                    p.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                );
            }
            Err(_) => {}
        }
    }
}

fn readonly(paths: &[String]) {
    for p in paths {
        if Path::new(p).exists()
            && mount(
                Some(p.as_str()),
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .is_ok()
        {
            let _ = mount(
                None::<&str>,
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None::<&str>,
            );
        }
    }
}

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
        _ => return None,
    })
}

/// Applies the process part of a spec (rlimits, user, capabilities, no_new_privs, cwd) to the
/// calling process. Shared by init and exec.
pub fn setup_process(process: &Value) -> Result<(), String> {
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
    let bounding = strs(&process["capabilities"]["bounding"]);
    let effective = strs(&process["capabilities"]["effective"]);
    crate::caps::apply(&bounding, &effective).map_err(|e| format!("setting capabilities: {e}"))?;
    if process["noNewPrivileges"].as_bool().unwrap_or(false) {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    }
    let cwd = process["cwd"].as_str().unwrap_or("/");
    let _ = fs::create_dir_all(cwd);
    std::env::set_current_dir(cwd)
        .map_err(|e| format!("chdir to cwd (\"{cwd}\") set in config.json failed: {e}"))
}

/// Closes every descriptor above 2 except `keep`.
pub fn close_fds(keep: &[RawFd]) {
    let fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing descriptors this process will not use again.
            unsafe { libc::close(fd) };
        }
    }
}

/// Finds `cmd` on `PATH` from `env` (as execvp would), inside the current root.
pub fn lookup(cmd: &str, env: &[String]) -> Result<String, (i32, String)> {
    if cmd.contains('/') {
        return match fs::metadata(cmd) {
            Ok(m) if m.is_dir() => Err((126, format!("exec: \"{cmd}\": is a directory"))),
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
        if let Ok(m) = fs::metadata(&p) {
            if m.is_file() {
                return Ok(p);
            }
        }
    }
    Err((
        127,
        format!("exec: \"{cmd}\": executable file not found in $PATH"),
    ))
}

/// Replaces the process with `args` (looked up on PATH), `env`. Returns only on failure.
pub fn exec(args: &[String], env: &[String]) -> (i32, String) {
    let Some(cmd) = args.first() else {
        return (127, "no command specified".into());
    };
    let path = match lookup(cmd, env) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let to_c = |v: &[String]| -> Vec<CString> {
        v.iter()
            .filter_map(|s| CString::new(s.as_str()).ok())
            .collect()
    };
    let (cargs, cenv) = (to_c(args), to_c(env));
    let Ok(cpath) = CString::new(path.as_str()) else {
        return (127, "bad path".into());
    };
    let e = nix::unistd::execve(&cpath, &cargs, &cenv).err();
    match e {
        Some(nix::errno::Errno::EACCES) => (126, format!("exec: \"{cmd}\": permission denied")),
        Some(nix::errno::Errno::ENOEXEC) => (126, format!("exec: \"{cmd}\": exec format error")),
        Some(e) => (127, format!("exec: \"{cmd}\": {e}")),
        None => (127, "exec returned".into()),
    }
}

/// Runs init. Never returns.
pub fn run(spec: &Value, io: InitIo) -> ! {
    let st = io.status;
    for (i, fd) in io.stdio.iter().enumerate() {
        if *fd != i as RawFd {
            // SAFETY: dup2 onto the standard descriptors of this new process.
            unsafe { libc::dup2(*fd, i as RawFd) };
        }
    }
    // SAFETY: setsid/ioctl on our own session and stdin.
    unsafe {
        libc::setsid();
        if io.tty {
            libc::ioctl(0, libc::TIOCSCTTY, 0);
        }
    }
    let mut b = [0u8; 1];
    // SAFETY: the fd is ours; ManuallyDrop keeps ownership semantics simple in this process.
    let mut ready = std::mem::ManuallyDrop::new(unsafe { fs::File::from_raw_fd(io.cgroup_ready) });
    if ready.read_exact(&mut b).is_err() {
        fail(
            st,
            1,
            "runtime went away before the container was placed in its cgroup",
        );
    }
    let ns = spec["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has = |t: &str| ns.iter().any(|n| n["type"] == t);
    if has("cgroup") {
        let _ = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP);
    }
    if let Some(path) = ns
        .iter()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
    {
        match fs::File::open(path) {
            Ok(f) => {
                if let Err(e) = nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET) {
                    fail(st, 1, &format!("joining network namespace {path}: {e}"));
                }
            }
            Err(e) => fail(st, 1, &format!("opening network namespace {path}: {e}")),
        }
    }
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        fail(st, 1, &format!("making mounts private: {e}"));
    }
    let root = PathBuf::from(spec["root"]["path"].as_str().unwrap_or("/"));
    if let Err(e) = mount(
        Some(&root),
        &root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        fail(st, 1, &format!("binding rootfs {}: {e}", root.display()));
    }
    for m in spec["mounts"].as_array().cloned().unwrap_or_default() {
        if let Err(e) = do_mount(&root, &m) {
            fail(st, 1, &e);
        }
    }
    if let Err(e) = devices(&root, io.tty) {
        fail(st, 1, &e);
    }
    if let Some(h) = spec["hostname"].as_str().filter(|h| !h.is_empty()) {
        let _ = nix::unistd::sethostname(h);
    }
    if let Err(e) = pivot(&root) {
        fail(st, 1, &e);
    }
    mask(&strs(&spec["linux"]["maskedPaths"]));
    readonly(&strs(&spec["linux"]["readonlyPaths"]));
    if spec["root"]["readonly"].as_bool().unwrap_or(false) {
        if let Err(e) = mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        ) {
            fail(st, 1, &format!("making the root read-only: {e}"));
        }
    }
    let process = &spec["process"];
    if let Err(e) = setup_process(process) {
        fail(st, 1, &e);
    }
    close_fds(&[io.start, io.status]);
    // SAFETY: as above.
    let mut status = std::mem::ManuallyDrop::new(unsafe { fs::File::from_raw_fd(st) });
    let _ = status.write_all(b"R");
    // SAFETY: as above.
    let mut start = unsafe { fs::File::from_raw_fd(io.start) };
    if start.read_exact(&mut b).is_err() {
        // SAFETY: ending the process.
        unsafe { libc::_exit(1) };
    }
    drop(start);
    let (code, msg) = exec(&strs(&process["args"]), &strs(&process["env"]));
    fail(st, code, &msg)
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

/// Keeps an fd number alive in a struct without ownership.
pub fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}
