//! A container's or exec's terminal follows ours: its size is sent at once and again on every
//! `SIGWINCH` (`POST <path>?h=<rows>&w=<cols>`), as the docker CLI does.

use super::create::term_size;
use berth_api::Client;
use nix::sys::signal::{SigSet, Signal};

/// Sends our terminal's size to `path` (`/containers/ID/resize` or `/exec/ID/resize`) now and
/// whenever it changes. Call it before spawning other threads: `SIGWINCH` is blocked in this
/// thread (and so in threads spawned later) and taken by a watcher thread with `sigwait`.
pub fn follow_size(c: &Client, path: &str) {
    let (mut c, path) = (c.clone(), path.to_string());
    let resize = move |c: &mut Client| {
        if let Some((h, w)) = term_size() {
            let _ = c.request("POST", &format!("{path}?h={h}&w={w}"), &[], None);
        }
    };
    resize(&mut c);
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        while set.wait().is_ok() {
            resize(&mut c);
        }
    });
}
