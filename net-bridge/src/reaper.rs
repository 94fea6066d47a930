//! Deferred deletion of host-side veths whose container namespace is already gone or going.
//!
//! Deleting a veth waits in the kernel for RCU grace periods (~10 ms here), and when the
//! container's last process has exited the kernel deletes the pair by itself anyway as it
//! dismantles the namespace. So `leave` on that path does not wait: it hands the host side's
//! interface index to one long-lived thread with its own netlink socket, which deletes it
//! (gone already: nothing to do). The index, not the name, so that a new endpoint that took
//! the same name in the meantime is never touched.

use crate::link;
use crate::nl::Socket;
use std::io;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

/// The deleting thread's queue; the thread starts with the first request.
#[derive(Default)]
pub struct Reaper {
    tx: Mutex<Option<Sender<u32>>>,
}

impl Reaper {
    /// Queues link `index` for deletion.
    pub fn delete_later(&self, index: u32) -> io::Result<()> {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tx.as_ref() {
            if t.send(index).is_ok() {
                return Ok(());
            }
        }
        let (t, rx) = channel::<u32>();
        let mut sock = Socket::open()?;
        std::thread::Builder::new()
            .name("veth-reaper".into())
            .spawn(move || {
                for idx in rx {
                    if let Err(e) = link::delete_index(&mut sock, idx) {
                        eprintln!("berth-net-bridge: deleting link {idx}: {e}");
                    }
                }
            })?;
        t.send(index)
            .map_err(|_| io::Error::other("veth reaper stopped"))?;
        *tx = Some(t);
        Ok(())
    }
}
