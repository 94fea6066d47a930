//! Stopping a container: its stop signal, then SIGKILL after a timeout.

use super::{exit, start, Container};
use crate::server::http::{empty, ApiError, ApiResult};
use crate::server::router::Req;
use crate::state::Ctx;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// Stops `c`: its stop signal, then SIGKILL after `timeout` seconds.
pub async fn stop(
    ctx: &Ctx,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<i32>,
) -> Result<bool, ApiError> {
    if !c.running() {
        return Ok(false);
    }
    c.update(|r| r["ManuallyStopped"] = json!(true));
    let _ = ctx.containers.save(c);
    let sig = signal.unwrap_or_else(|| start::stop_signal(c));
    let t = timeout
        .or_else(|| {
            c.record()
                .pointer("/Config/StopTimeout")
                .and_then(Value::as_i64)
        })
        .unwrap_or(10);
    let mut rx = c.events.subscribe();
    send_signal(ctx, c, sig).await?;
    publish_kill(ctx, c, sig);
    let wait = async {
        while rx.borrow().running {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    if t < 0 {
        wait.await;
    } else if tokio::time::timeout(std::time::Duration::from_secs(t as u64), wait)
        .await
        .is_err()
    {
        send_signal(ctx, c, libc::SIGKILL).await?;
        publish_kill(ctx, c, libc::SIGKILL);
        let mut rx = c.events.subscribe();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while rx.borrow().running {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    ctx.events
        .publish("container", "stop", &c.id, exit::attrs(c));
    Ok(true)
}

/// The `kill` event (`signal` attribute), which Docker also emits for each signal of a stop.
pub fn publish_kill(ctx: &Ctx, c: &Container, sig: i32) {
    let mut a = exit::attrs(c);
    a.insert("signal".into(), sig.to_string());
    ctx.events.publish("container", "kill", &c.id, a);
}

pub async fn send_signal(ctx: &Ctx, c: &Container, sig: i32) -> Result<(), ApiError> {
    let sock = ctx.containers.monitor_sock(&c.id);
    let r = tokio::task::spawn_blocking(move || {
        start::monitor_cmd(
            &sock,
            &json!({"cmd": "kill", "signal": sig, "all": sig == libc::SIGKILL}),
        )
    })
    .await?;
    match r {
        Ok(v) if v["ok"].as_bool() == Some(true) => Ok(()),
        Ok(v) => Err(ApiError::internal(
            v["error"].as_str().unwrap_or("kill failed").to_string(),
        )),
        Err(e) => Err(ApiError::conflict(format!(
            "Container {} is not running ({e})",
            c.id
        ))),
    }
}

pub async fn stop_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let t = req.query.int("t")?.or(req.query.int("timeout")?);
    let sig = req.query.get("signal").and_then(crate::api::signal_number);
    if !stop(&ctx, &c, t, sig).await? {
        return Err(ApiError::not_modified());
    }
    Ok(empty(StatusCode::NO_CONTENT))
}
