//! Memory given back when the daemon goes idle: once no API request has arrived for [`IDLE`]
//! after a burst of them, free heap goes back to the kernel and the code pages the requests
//! touched are dropped ([`berth_runtime::memory::release_startup_pages`]). They stay in the
//! page cache: the next request faults back in what it uses (minor faults, no disk reads).
//! An idle daemon is never woken for this: the trimmer waits for a request first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How long without a new request counts as idle.
pub const IDLE: Duration = Duration::from_secs(1);

/// Requests begun since start.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// A request arrived since the last trim (the trimmer was woken).
static ARMED: AtomicBool = AtomicBool::new(false);
static WAKE: Notify = Notify::const_new();

/// Notes that a request begins.
pub fn request() {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    if !ARMED.swap(true, Ordering::AcqRel) {
        WAKE.notify_one();
    }
}

/// Runs for the daemon's life: after each burst of requests, once idle, gives memory back.
pub async fn trimmer() {
    loop {
        WAKE.notified().await;
        let mut seen = REQUESTS.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(IDLE).await;
            let now = REQUESTS.load(Ordering::Relaxed);
            if now == seen {
                break;
            }
            seen = now;
        }
        ARMED.store(false, Ordering::Release);
        let _ = tokio::task::spawn_blocking(berth_runtime::memory::release_startup_pages).await;
    }
}
