//! berthd's side of the Kubernetes CRI: [`Engine`] implements `berth-cri`'s backend traits on
//! top of the daemon's own services — the one image store and pull service (`images`), the
//! container services and events — so a pod, a container or an image made through the CRI is
//! the same object the Docker API shows. [`start`] binds the socket (`cri` in daemon.json,
//! `--cri-socket`) and serves it until shutdown.

pub mod config;
mod containers;
mod images;
mod network;
mod pod_cgroup;
mod pod_init;
mod pod_ns;
mod pod_orphans;
mod pods;
mod runtime;
mod stats;
mod streaming;

use crate::state::Ctx;
use anyhow::{Context, Result};

/// The daemon as the CRI's backend.
pub struct Engine {
    ctx: Ctx,
    pods: pods::Pods,
}

/// Binds the CRI socket (a bad path stops berthd at start, as a bad `-H` does) and serves the
/// CRI on it until shutdown, then removes the socket.
pub fn start(ctx: &Ctx) -> Result<()> {
    let cfg = &ctx.config.cri;
    if !cfg.enabled {
        return Ok(());
    }
    let pods = pods::Pods::open(ctx).context("opening the CRI pod store")?;
    let listener = berth_cri::bind(&cfg.socket).context("serving the CRI")?;
    let engine = std::sync::Arc::new(Engine {
        ctx: ctx.clone(),
        pods,
    });
    let (stream_listener, streaming) = berth_cri::stream::bind(&cfg.streaming_address)
        .context("serving the CRI's streaming server")?;
    tokio::spawn(berth_cri::stream::serve(
        stream_listener,
        streaming.clone(),
        engine.clone(),
        ctx.shutdown.fired(),
    ));
    let (fired, path) = (ctx.shutdown.fired(), cfg.socket.clone());
    let hold = ctx.shutdown.hold();
    tokio::spawn(async move {
        if let Err(e) = berth_cri::serve(listener, engine, Some(streaming), fired).await {
            tracing::error!("CRI server: {e}");
        }
        let _ = std::fs::remove_file(&path);
        drop(hold);
    });
    tracing::info!("serving the CRI on unix://{}", cfg.socket.display());
    Ok(())
}

/// A blocking service call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, berth_cri::CriError> + Send + 'static,
) -> Result<T, berth_cri::CriError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(berth_cri::CriError::internal)?
}

/// A service error in the CRI's terms.
fn cri_error(e: crate::error::ServiceError) -> berth_cri::CriError {
    use crate::error::ServiceError as S;
    use berth_cri::CriError as C;
    match e {
        S::NotFound(m) => C::NotFound(m),
        S::Conflict(m) => C::FailedPrecondition(m),
        S::InvalidInput(m) => C::InvalidArgument(m),
        S::Forbidden(m) => C::FailedPrecondition(m),
        S::NotModified => C::FailedPrecondition("not modified".into()),
        other => C::Internal(other.to_string()),
    }
}
