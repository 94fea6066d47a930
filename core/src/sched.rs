//! The scheduling policy of berth's own processes, and the one containers get back.
//!
//! berthd and its monitors run `SCHED_BATCH`: the same share of the CPU as any normal
//! process, but waking up does not preempt the one running. Their work (a request, a
//! container's set-up or clean-up) is short and mostly runs while the client that asked for
//! it waits anyway; on a small host, preempting that client whenever a background step wakes
//! only slows the client down (about 1 ms of `docker run`'s ~30 here). Containers are not
//! berth's: their processes get the normal policy back before they exec.

/// Sets the calling thread's policy; threads and processes it creates later inherit it.
fn set(policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler(2) on the calling thread (0) with an initialised
    // sched_param; both policies take priority 0. Async-signal-safe (one system call), so
    // it may run between fork and exec.
    unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
}

/// `SCHED_BATCH` for the calling thread and what it creates from now on. Best effort.
pub fn batch() -> bool {
    set(libc::SCHED_BATCH)
}

/// Back to the normal policy (`SCHED_OTHER`), for a container's process before its exec.
pub fn normal() -> bool {
    set(libc::SCHED_OTHER)
}
