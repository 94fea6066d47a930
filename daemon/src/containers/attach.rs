//! Attaching to a container's streams (`docker attach`, and `docker run`'s attach before its
//! start): the attach is registered with the container until its start wires it, or wired to
//! the running container's monitor at once. Never takes the op lock (it would be held across
//! a client's stream); the decision is made under [`Container::pending`], which `start` takes
//! after recording the container running.

use super::{exit, streams, Container};
use crate::state::Ctx;
use std::sync::Arc;

/// Connects `p` (`None`: only the logs so far are wanted) to `c`'s streams: now if it runs,
/// else at its next start.
pub fn attach(ctx: &Ctx, c: &Arc<Container>, p: Option<streams::PendingAttach>) {
    let pending = p.and_then(|p| match c.pending.lock() {
        Ok(mut pend) if !c.running() => {
            pend.push(p);
            None
        }
        _ => Some(p),
    });
    if let Some(p) = pending {
        let sock = ctx.containers.monitor_sock(&c.id);
        tokio::spawn(streams::wire(sock, p, c.tty()));
    }
    ctx.events
        .publish("container", "attach", &c.id, exit::attrs(c));
}
