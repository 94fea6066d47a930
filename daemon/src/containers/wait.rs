//! Waiting for a container to stop, exit or be removed (`docker wait`). Never takes the op
//! lock: it watches [`Container::events`].

use super::Container;
use crate::error::{ServiceError, ServiceResult};
use std::sync::Arc;

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Not running (at once if it is not): Docker's default.
    NotRunning,
    /// The next exit (or removal).
    NextExit,
    /// Its removal.
    Removed,
}

impl Condition {
    /// Docker's names (`not-running` or empty, `next-exit`, `removed`).
    pub fn parse(s: &str) -> ServiceResult<Condition> {
        match s {
            "" | "not-running" => Ok(Condition::NotRunning),
            "next-exit" => Ok(Condition::NextExit),
            "removed" => Ok(Condition::Removed),
            _ => Err(ServiceError::bad_request(format!(
                "invalid condition: \"{s}\""
            ))),
        }
    }
}

/// Waits until `cond` holds for `c`; its exit code then. The starting point is taken now,
/// before the returned future runs (so a `next-exit` registered before a start counts that
/// start's exit). `None` if the container's events end.
pub fn wait(
    c: &Arc<Container>,
    cond: Condition,
) -> impl std::future::Future<Output = Option<i64>> + Send + 'static {
    let mut rx = c.events.subscribe();
    let start = rx.borrow().clone();
    let c = c.clone();
    async move {
        loop {
            let now = rx.borrow().clone();
            let done = match cond {
                Condition::NextExit => now.exits > start.exits || now.removed,
                Condition::Removed => now.removed,
                Condition::NotRunning => !c.running() || now.removed,
            };
            if done {
                return Some(if now.exits > 0 || now.removed {
                    now.exit_code
                } else {
                    c.view(|r| r.state.exit_code)
                });
            }
            rx.changed().await.ok()?;
        }
    }
}
