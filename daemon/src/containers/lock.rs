//! The container's op lock ([`Container::op`]): the rules every lifecycle verb follows.
//!
//! Every verb that changes a container's state — start, stop, kill, restart, pause, unpause,
//! rename, update, remove, exec's start — runs under its op lock, taken through [`op`], so an
//! `rm` cannot delete the rw layer under a starting monitor, a rename cannot resurrect a
//! removed container's record, and `Paused` cannot outlive `Running`. The rules:
//!
//! - **Order**: `op` before `prep` ([`Container::prep`], the preparation of [`super::prestart`]);
//!   the record's mutex and the `names` mutex are taken after both and never held across an
//!   `.await`. Never two containers' op locks at once: a verb that reads another container
//!   (`--network container:X` at start) reads its record only.
//! - **Never across a client stream**: attach, logs, wait and exec's output are served without
//!   it; exec holds it only while its process is spawned.
//! - **Exits do not take it**: the exit of a container is recorded by [`super::exit::on_exit`]
//!   without the lock, since `stop`, `restart` and `rm -f` hold it while they wait for that
//!   exit. In exchange [`op`] waits until an exit being recorded is over
//!   ([`super::Lifecycle::exiting`]), so a verb never sees a half-recorded exit, and refuses a
//!   container already removed.
//! - **Restart is one hold**: stop then start, with the lock held throughout
//!   ([`super::start::start_held`], [`super::stop::stop_held`]), so no other verb slips between.
//! - **kill and `rm -f` reach a stopping container**: while a stop holds the lock waiting for
//!   the exit (up to its timeout, or for ever with `-t -1`), they signal alongside it
//!   ([`op_or_stopping`]) instead of waiting. A start in progress they do wait for: every step
//!   of a start is bounded (the monitor's answers time out, as do the network's), none waits
//!   for anything a kill would do, and after it the container is either running (and is
//!   killed) or not (409 "is not running", as Docker answers a kill of a stopped container).
//! - **Waiters**: `wait` watches [`Container::events`] and never takes the lock.

use super::Container;
use crate::error::{ServiceError, ServiceResult};
use std::time::Duration;

/// The held op lock of a container.
pub type OpGuard<'a> = tokio::sync::MutexGuard<'a, ()>;

/// How long a verb waits for an exit being recorded before it goes on anyway (recording an
/// exit leaves the networks and detaches the rootfs: milliseconds, unless a driver hangs).
const EXIT_PATIENCE: Duration = Duration::from_secs(30);

/// Takes `c`'s op lock for a verb, once any exit being recorded is over; Docker's "No such
/// container" when `c` was removed meanwhile.
pub async fn op(c: &Container) -> ServiceResult<OpGuard<'_>> {
    let g = c.op.lock().await;
    settled(c).await;
    if c.events.borrow().removed {
        return Err(gone(c));
    }
    Ok(g)
}

/// `c`'s op lock as [`op`]; or `None` as soon as a stop holding it is waiting for the exit
/// (the caller then signals the container alongside that stop).
pub async fn op_or_stopping(c: &Container) -> ServiceResult<Option<OpGuard<'_>>> {
    let mut stopping = c.stopping.subscribe();
    tokio::select! {
        biased;
        g = op(c) => g.map(Some),
        _ = stopping.wait_for(|s| *s) => Ok(None),
    }
}

/// Waits (bounded) until no exit of `c` is being recorded.
pub async fn settled(c: &Container) {
    let mut rx = c.events.subscribe();
    let _ = tokio::time::timeout(EXIT_PATIENCE, rx.wait_for(|l| !l.exiting)).await;
}

/// Docker's answer about a container that is gone.
pub fn gone(c: &Container) -> ServiceError {
    ServiceError::not_found(format!("No such container: {}", c.id))
}

/// Marks a stop holding the op lock as waiting for the exit until dropped.
pub struct Stopping<'a>(&'a Container);

impl<'a> Stopping<'a> {
    /// Announces the wait (see [`op_or_stopping`]).
    pub fn begin(c: &'a Container) -> Stopping<'a> {
        c.stopping.send_replace(true);
        Stopping(c)
    }
}

impl Drop for Stopping<'_> {
    fn drop(&mut self) {
        self.0.stopping.send_replace(false);
    }
}
