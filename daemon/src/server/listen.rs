//! Listeners (unix sockets and TCP), one hyper HTTP/1.1 connection task per client with
//! upgrades enabled, and graceful shutdown: stop accepting, ask every connection to finish
//! its in-flight request, and wait for them a bounded time.

use super::handle;
use super::router::Router;
use crate::state::Ctx;
use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Notify};

/// A bound listener.
pub enum Listener {
    /// A unix socket and its path (removed at shutdown).
    Unix(UnixListener, PathBuf),
    /// TCP.
    Tcp(TcpListener),
}

/// Binds every `-H` address (already validated by the configuration). A stale unix socket
/// is replaced: the caller holds the data-root lock, so no other berthd owns it.
pub fn bind(hosts: &[String]) -> Result<Vec<Listener>> {
    let mut out = Vec::new();
    for h in hosts {
        if let Some(p) = h.strip_prefix("unix://") {
            let path = PathBuf::from(p);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!("removed stale socket {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
            }
            let l = UnixListener::bind(&path).with_context(|| format!("listening on {h}"))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
                .with_context(|| format!("chmod {}", path.display()))?;
            out.push(Listener::Unix(l, path));
        } else if let Some(a) = h.strip_prefix("tcp://") {
            let std_l =
                std::net::TcpListener::bind(a).with_context(|| format!("listening on {h}"))?;
            std_l.set_nonblocking(true)?;
            out.push(Listener::Tcp(TcpListener::from_std(std_l)?));
        }
    }
    Ok(out)
}

/// Shutdown signalling shared by the listeners and their connections.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    open: Arc<(AtomicUsize, Notify)>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
            open: Arc::new((AtomicUsize::new(0), Notify::new())),
        }
    }
}

impl Shutdown {
    /// Starts the shutdown: listeners stop accepting, connections finish their request.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// A receiver that changes when shutdown starts (for long streams such as `/events`).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Waits until every connection closed, or `max` passed. Returns how many are left.
    pub async fn drained(&self, max: Duration) -> usize {
        let wait = async {
            loop {
                let notified = self.open.1.notified();
                if self.open.0.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(max, wait).await;
        self.open.0.load(Ordering::SeqCst)
    }

    fn enter(&self) -> ConnGuard {
        self.open.0.fetch_add(1, Ordering::SeqCst);
        ConnGuard(self.open.clone())
    }
}

struct ConnGuard(Arc<(AtomicUsize, Notify)>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }
}

/// Serves one listener until shutdown.
pub async fn serve(l: Listener, ctx: Ctx, router: Arc<Router>, shutdown: Shutdown) {
    let mut stop = shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = accept(&l) => a,
        };
        match accepted {
            Ok(Conn::Unix(s)) => spawn_conn(s, &ctx, &router, &shutdown),
            Ok(Conn::Tcp(s)) => {
                let _ = s.set_nodelay(true);
                spawn_conn(s, &ctx, &router, &shutdown)
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(l: &Listener) -> std::io::Result<Conn> {
    match l {
        Listener::Unix(u, _) => u.accept().await.map(|(s, _)| Conn::Unix(s)),
        Listener::Tcp(t) => t.accept().await.map(|(s, _)| Conn::Tcp(s)),
    }
}

fn spawn_conn<S>(io: S, ctx: &Ctx, router: &Arc<Router>, shutdown: &Shutdown)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let guard = shutdown.enter();
    let mut stop = shutdown.subscribe();
    let (ctx, router) = (ctx.clone(), router.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let svc = hyper::service::service_fn(move |req| {
            let (ctx, router) = (ctx.clone(), router.clone());
            async move { Ok::<_, std::convert::Infallible>(handle(ctx, router, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        tokio::pin!(conn);
        let r = tokio::select! {
            r = conn.as_mut() => r,
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        if let Err(e) = r {
            tracing::debug!("connection ended: {e}");
        }
    });
}
