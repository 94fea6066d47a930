//! berth-monitor: supervises one container (see `monitor/PROTOCOL.md`), or runs one `exec`.
//!
//! `berth-monitor <state-dir> --ready-fd N` (or `--pool --ready-fd N`, spawned ahead and told
//! its state folder on stdin) detaches from berthd, creates the container through
//! the runtime, reports readiness, then serves its socket (start, attach, resize, kill, wait,
//! pause, resume, state), writes the json-file log and, when the container's init exits,
//! records `exit.json` and cleans up. `berth-monitor exec --pid P --spec FILE` joins a running
//! container and runs one process in it; `berth-monitor pod-init --ready-fd N` becomes the
//! init of a CRI pod's PID namespace. No async runtime: one poll(2) loop.

mod config;
mod lifeline;
mod log;
mod mountns;
mod pod_init;
mod runtimes;
mod server;
mod startup;

use std::process::exit;

fn main() {
    // Run from berthd's sealed copy (`/proc/self/fd/N`), the kernel named us `N`.
    // SAFETY: prctl with a NUL-terminated name that outlives the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-monitor".as_ptr(), 0, 0, 0) };
    // An empty signal mask whatever the spawner blocked (berthd spawns monitors from a thread
    // that blocks every signal, and a spawn keeps the mask); what the monitor reads through a
    // signalfd it blocks itself.
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("exec") => exit(exec_mode(&args[1..])),
        Some("pod-init") => exit(pod_init::run(ready_fd(&args))),
        Some("--pool") => exit(startup::pooled(ready_fd(&args))),
        Some(dir) if !dir.starts_with('-') => {
            exit(startup::run(std::path::Path::new(dir), ready_fd(&args)))
        }
        _ => {
            eprintln!("usage: berth-monitor <state-dir> --ready-fd N | berth-monitor --pool --ready-fd N | berth-monitor exec --pid PID --spec FILE | berth-monitor pod-init --ready-fd N [--pod ID]");
            exit(2)
        }
    }
}

/// The value of `--ready-fd` (-1 when absent).
fn ready_fd(args: &[String]) -> i32 {
    args.iter()
        .position(|a| a == "--ready-fd")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1)
}

fn exec_mode(args: &[String]) -> i32 {
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (Some(pid), Some(spec)) = (
        get("--pid").and_then(|p| p.parse::<i32>().ok()),
        get("--spec"),
    ) else {
        eprintln!("berth-monitor exec: --pid and --spec are required");
        return 2;
    };
    let process: serde_json::Value = match std::fs::read(&spec)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(v) => v,
        None => {
            eprintln!("berth-monitor exec: cannot read {spec}");
            return 126;
        }
    };
    let status = get("--status-fd").and_then(|s| s.parse::<i32>().ok());
    berth_runtime::exec::exec_into(pid, &process, status)
}
