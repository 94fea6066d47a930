//! Waiting for a container to stop, exit or be removed (`docker wait`).

use crate::server::http::{self, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use serde_json::{json, Value};

pub async fn wait(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let cond = req
        .query
        .get("condition")
        .unwrap_or("not-running")
        .to_string();
    if !["not-running", "next-exit", "removed", ""].contains(&cond.as_str()) {
        return Err(ApiError::bad_request(format!(
            "invalid condition: \"{cond}\""
        )));
    }
    let mut rx = c.events.subscribe();
    let start = rx.borrow().clone();
    let (tx, resp) = http::stream("application/json");
    tokio::spawn(async move {
        loop {
            let now = rx.borrow().clone();
            let done = match cond.as_str() {
                "next-exit" => now.exits > start.exits || now.removed,
                "removed" => now.removed,
                _ => !c.running() || now.removed,
            };
            if done {
                let code = if now.exits > 0 || now.removed {
                    now.exit_code
                } else {
                    c.record()
                        .pointer("/State/ExitCode")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                };
                let body = json!({"StatusCode": code, "Error": null});
                let _ = tx.send(bytes::Bytes::from(format!("{body}\n"))).await;
                return;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(resp)
}
