//! Exec endpoints: create, start (hijacked or detached), resize, inspect: parse, call
//! `containers::exec` (the instance) and `containers::exec_io` (its streams), render.

use crate::containers::{exec, exec_io};
use crate::server::http::{self, empty, ok_json, read_json, ApiResult};
use crate::server::router::{Req, Router};
use crate::state::Ctx;
use berth_api::types::container::{ExecConfig, ExecStart, IdResponse};
use hyper::{Method, StatusCode};

/// Registers the routes.
pub fn register(r: &mut Router) {
    r.add(Method::POST, "/containers/{id*}/exec", create_h);
    r.add(Method::POST, "/exec/{id}/start", start);
    r.add(Method::POST, "/exec/{id}/resize", resize);
    r.add(Method::GET, "/exec/{id}/json", inspect);
}

async fn create_h(ctx: Ctx, req: Req) -> ApiResult {
    let c = ctx.containers.get(req.param("id"))?;
    let body: Option<ExecConfig> = read_json(req.into_body()).await?;
    let id = exec::create(&ctx, &c, body.unwrap_or_default())?;
    Ok(http::json(StatusCode::CREATED, &IdResponse { id }))
}

async fn start(ctx: Ctx, mut req: Req) -> ApiResult {
    let id = req.param("id").to_string();
    exec::get(&ctx, &id)?;
    let upgrader = crate::server::hijack::take(&mut req.inner);
    let body: ExecStart = {
        let b = http::read_body(req.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        serde_json::from_slice(&b).unwrap_or_default()
    };
    let detach = body.detach;
    let spawned = exec::start(&ctx, &id, detach).await?;
    if detach {
        exec_io::detached(ctx, spawned);
        return Ok(empty(StatusCode::OK));
    }
    let (resp, upgraded) = upgrader.respond(!spawned.tty);
    tokio::spawn(async move {
        match upgraded.await {
            Some(io) => exec_io::serve(ctx, spawned, io).await,
            None => exec_io::abandon(spawned).await,
        }
    });
    Ok(resp)
}

async fn resize(ctx: Ctx, req: Req) -> ApiResult {
    let e = exec::get(&ctx, req.param("id"))?;
    if let Some(fd) = e.master_fd {
        let ws = libc::winsize {
            ws_row: req.query.int("h")?.unwrap_or(24) as u16,
            ws_col: req.query.int("w")?.unwrap_or(80) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on the exec's pty master, which lives while the exec runs.
        unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    }
    Ok(empty(StatusCode::CREATED))
}

async fn inspect(ctx: Ctx, req: Req) -> ApiResult {
    ok_json(&exec::get(&ctx, req.param("id"))?.inspect())
}
