//! The CRI streaming server's backend in berthd: an exec is the daemon's own exec (created and
//! started through `containers::exec`, its pipes or pty handed over as they are, its exit
//! recorded as a Docker exec's), an attach is the daemon's attach (a pipe pair stands in for
//! the client's hijacked connection; its stdcopy frames are split back into stdout and stderr
//! here), and a port forward is a TCP connection to 127.0.0.1 made by a short-lived thread
//! that has joined the pod's pinned network namespace (the socket stays in that namespace;
//! berthd's other threads never change theirs).

use super::{blocking, cri_error, pod_ns, Engine};
use crate::containers::{exec, monitor_client, streams};
use berth_api::types::container::ExecConfig;
use berth_cri::stream::backend::{
    Duplex, ExecSpec, Reader, Session, StreamBackend, StreamOpts, TermSize, Writer,
};
use berth_cri::{CriError, CriResult};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a port forward's connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The pipes an attach's output is split into.
const PIPE: usize = 64 << 10;

/// Sets the terminal size of the pty whose master is `m`.
fn set_winsize(m: &std::fs::File, s: TermSize) {
    let ws = libc::winsize {
        ws_row: s.height,
        ws_col: s.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; `m` is an open pty master
    // owned by the caller for the whole call.
    unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Kills the children of the exec helper `pid` (the exec'd command: the helper forks it into
/// the container and waits for it, so their PIDs cannot be reused meanwhile).
fn kill_children(pid: u32) {
    let list = format!("/proc/{pid}/task/{pid}/children");
    let Ok(text) = std::fs::read_to_string(list) else {
        return;
    };
    for child in text
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Splits an attach's output (`tty`: raw; else stdcopy frames) into `out` and `err`.
async fn demux(
    mut r: impl tokio::io::AsyncRead + Unpin,
    mut out: impl tokio::io::AsyncWrite + Unpin,
    mut err: impl tokio::io::AsyncWrite + Unpin,
    tty: bool,
) {
    let mut buf = vec![0u8; 16 << 10];
    if tty {
        let _ = tokio::io::copy(&mut r, &mut out).await;
        return;
    }
    let mut hdr = [0u8; berth_api::stdcopy::HEADER_LEN];
    while r.read_exact(&mut hdr).await.is_ok() {
        let Some((stream, mut len)) = berth_api::stdcopy::parse_header(&hdr) else {
            return;
        };
        while len > 0 {
            let n = match r.read(&mut buf[..len.min(16 << 10)]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            len -= n;
            // A consumer that went away only loses its own stream.
            let _ = match stream {
                berth_api::stdcopy::Stream::Stderr => err.write_all(&buf[..n]).await,
                _ => out.write_all(&buf[..n]).await,
            };
        }
    }
}

/// Connects to `127.0.0.1:port` from a thread in the network namespace pinned at `netns`
/// (none: the host's, for a `hostNetwork` pod).
fn connect_in(netns: Option<PathBuf>, port: u16) -> std::io::Result<std::net::TcpStream> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Some(ns) = netns else {
        return std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT);
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::File::open(&ns)?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("port-forward worker panicked")))
    })
}

impl StreamBackend for Engine {
    async fn exec(&self, spec: ExecSpec) -> CriResult<Session> {
        let c = self.pod_container(&spec.container_id)?;
        let o = &spec.opts;
        let config = ExecConfig {
            cmd: spec.cmd,
            attach_stdin: o.stdin,
            attach_stdout: o.stdout,
            attach_stderr: o.stderr,
            tty: o.tty,
            ..Default::default()
        };
        let exec_id = exec::create(&self.ctx, &c, config).map_err(cri_error)?;
        let mut s = exec::start(&self.ctx, &exec_id, false)
            .await
            .map_err(cri_error)?;
        let io = |e: std::io::Error| CriError::internal(format!("exec pty: {e}"));
        let mut session = Session {
            stdin: None,
            stdout: None,
            stderr: None,
            resize: None,
            exit: Box::pin(std::future::pending()),
        };
        if let Some(m) = s.master.take() {
            let m = std::fs::File::from(m);
            let (r, sizer) = (m.try_clone().map_err(io)?, m.try_clone().map_err(io)?);
            session.stdout = Some(Box::new(tokio::fs::File::from_std(r)) as Reader);
            if o.stdin {
                session.stdin = Some(Box::new(tokio::fs::File::from_std(m)) as Writer);
            }
            session.resize = Some(Box::new(move |sz| set_winsize(&sizer, sz)));
        } else {
            session.stdin = s.child.stdin.take().map(|w| Box::new(w) as Writer);
            session.stdout = s.child.stdout.take().map(|r| Box::new(r) as Reader);
            session.stderr = s.child.stderr.take().map(|r| Box::new(r) as Reader);
        }
        // The exit future holds `_abandon`: dropped before the exec ended (the client went
        // away), it has the process killed, as containerd ends a stream's exec with it.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (abandon, abandoned) = tokio::sync::oneshot::channel::<()>();
        let ctx = self.ctx.clone();
        let mut child = s.child;
        tokio::spawn(async move {
            let status = tokio::select! {
                st = child.wait() => st,
                _ = abandoned => {
                    if let Some(pid) = child.id() {
                        kill_children(pid);
                    }
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let code = status.ok().and_then(|st| st.code()).unwrap_or(126);
            exec::finish(&ctx, &c, &exec_id, i64::from(code));
            let _ = tx.send(code);
        });
        session.exit = Box::pin(async move {
            let _abandon = abandon;
            rx.await.ok()
        });
        Ok(session)
    }

    async fn attach(&self, id: &str, o: StreamOpts) -> CriResult<Session> {
        let c = self.pod_container(id)?;
        let tty = c.tty();
        let (ours, theirs) = tokio::io::duplex(PIPE);
        let (io_tx, io_rx) = tokio::sync::oneshot::channel();
        let _ = io_tx.send(Box::new(theirs) as streams::ClientStream);
        let p = streams::PendingAttach {
            io: io_rx,
            stdin: o.stdin,
            stdout: o.stdout,
            stderr: o.stderr,
            detach_keys: Vec::new(),
            on_detach: None,
        };
        crate::containers::attach::attach(&self.ctx, &c, Some(p));
        let (r, w) = tokio::io::split(ours);
        let (out_r, out_w) = tokio::io::simplex(PIPE);
        let (err_r, err_w) = tokio::io::simplex(PIPE);
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            demux(r, out_w, err_w, tty).await;
            let _ = tx.send(());
        });
        let sock = self.ctx.containers.monitor_sock(&c.id);
        Ok(Session {
            stdin: o.stdin.then(|| Box::new(w) as Writer),
            stdout: Some(Box::new(out_r)),
            stderr: Some(Box::new(err_r)),
            resize: tty.then(|| {
                Box::new(move |sz: TermSize| {
                    let (sock, cmd) = (
                        sock.clone(),
                        berth_monitor_proto::Command::Resize {
                            h: sz.height,
                            w: sz.width,
                        },
                    );
                    tokio::spawn(async move {
                        let _ = monitor_client::call(&sock, cmd).await;
                    });
                }) as Box<dyn Fn(TermSize) + Send + Sync>
            }),
            exit: Box::pin(async move {
                let _ = rx.await;
                None
            }),
        })
    }

    async fn port_forward(&self, pod_id: &str, port: u16) -> CriResult<Box<dyn Duplex>> {
        let rec = self
            .pods
            .find(pod_id)?
            .ok_or_else(|| CriError::NotFound(format!("pod sandbox {pod_id} not found")))?;
        let dir = self.pods.run_dir(&rec.id);
        let netns = if rec.own().net {
            if !pod_ns::pinned(&dir, "net") {
                return Err(CriError::FailedPrecondition(format!(
                    "pod sandbox {} has no network namespace (stopped?)",
                    rec.id
                )));
            }
            Some(pod_ns::path(&dir, "net"))
        } else {
            None
        };
        let s = blocking(move || connect_in(netns, port).map_err(CriError::internal)).await?;
        s.set_nonblocking(true).map_err(CriError::internal)?;
        let s = tokio::net::TcpStream::from_std(s).map_err(CriError::internal)?;
        Ok(Box::new(s))
    }
}
