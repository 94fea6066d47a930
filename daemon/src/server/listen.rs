//! Listeners (unix sockets and TCP, the latter optionally TLS), one hyper HTTP/1.1 connection
//! task per client with upgrades enabled, and graceful shutdown: stop accepting, ask every
//! connection to finish its in-flight request, and wait for them a bounded time.
//!
//! Bounds against hostile clients: a client has `header-read-timeout` (default 30 s) to finish
//! the TLS handshake and then to send each request's headers, or its connection is closed
//! (bodies, responses, long polls and hijacked streams are not timed). Each listener serves
//! at most [`MAX_CONNS`] HTTP connections at once; beyond that, new connections wait in the
//! kernel's listen backlog until one closes. A hijacked stream (attach, exec) no longer
//! counts once upgraded.

use super::handle;
use super::router::Router;
use crate::shutdown::Shutdown;
use crate::state::Ctx;
use anyhow::{Context, Result};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

/// HTTP connections served at once by one listener.
pub const MAX_CONNS: usize = 512;

/// A bound listener.
pub enum Listener {
    /// A unix socket and its path (removed at shutdown).
    Unix(UnixListener, PathBuf),
    /// TCP, with TLS when an acceptor is given.
    Tcp(TcpListener, Option<TlsAcceptor>),
}

impl Listener {
    /// The listening socket.
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Listener::Unix(u, _) => u.as_fd(),
            Listener::Tcp(t, _) => t.as_fd(),
        }
    }
}

/// Binds every `-H` address (already validated by the configuration); TCP listeners speak
/// TLS through `tls` when given. A stale unix socket is replaced: the caller holds the
/// data-root lock, so no other berthd owns it.
pub fn bind(hosts: &[String], tls: Option<TlsAcceptor>) -> Result<Vec<Listener>> {
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
            out.push(Listener::Tcp(TcpListener::from_std(std_l)?, tls.clone()));
        }
    }
    Ok(out)
}

/// Serves one listener until shutdown.
pub async fn serve(l: Listener, ctx: Ctx, router: Arc<Router>, shutdown: Shutdown) {
    let stop = shutdown.fired();
    tokio::pin!(stop);
    let slots = Arc::new(Semaphore::new(MAX_CONNS));
    let timeout = ctx.config.header_read_timeout;
    let mut spare = super::fdlimit::Spare::new();
    let mut out_of_fds = false;
    loop {
        // A free slot first: at the cap, clients wait in the backlog, not in berthd.
        let permit = tokio::select! {
            _ = &mut stop => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = &mut stop => return,
            a = accept(&l) => a,
        };
        let c = Spawn {
            ctx: &ctx,
            router: &router,
            shutdown: &shutdown,
            timeout,
            permit,
        };
        if accepted.is_ok() {
            out_of_fds = false;
        }
        match accepted {
            Ok(Conn::Unix(s)) => c.spawn(s),
            Ok(Conn::Tcp(s, None)) => {
                let _ = s.set_nodelay(true);
                c.spawn(s)
            }
            Ok(Conn::Tcp(s, Some(tls))) => {
                let _ = s.set_nodelay(true);
                c.spawn_tls(s, tls)
            }
            Err(e) if super::fdlimit::exhausted(&e) => {
                if !out_of_fds {
                    tracing::error!("accept failed: {e}; clients are answered an error");
                }
                out_of_fds = true;
                drop(c);
                spare.refuse(l.fd(), || accept_plain(&l)).await;
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
    Tcp(tokio::net::TcpStream, Option<TlsAcceptor>),
}

async fn accept(l: &Listener) -> std::io::Result<Conn> {
    match l {
        Listener::Unix(u, _) => u.accept().await.map(|(s, _)| Conn::Unix(s)),
        Listener::Tcp(t, tls) => t.accept().await.map(|(s, _)| Conn::Tcp(s, tls.clone())),
    }
}

/// The next client of `l` as a plain stream, to be told an error (`None` for TLS, which
/// gets no answer it could read: its connection is just closed).
async fn accept_plain(l: &Listener) -> std::io::Result<Option<Box<dyn PlainStream>>> {
    Ok(match accept(l).await? {
        Conn::Unix(s) => Some(Box::new(s)),
        Conn::Tcp(s, None) => Some(Box::new(s)),
        Conn::Tcp(_, Some(_)) => None,
    })
}

/// A client connection without TLS.
trait PlainStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PlainStream for T {}

/// What a new connection's task needs.
struct Spawn<'a> {
    ctx: &'a Ctx,
    router: &'a Arc<Router>,
    shutdown: &'a Shutdown,
    timeout: Duration,
    permit: OwnedSemaphorePermit,
}

impl Spawn<'_> {
    /// Serves a plain connection.
    fn spawn<S>(self, io: S)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.spawn_when(async move { Some(io) });
    }

    /// Serves a TLS connection once its handshake finished (within the header timeout).
    fn spawn_tls(self, io: tokio::net::TcpStream, tls: TlsAcceptor) {
        let timeout = self.timeout;
        self.spawn_when(async move {
            match tokio::time::timeout(timeout, tls.accept(io)).await {
                Ok(Ok(io)) => Some(io),
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    None
                }
            }
        });
    }

    /// Spawns the connection's task: it holds a shutdown guard and the slot, waits for
    /// `ready` to give the stream (`None`: dropped) and serves it.
    fn spawn_when<S, F>(self, ready: F)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
        F: std::future::Future<Output = Option<S>> + Send + 'static,
    {
        let guard = self.shutdown.hold();
        let stop = self.shutdown.fired();
        let (ctx, router, timeout, permit) = (
            self.ctx.clone(),
            self.router.clone(),
            self.timeout,
            self.permit,
        );
        tokio::spawn(async move {
            let _guard = guard;
            if let Some(io) = ready.await {
                http(io, ctx, router, stop, timeout, permit).await
            }
        });
    }
}

/// One HTTP/1.1 connection until it ends (or, after shutdown started, its in-flight request
/// finished). The slot is given back when the connection ends or is upgraded.
async fn http<S>(
    io: S,
    ctx: Ctx,
    router: Arc<Router>,
    stop: impl std::future::Future<Output = ()>,
    timeout: Duration,
    permit: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let _permit = permit;
    let svc = hyper::service::service_fn(move |req| {
        let (ctx, router) = (ctx.clone(), router.clone());
        async move { Ok::<_, std::convert::Infallible>(handle(ctx, router, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let r = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = r {
        tracing::debug!("connection ended: {e}");
    }
}
