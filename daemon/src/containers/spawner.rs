//! Spawning container monitors, one ahead of need.
//!
//! Starting `berth-monitor` costs about 2 ms before it does any work for its container: the
//! exec, the dynamic loader, Rust's start-up, and the fork with which it leaves berthd. So
//! berthd keeps one monitor spawned ahead: already detached, blocked reading its stdin (a pipe
//! whose other end only berthd holds, close-on-exec). Giving it a container is one line on
//! that pipe, the container's state folder; it answers on its ready pipe exactly as a monitor
//! spawned for that folder would (monitor/PROTOCOL.md, "Spawned ahead"). A new one is spawned
//! in the background once the container that took the last one has exited, or has run for
//! 100 ms (an exec at the same time as the container's own set-up, run and exit slows them).
//! When berthd exits, however it exits, the pipe closes and the waiting monitor ends; it also
//! watches a pidfd of berthd, so it ends even should the pipe's write end have leaked.

use super::small_table::{SmallTable, SpawnError};
use crate::error::ServiceError;
use crate::state::Ctx;
use std::io::{PipeReader, PipeWriter, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A monitor spawned ahead: where its job goes, and where its ready line comes from.
struct Idle {
    job: PipeWriter,
    ready: PipeReader,
}

/// Hands out monitors, keeping one spawned ahead.
pub struct Spawner {
    idle: Mutex<Option<Idle>>,
    refilling: AtomicBool,
    /// The thread monitors are spawned from ([`super::small_table`]), if it started.
    table: Option<SmallTable>,
}

impl Spawner {
    /// A spawner with its spawning thread started.
    pub fn new() -> Spawner {
        Spawner {
            idle: Mutex::new(None),
            refilling: AtomicBool::new(false),
            table: SmallTable::start(),
        }
    }

    /// Spawns `berth-monitor` with `args`, its stdout on a new pipe (its ready fd) and its
    /// stdin on `stdin` (else /dev/null), and reaps the process that leaves once the monitor
    /// has detached.
    fn spawn(
        &self,
        args: &[&std::ffi::OsStr],
        stdin: Option<OwnedFd>,
    ) -> Result<PipeReader, ServiceError> {
        let (r, w) = std::io::pipe().map_err(|e| ServiceError::internal(format!("pipe: {e}")))?;
        let w = OwnedFd::from(w);
        if let Some(t) = &self.table {
            match t.spawn(args, stdin.as_ref(), &w) {
                Ok(()) => return Ok(r),
                Err(SpawnError::Failed(e)) => return Err(ServiceError::internal(e)),
                // Spawned from this thread's table instead.
                Err(SpawnError::Gone(_)) => {}
            }
        }
        // With no `pre_exec` hook, std spawns it with posix_spawn (a vfork-like clone) instead
        // of forking this large, threaded process.
        let mut child = super::monitor_exe::command()
            .args(args)
            .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(w)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ServiceError::internal(format!("starting berth-monitor: {e}")))?;
        let _ = child.wait();
        Ok(r)
    }

    /// A monitor for the container whose state folder is `sdir`; returns its ready pipe.
    /// Blocking.
    pub fn monitor(&self, sdir: &Path) -> Result<PipeReader, ServiceError> {
        let idle = self.idle.lock().ok().and_then(|mut i| i.take());
        if let Some(Idle { mut job, ready }) = idle {
            let line = format!("{}\n", sdir.display());
            if job.write_all(line.as_bytes()).is_ok() {
                return Ok(ready);
            }
        }
        self.spawn(
            &[sdir.as_os_str(), "--ready-fd".as_ref(), "1".as_ref()],
            None,
        )
    }

    /// Spawns a monitor ahead unless one is waiting (or being spawned). Blocking.
    pub fn refill(&self) {
        let has = self.idle.lock().map(|i| i.is_some()).unwrap_or(true);
        if has || self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let made = std::io::pipe().ok().and_then(|(job_r, job_w)| {
            let args = ["--pool".as_ref(), "--ready-fd".as_ref(), "1".as_ref()];
            self.spawn(&args, Some(job_r.into()))
                .ok()
                .map(|ready| Idle { job: job_w, ready })
        });
        if let (Some(m), Ok(mut idle)) = (made, self.idle.lock()) {
            *idle = Some(m);
        }
        self.refilling.store(false, Ordering::Release);
    }
}

/// Spawns a monitor ahead, `after` from now, on the blocking pool (unless one is waiting by
/// then).
pub fn refill_later(ctx: &Ctx, after: std::time::Duration) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if !after.is_zero() {
            tokio::time::sleep(after).await;
        }
        let _ = tokio::task::spawn_blocking(move || ctx.containers.spawner.refill()).await;
    });
}
