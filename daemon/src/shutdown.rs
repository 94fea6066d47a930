//! The daemon's one shutdown token: `main` triggers it on SIGTERM/SIGINT, and everything that
//! must stop then holds a clone — the listeners (stop accepting), their connections (finish
//! the request in flight), long streams such as `/events` (end) — and waits on
//! [`Shutdown::fired`]. Work that shutdown should wait for holds a [`Hold`]; `main` waits a
//! bounded time for the last one to go ([`Shutdown::drained`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Cheap to clone; all clones are the same token.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    held: Arc<(AtomicUsize, Notify)>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
            held: Arc::new((AtomicUsize::new(0), Notify::new())),
        }
    }
}

impl Shutdown {
    /// Starts the shutdown: every [`Shutdown::fired`] future completes.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Completes once the shutdown started — at once if it already has. Owns what it needs,
    /// so it can be made before a task is spawned and awaited (pinned) in its `select!`s.
    pub fn fired(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means every sender is gone: no trigger can come any more, so never.
            if rx.wait_for(|started| *started).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Marks work that shutdown waits for, until the [`Hold`] is dropped.
    pub fn hold(&self) -> Hold {
        self.held.0.fetch_add(1, Ordering::SeqCst);
        Hold(self.held.clone())
    }

    /// Waits until no [`Hold`] is left, or `max` passed. Returns how many are left.
    pub async fn drained(&self, max: Duration) -> usize {
        let wait = async {
            loop {
                let notified = self.held.1.notified();
                if self.held.0.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(max, wait).await;
        self.held.0.load(Ordering::SeqCst)
    }
}

/// Work in flight that [`Shutdown::drained`] waits for (a client connection).
pub struct Hold(Arc<(AtomicUsize, Notify)>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fired_completes_after_and_before_the_trigger() {
        let s = Shutdown::default();
        let early = tokio::spawn(s.fired());
        tokio::task::yield_now().await;
        assert!(!early.is_finished(), "not before the trigger");
        s.trigger();
        let waited = tokio::time::timeout(Duration::from_secs(5), early).await;
        assert!(
            matches!(waited, Ok(Ok(()))),
            "a waiter made before the trigger ends"
        );
        // Made after the trigger: completes at once (a `changed()` would wait for ever).
        let late = tokio::time::timeout(Duration::from_secs(5), s.fired()).await;
        assert!(late.is_ok());
    }

    #[tokio::test]
    async fn drained_counts_holds() {
        let s = Shutdown::default();
        let h = s.hold();
        assert_eq!(s.drained(Duration::from_millis(20)).await, 1);
        drop(h);
        assert_eq!(s.drained(Duration::from_secs(5)).await, 0);
    }
}
