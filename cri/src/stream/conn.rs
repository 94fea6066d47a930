//! One streaming connection, whatever its wire (SPDY or WebSocket channels): the streams the
//! client opens, each a channel of the client's data and a [`StreamWriter`] for berth's; a
//! writer task that owns the socket's writing half; the connection's end; and the limits —
//! frame sizes, live streams, data queued per stream (the reader waits when a stream's
//! consumer is behind), idle time.

use super::{spdy, ws};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest frame payload read.
    pub max_frame: usize,
    /// The most streams open at once.
    pub max_streams: usize,
    /// The connection ends after this long without a frame either way.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 128 << 10,
            max_streams: 64,
            // kubelet's streaming server's default idle timeout.
            idle: Duration::from_secs(4 * 3600),
        }
    }
}

/// Data frames berth writes carry at most this much.
const CHUNK: usize = 32 << 10;
/// Frames of client data queued per stream before the reader waits.
pub(crate) const QUEUE: usize = 4;
/// How long a finished connection waits for the client to close it.
const LINGER: Duration = Duration::from_secs(5);

/// What goes to the writer task.
pub(crate) enum Out {
    Frame(Vec<u8>),
    Shutdown,
}

/// When the connection last saw a frame either way (ms since `start`).
pub(crate) struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    pub(crate) fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }
    pub(crate) fn idle(&self) -> Duration {
        let ms = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(ms.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// How a stream's data is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// SPDY data frames; closing sends `FLAG_FIN`.
    Spdy,
    /// WebSocket messages led by the channel number (a byte, or with `base64` a digit and
    /// base64 text); a channel cannot be half-closed.
    WebSocket {
        /// `base64.channel.k8s.io`.
        base64: bool,
    },
}

/// berth's side of one stream.
#[derive(Clone)]
pub struct StreamWriter {
    pub(crate) id: u32,
    pub(crate) wire: Wire,
    pub(crate) out: mpsc::Sender<Out>,
    pub(crate) activity: Arc<Activity>,
}

impl StreamWriter {
    /// Sends `data` (in frames of at most 32 KiB); false once the connection is gone.
    pub async fn write(&self, data: &[u8]) -> bool {
        for c in data.chunks(CHUNK) {
            self.activity.touch();
            let f = match self.wire {
                Wire::Spdy => spdy::frame::data(self.id, 0, c),
                Wire::WebSocket { base64 } => ws::channel_message(self.id, base64, c),
            };
            if self.out.send(Out::Frame(f)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Half-closes the stream (berth sends nothing more on it); nothing on a WebSocket.
    pub async fn close(&self) {
        if self.wire == Wire::Spdy {
            let f = spdy::frame::data(self.id, spdy::frame::FLAG_FIN, &[]);
            let _ = self.out.send(Out::Frame(f)).await;
        }
    }
}

/// A stream the client opened.
pub struct Stream {
    /// Its headers (names lower-case).
    pub headers: spdy::headers::Headers,
    /// The client's data; `None` once the client half-closed or reset it, or went away.
    pub rx: mpsc::Receiver<Vec<u8>>,
    /// berth's side.
    pub tx: StreamWriter,
}

/// What a connection's reader needs.
pub(crate) struct Parts {
    /// To the writer task.
    pub out: mpsc::Sender<Out>,
    /// Streams for the protocol on top.
    pub incoming: mpsc::Sender<Stream>,
    /// The idle clock.
    pub activity: Arc<Activity>,
    /// The limits.
    pub limits: Limits,
}

impl Parts {
    /// The next item of `rx`, or `None` when it ended or the connection was idle too long.
    pub async fn next<T>(&self, rx: &mut mpsc::Receiver<T>) -> Option<T> {
        loop {
            let idle = self.limits.idle;
            let left = idle.saturating_sub(self.activity.idle());
            match tokio::time::timeout(left.max(Duration::from_millis(10)), rx.recv()).await {
                Err(_) if self.activity.idle() >= idle => {
                    tracing::debug!("streaming connection idle for {idle:?}: closed");
                    return None;
                }
                Err(_) => continue,
                Ok(v) => {
                    self.activity.touch();
                    return v;
                }
            }
        }
    }
}

/// A served connection: the streams the client opens, and its end.
pub struct Conn {
    incoming: mpsc::Receiver<Stream>,
    gone: watch::Receiver<bool>,
    out: mpsc::Sender<Out>,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Conn {
    /// A connection whose writing half is `w`; `run` reads the other half, opening streams
    /// through [`Parts`], and returns when the client has gone. `bye` is written last (a
    /// WebSocket close frame).
    pub(crate) fn assemble<F>(
        w: impl AsyncWrite + Send + Unpin + 'static,
        limits: Limits,
        bye: Option<Vec<u8>>,
        run: impl FnOnce(Parts) -> F,
    ) -> Conn
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (out_tx, out_rx) = mpsc::channel(16);
        let (in_tx, in_rx) = mpsc::channel(limits.max_streams);
        let (gone_tx, gone_rx) = watch::channel(false);
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        });
        let writer = tokio::spawn(write_loop(w, out_rx, bye));
        let read = run(Parts {
            out: out_tx.clone(),
            incoming: in_tx,
            activity,
            limits,
        });
        let reader = tokio::spawn(async move {
            read.await;
            let _ = gone_tx.send(true);
        });
        Conn {
            incoming: in_rx,
            gone: gone_rx,
            out: out_tx,
            reader,
            writer,
        }
    }

    /// The next stream the client opens (`None`: the connection ended).
    pub async fn next_stream(&mut self) -> Option<Stream> {
        self.incoming.recv().await
    }

    /// A future that completes when the client has gone (its connection ended).
    pub fn gone(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut g = self.gone.clone();
        async move {
            let _ = g.wait_for(|g| *g).await;
        }
    }

    /// Ends the connection once everything queued is written: berth's side is shut, and the
    /// client is given a moment to close its own.
    pub async fn finish(mut self) {
        // A client that stopped reading cannot hold the writer (or this) for long.
        let _ = tokio::time::timeout(LINGER, self.out.send(Out::Shutdown)).await;
        let _ = tokio::time::timeout(LINGER, &mut self.writer).await;
        self.writer.abort();
        let mut gone = self.gone.clone();
        let _ = tokio::time::timeout(LINGER, gone.wait_for(|g| *g)).await;
        self.reader.abort();
    }
}

async fn write_loop(
    mut w: impl AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<Out>,
    bye: Option<Vec<u8>>,
) {
    while let Some(o) = rx.recv().await {
        match o {
            Out::Frame(f) => {
                if w.write_all(&f).await.is_err() {
                    return;
                }
                // Flush when nothing else is waiting, so small writes are not held.
                if rx.is_empty() && w.flush().await.is_err() {
                    return;
                }
            }
            Out::Shutdown => {
                if let Some(b) = bye {
                    let _ = w.write_all(&b).await;
                }
                break;
            }
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}
