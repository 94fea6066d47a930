//! The native runtime: `core::Runtime` with no external binary. `create` clones the init into
//! new namespaces, places it in its cgroup and lets it set itself up (see [`crate::init`]);
//! `start` releases it to exec. Meant to be driven by one container's monitor process.

use crate::cgroups::{Cgroup, Hierarchy, Limits};
use crate::init::{self, InitIo};
use crate::RuntimeError;
use berth_core::runtime::{Spec, State, Status, StdioFds};
use berth_core::{DriverError, DriverResult, Runtime};
use nix::sched::CloneFlags;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

struct Proc {
    console: Option<OwnedFd>,
    pid: i32,
    start: Option<File>,
    status: Option<File>,
    cgroup: Cgroup,
    /// Placing the init in its cgroup, still under way (see [`NativeRuntime::create_early`]).
    placing: Option<std::thread::JoinHandle<Result<(), RuntimeError>>>,
    /// The init reported `R` (set up, waiting to exec).
    set_up: bool,
    /// The folder holding the memory controller is left for berthd to remove (annotation
    /// [`crate::cgroups::DEFER_MEMORY_ANNOTATION`]).
    defer_memory: bool,
}

/// Moves `pid` into `cgroup` (unless the init joins by itself), then tells it so on `ready`
/// (its `cgroup_ready` pipe). On failure the init is killed, so its set-up never completes.
fn place(cgroup: &Cgroup, pid: i32, mut ready: File, by_init: bool) -> Result<(), RuntimeError> {
    if by_init {
        let _ = ready.write_all(b"G");
        return Ok(());
    }
    if let Err(e) = cgroup.add(pid) {
        // SAFETY: killing the child we just created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(e);
    }
    let _ = ready.write_all(b"G");
    Ok(())
}

/// Reads the init's set-up report from `status`: `R`, or its `<code>:<message>` failure — a
/// command not found (127) or not executable (126) as [`RuntimeError::Exec`].
fn await_set_up(status: &mut File) -> Result<(), RuntimeError> {
    let mut b = [0u8; 1];
    match status.read(&mut b) {
        Ok(1) if b[0] == b'R' => Ok(()),
        _ => {
            let mut rest = String::new();
            let _ = status.read_to_string(&mut rest);
            let msg = format!("{}{}", String::from_utf8_lossy(&b).trim_matches('\0'), rest);
            match msg.split_once(':') {
                Some((c, text)) if c == "126" || c == "127" => Err(RuntimeError::Exec {
                    code: c.parse().unwrap_or(127),
                    message: text.to_string(),
                }),
                Some((_, text)) => Err(RuntimeError::Invalid(format!(
                    "container init failed: {text}"
                ))),
                None => Err(RuntimeError::Invalid(format!(
                    "container init failed: {msg}"
                ))),
            }
        }
    }
}

/// The native runtime.
pub struct NativeRuntime {
    hierarchy: Hierarchy,
    procs: Mutex<HashMap<String, Proc>>,
}

impl Default for NativeRuntime {
    fn default() -> Self {
        Self::new(Hierarchy::detect())
    }
}

fn file(fd: i32) -> File {
    // SAFETY: the fd was just created by pipe() and is owned by the caller from now on.
    File::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn clone_flags(spec: &Value) -> CloneFlags {
    let mut f = CloneFlags::empty();
    for n in spec["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if n.get("path").and_then(Value::as_str).is_some() {
            continue;
        }
        f |= match n["type"].as_str().unwrap_or("") {
            "pid" => CloneFlags::CLONE_NEWPID,
            "mount" => CloneFlags::CLONE_NEWNS,
            "uts" => CloneFlags::CLONE_NEWUTS,
            "ipc" => CloneFlags::CLONE_NEWIPC,
            "network" => CloneFlags::CLONE_NEWNET,
            _ => CloneFlags::empty(),
        };
    }
    f
}

impl NativeRuntime {
    /// A runtime using the cgroup `hierarchy`.
    pub fn new(hierarchy: Hierarchy) -> Self {
        NativeRuntime {
            hierarchy,
            procs: Mutex::new(HashMap::new()),
        }
    }

    /// The pty master of a terminal container created by this runtime (once).
    pub fn take_console(&self, id: &str) -> Option<OwnedFd> {
        self.procs.lock().ok()?.get_mut(id)?.console.take()
    }

    /// The cgroup of a container created by this runtime.
    pub fn cgroup(&self, id: &str) -> Option<Cgroup> {
        self.procs.lock().ok()?.get(id).map(|p| p.cgroup.clone())
    }

    /// Like `Runtime::create`, but returns as soon as the init is cloned: moving it into its
    /// cgroup (a cgroup v1 migration waits for an RCU grace period, ~10 ms here) and its
    /// set-up go on meanwhile, so the caller can report readiness and berthd can join networks
    /// in parallel. `start` waits for both; a set-up failure is reported by `start`.
    pub fn create_early(&self, id: &str, spec: &Spec, stdio: StdioFds) -> DriverResult<i32> {
        let v = spec_json(spec)?;
        Ok(self.create_inner(id, &v, stdio, true)?)
    }

    fn create_inner(
        &self,
        id: &str,
        spec: &Value,
        stdio: StdioFds,
        early: bool,
    ) -> Result<i32, RuntimeError> {
        let cg_path = spec["linux"]["cgroupsPath"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| crate::cgroups::default_path(id));
        let cgroup = Cgroup::new(self.hierarchy.clone(), &cg_path);
        let limits = Limits::from_resources(&spec["linux"]["resources"]);
        cgroup.create_with(!limits.cpuset_cpus.is_empty() || !limits.cpuset_mems.is_empty())?;
        cgroup.apply(&limits)?;
        let (ready_r, ready_w) = init::pipe().map_err(RuntimeError::sys("creating a pipe"))?;
        let (start_r, start_w) = init::pipe().map_err(RuntimeError::sys("creating a pipe"))?;
        let (status_r, status_w) = init::pipe().map_err(RuntimeError::sys("creating a pipe"))?;
        let tty = spec["process"]["terminal"].as_bool().unwrap_or(false);
        let console = if tty {
            let (a, b) = nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map_err(RuntimeError::errno("creating the console socket"))?;
            Some((a, b))
        } else {
            None
        };
        let io = InitIo {
            console: console.as_ref().map(|(_, b)| b.as_raw_fd()).unwrap_or(-1),
            stdio: [stdio.stdin, stdio.stdout, stdio.stderr],
            tty,
            cgroup_ready: ready_r,
            start: start_r,
            status: status_w,
            staged: berth_core::stage::current(),
        };
        // A process whose children go into another pid namespace cannot make threads
        // (clone(2): EINVAL), so the placement is done inline then.
        let early = early && !join_pid_namespace(spec)?;
        let mut stack = vec![0u8; 256 * 1024];
        // cgroup v1: the init moves its one thread itself (`0` into each hierarchy's `tasks`),
        // which skips the global threadgroup lock a `cgroup.procs` write takes — and the RCU
        // grace period (~10 ms) that lock's writer side waits for.
        let self_join: Vec<std::path::PathBuf> = if cgroup.is_v2() {
            Vec::new()
        } else {
            cgroup.task_dirs().iter().map(|d| d.join("tasks")).collect()
        };
        let by_init = !self_join.is_empty();
        let spec_c = spec.clone();
        let cb = Box::new(move || -> isize { init::run(&spec_c, io, &self_join) });
        // SAFETY: the monitor calling us is single-threaded, so the child (a copy of this
        // process, no CLONE_VM) may allocate freely; the stack outlives the clone call.
        let pid =
            unsafe { nix::sched::clone(cb, &mut stack, clone_flags(spec), Some(libc::SIGCHLD)) }
                .map_err(RuntimeError::errno("cloning the container init"))?;
        let pid = pid.as_raw();
        for fd in [ready_r, start_r, status_w] {
            drop(init::owned(fd));
        }
        let ready = file(ready_w);
        let mut status = file(status_r);
        let start = file(start_w);
        let placing = if early && !by_init {
            let (cg, p) = (cgroup.clone(), pid);
            let spawned = std::thread::Builder::new()
                .name("cgroup-place".into())
                .spawn(move || place(&cg, p, ready, false));
            match spawned {
                Ok(h) => Some(h),
                Err(e) => {
                    // SAFETY: killing the child we just created (its ready pipe is gone).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                    let _ = cgroup.remove();
                    return Err(RuntimeError::Sys {
                        context: "starting the cgroup placement thread".into(),
                        source: e,
                    });
                }
            }
        } else {
            if let Err(e) = place(&cgroup, pid, ready, by_init) {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                let _ = cgroup.remove();
                return Err(e);
            }
            None
        };
        let master = console.and_then(|(ours, theirs)| {
            drop(theirs);
            crate::console::receive(ours.as_raw_fd())
        });
        if !early {
            if let Err(e) = await_set_up(&mut status) {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                let _ = cgroup.remove();
                return Err(e);
            }
        }
        if let Ok(mut p) = self.procs.lock() {
            p.insert(
                id.to_string(),
                Proc {
                    console: master,
                    pid,
                    start: Some(start),
                    status: Some(status),
                    cgroup,
                    placing,
                    set_up: !early,
                    defer_memory: spec["annotations"][crate::cgroups::DEFER_MEMORY_ANNOTATION]
                        .as_str()
                        == Some("true"),
                },
            );
        }
        Ok(pid)
    }

    /// Why the init of `id`, which ended before `start`, failed its set-up (the error `start`
    /// would have returned: [`DriverError::Exec`] for a command that cannot be executed);
    /// `None` when it had reported itself set up (it was killed afterwards) or said nothing.
    /// The init is not released.
    pub fn set_up_failure(&self, id: &str) -> Option<DriverError> {
        let (mut status, set_up) = {
            let mut procs = self.procs.lock().ok()?;
            let p = procs.get_mut(id)?;
            (p.status.take()?, p.set_up)
        };
        if set_up {
            return None;
        }
        await_set_up(&mut status)
            .err()
            .map(DriverError::from)
            .filter(|e| !e.message().trim_end().ends_with("container init failed:"))
    }

    fn start_inner(&self, id: &str) -> Result<(), RuntimeError> {
        let (mut start, mut status, placing, set_up) = {
            let mut procs = self
                .procs
                .lock()
                .map_err(|_| RuntimeError::Invalid("runtime lock poisoned".into()))?;
            let p = procs
                .get_mut(id)
                .ok_or_else(|| RuntimeError::Invalid(format!("no such container {id}")))?;
            match (p.start.take(), p.status.take()) {
                (Some(a), Some(b)) => (a, b, p.placing.take(), p.set_up),
                _ => {
                    return Err(RuntimeError::Invalid(format!(
                        "container {id} already started"
                    )))
                }
            }
        };
        if let Some(h) = placing {
            h.join()
                .unwrap_or_else(|_| Err(RuntimeError::Invalid("cgroup placement failed".into())))?;
        }
        if !set_up {
            await_set_up(&mut status)?;
        }
        // The command was found and checked before `R` (see `init::run`): released, the init
        // only execs, so `start` does not wait for it. A failure of the exec itself shows as
        // the container's exit code and on its stderr.
        start
            .write_all(b"S")
            .map_err(RuntimeError::sys("releasing the container init"))
    }

    fn pid(&self, id: &str) -> DriverResult<i32> {
        self.procs
            .lock()
            .ok()
            .and_then(|p| p.get(id).map(|p| p.pid))
            .ok_or_else(|| DriverError::NotFound(format!("no such container: {id}")))
    }
}

/// With a pid namespace path (`--pid container:<id>`), enters it so the init is created in
/// it (true). This changes the namespace of the caller's future children: meant for the
/// monitor, which creates one container.
fn join_pid_namespace(spec: &Value) -> Result<bool, RuntimeError> {
    let path = spec["linux"]["namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["type"] == "pid"))
        .and_then(|n| n["path"].as_str());
    let Some(path) = path else {
        return Ok(false);
    };
    let f = File::open(path).map_err(RuntimeError::sys(format!("opening {path}")))?;
    nix::sched::setns(f, CloneFlags::CLONE_NEWPID)
        .map_err(RuntimeError::errno(format!("joining pid namespace {path}")))?;
    Ok(true)
}

fn spec_json(spec: &Spec) -> DriverResult<Value> {
    serde_json::to_value(spec).map_err(|e| DriverError::InvalidInput(format!("encoding spec: {e}")))
}

impl Runtime for NativeRuntime {
    fn name(&self) -> String {
        "native".into()
    }

    /// Returns once the init is cloned (see [`NativeRuntime::create_early`]).
    fn create(&self, id: &str, _bundle: &Path, spec: &Spec, stdio: StdioFds) -> DriverResult<i32> {
        self.create_early(id, spec, stdio)
    }

    fn start(&self, id: &str) -> DriverResult<()> {
        self.start_inner(id).map_err(DriverError::from)
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> DriverResult<()> {
        if all {
            if let Some(cg) = self.cgroup(id) {
                for p in cg.pids() {
                    // SAFETY: kill(2) with integer arguments.
                    unsafe { libc::kill(p, signal) };
                }
                return Ok(());
            }
        }
        let pid = self.pid(id)?;
        // SAFETY: kill(2) with integer arguments.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(DriverError::io(
                format!("signalling {pid}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    fn delete(&self, id: &str) -> DriverResult<()> {
        let p = self.procs.lock().ok().and_then(|mut p| p.remove(id));
        if let Some(mut p) = p {
            if let Some(h) = p.placing.take() {
                let _ = h.join();
            }
            match p.defer_memory {
                true => p.cgroup.remove_but_memory()?,
                false => p.cgroup.remove()?,
            }
        }
        Ok(())
    }

    fn state(&self, id: &str) -> DriverResult<State> {
        let (pid, created, cgroup) = {
            let procs = self
                .procs
                .lock()
                .map_err(|_| DriverError::Io("runtime lock poisoned".into()))?;
            let p = procs
                .get(id)
                .ok_or_else(|| DriverError::NotFound(format!("no such container: {id}")))?;
            (p.pid, p.start.is_some(), p.cgroup.clone())
        };
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z ") && !s.contains(") X "))
            .unwrap_or(false);
        let status = match (alive, created) {
            (false, _) => Status::Stopped,
            (true, true) => Status::Created,
            (true, false) if cgroup.is_frozen() => Status::Paused,
            (true, false) => Status::Running,
        };
        Ok(State {
            id: id.into(),
            status,
            pid: if alive { pid } else { 0 },
        })
    }

    fn pause(&self, id: &str) -> DriverResult<()> {
        let cg = self
            .cgroup(id)
            .ok_or_else(|| DriverError::NotFound(id.into()))?;
        Ok(cg.freeze(true)?)
    }

    fn resume(&self, id: &str) -> DriverResult<()> {
        let cg = self
            .cgroup(id)
            .ok_or_else(|| DriverError::NotFound(id.into()))?;
        Ok(cg.freeze(false)?)
    }

    fn take_console(&self, id: &str) -> Option<OwnedFd> {
        NativeRuntime::take_console(self, id)
    }

    fn set_up_error(&self, id: &str) -> Option<DriverError> {
        self.set_up_failure(id)
    }
}

/// The plugin name under which `runtime-native` exports [`open`] (and the monitor registers it).
pub const PLUGIN: &str = "berth-runtime-native";

/// The plugin constructor (`runtime-native` exports it as driver `native`): the configuration
/// is empty; the cgroup hierarchy is the host's.
pub fn open(_config: &Value) -> DriverResult<Box<dyn Runtime>> {
    Ok(Box::new(NativeRuntime::default()))
}
