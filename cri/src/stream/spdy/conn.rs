//! A SPDY/3.1 connection, server side, as kubelet's streaming clients (moby/spdystream) use
//! it: the client opens every stream (SYN_STREAM with headers such as `streamType`), berth
//! answers each with an empty SYN_REPLY and hands it to the protocol on top as a [`Stream`] —
//! the client's data as a channel, and a [`StreamWriter`] for berth's data (half-closed with
//! `FLAG_FIN`). PINGs are echoed; SETTINGS and WINDOW_UPDATE are read and ignored (spdystream
//! does no flow control). Everything is bounded: frame sizes, live streams, data queued per
//! stream (the reader waits when a stream's consumer is behind), and idle time.

use super::frame::{self, kind, rst, Frame, FLAG_FIN};
use super::headers::{Deflater, Headers, Inflater};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
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
const QUEUE: usize = 4;
/// How long a finished connection waits for the client to close it.
const LINGER: Duration = Duration::from_secs(5);

/// What goes to the writer task.
enum Out {
    Frame(Vec<u8>),
    Shutdown,
}

/// When the connection last saw a frame either way (ms since `start`).
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }
    fn idle(&self) -> Duration {
        let ms = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(ms.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// berth's side of one stream: data frames, then `FLAG_FIN`.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Out>,
    activity: Arc<Activity>,
}

impl StreamWriter {
    /// Sends `data` (in frames of at most 32 KiB); false once the connection is gone.
    pub async fn write(&self, data: &[u8]) -> bool {
        for c in data.chunks(CHUNK) {
            self.activity.touch();
            if self
                .out
                .send(Out::Frame(frame::data(self.id, 0, c)))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }

    /// Half-closes the stream (berth sends nothing more on it).
    pub async fn close(&self) {
        let _ = self
            .out
            .send(Out::Frame(frame::data(self.id, FLAG_FIN, &[])))
            .await;
    }
}

/// A stream the client opened.
pub struct Stream {
    /// Its headers (names lower-case).
    pub headers: Headers,
    /// The client's data; `None` once the client half-closed or reset it, or went away.
    pub rx: mpsc::Receiver<Vec<u8>>,
    /// berth's side.
    pub tx: StreamWriter,
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
    /// Serves SPDY on `io` (the upgraded HTTP connection).
    pub fn start(io: impl AsyncRead + AsyncWrite + Send + 'static, limits: Limits) -> Conn {
        let (r, w) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(16);
        let (in_tx, in_rx) = mpsc::channel(limits.max_streams);
        let (gone_tx, gone_rx) = watch::channel(false);
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        });
        let writer = tokio::spawn(write_loop(w, out_rx));
        let reader = tokio::spawn(read_loop(
            r,
            limits,
            Dispatch {
                out: out_tx.clone(),
                incoming: in_tx,
                activity,
                streams: HashMap::new(),
                last_id: 0,
                inflater: Inflater::default(),
                deflater: Deflater::default(),
                max_streams: limits.max_streams,
            },
            gone_tx,
        ));
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
    pub async fn finish(self) {
        let _ = self.out.send(Out::Shutdown).await;
        drop(self.out);
        let _ = tokio::time::timeout(LINGER, self.writer).await;
        let mut gone = self.gone.clone();
        let _ = tokio::time::timeout(LINGER, gone.wait_for(|g| *g)).await;
        self.reader.abort();
    }
}

async fn write_loop(mut w: impl AsyncWrite + Unpin, mut rx: mpsc::Receiver<Out>) {
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
            Out::Shutdown => break,
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

/// The reader's state.
struct Dispatch {
    out: mpsc::Sender<Out>,
    incoming: mpsc::Sender<Stream>,
    activity: Arc<Activity>,
    streams: HashMap<u32, mpsc::Sender<Vec<u8>>>,
    last_id: u32,
    inflater: Inflater,
    deflater: Deflater,
    max_streams: usize,
}

async fn read_loop(
    r: impl AsyncRead + Send + Unpin + 'static,
    limits: Limits,
    mut d: Dispatch,
    gone: watch::Sender<bool>,
) {
    // Frames are read in their own task so that the idle check never cuts one in half.
    let (ftx, mut frx) = mpsc::channel(1);
    let framer = tokio::spawn(async move {
        let mut r = r;
        loop {
            let f = frame::read(&mut r, limits.max_frame).await;
            let end = f.is_err();
            if ftx.send(f).await.is_err() || end {
                return;
            }
        }
    });
    loop {
        let left = limits.idle.saturating_sub(d.activity.idle());
        let f = match tokio::time::timeout(left.max(Duration::from_millis(10)), frx.recv()).await {
            Err(_) if d.activity.idle() >= limits.idle => {
                tracing::debug!("streaming connection idle for {:?}: closed", limits.idle);
                break;
            }
            Err(_) => continue,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::debug!("streaming connection: {e}");
                break;
            }
            Ok(Some(Ok(f))) => f,
        };
        d.activity.touch();
        if !d.handle(f).await {
            break;
        }
    }
    framer.abort();
    // Every stream's reader sees the end.
    d.streams.clear();
    let _ = gone.send(true);
}

impl Dispatch {
    async fn send(&self, f: Vec<u8>) -> bool {
        self.out.send(Out::Frame(f)).await.is_ok()
    }

    async fn reset(&self, id: u32, status: u32) {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&status.to_be_bytes());
        self.send(frame::control(kind::RST_STREAM, 0, &p)).await;
    }

    /// Handles one frame; false ends the connection.
    async fn handle(&mut self, f: Frame) -> bool {
        match f {
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                if let Some(tx) = self.streams.get(&stream) {
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        self.streams.remove(&stream);
                    }
                }
                if flags & FLAG_FIN != 0 {
                    self.streams.remove(&stream);
                }
                true
            }
            Frame::Control { kind, flags, data } => match kind {
                kind::SYN_STREAM => self.syn_stream(flags, &data).await,
                kind::RST_STREAM => {
                    if let Some(id) = frame::stream_id(&data) {
                        self.streams.remove(&id);
                    }
                    true
                }
                // Its header block is read to keep the shared zlib stream in step.
                kind::HEADERS | kind::SYN_REPLY => {
                    data.len() >= 4 && self.inflater.decode(&data[4..]).is_ok()
                }
                kind::PING => {
                    // Only the client's own pings (odd IDs) are echoed.
                    if data.len() == 4 && data[3] & 1 == 1 {
                        return self.send(frame::control(kind::PING, 0, &data)).await;
                    }
                    true
                }
                kind::GOAWAY => false,
                // SETTINGS, WINDOW_UPDATE and anything newer: nothing to do.
                _ => true,
            },
        }
    }

    async fn syn_stream(&mut self, flags: u8, data: &[u8]) -> bool {
        if data.len() < 10 {
            return false;
        }
        let Ok(headers) = self.inflater.decode(&data[10..]) else {
            // The zlib stream cannot be trusted any more: the connection ends.
            return false;
        };
        let id = frame::stream_id(data).unwrap_or(0);
        if id == 0 || id.is_multiple_of(2) || id <= self.last_id {
            self.reset(id, rst::PROTOCOL_ERROR).await;
            return id != 0;
        }
        self.last_id = id;
        if self.streams.contains_key(&id) {
            self.reset(id, rst::STREAM_IN_USE).await;
            return true;
        }
        if self.streams.len() >= self.max_streams {
            self.reset(id, rst::REFUSED_STREAM).await;
            return true;
        }
        let mut reply = id.to_be_bytes().to_vec();
        reply.extend(self.deflater.encode(&[]));
        if !self.send(frame::control(kind::SYN_REPLY, 0, &reply)).await {
            return false;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let s = Stream {
            headers,
            rx,
            tx: StreamWriter {
                id,
                out: self.out.clone(),
                activity: self.activity.clone(),
            },
        };
        if flags & FLAG_FIN == 0 {
            self.streams.insert(id, tx);
        }
        if self.incoming.try_send(s).is_err() {
            self.streams.remove(&id);
            self.reset(id, rst::REFUSED_STREAM).await;
        }
        true
    }
}
