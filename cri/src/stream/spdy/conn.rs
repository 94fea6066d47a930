//! A SPDY/3.1 connection, server side, as kubelet's streaming clients (moby/spdystream) use
//! it: the client opens every stream (SYN_STREAM with headers such as `streamType`), berth
//! answers each with an empty SYN_REPLY and hands it to the protocol on top as a [`Stream`].
//! PINGs are echoed; SETTINGS and WINDOW_UPDATE are read and ignored (spdystream does no flow
//! control).

use super::frame::{self, kind, rst, Frame, FLAG_FIN};
use super::headers::{Deflater, Inflater};
use crate::stream::conn::{Conn, Limits, Out, Parts, Stream, StreamWriter, Wire, QUEUE};
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// Serves SPDY on `io` (the upgraded HTTP connection).
pub fn start(io: impl AsyncRead + AsyncWrite + Send + 'static, limits: Limits) -> Conn {
    let (r, w) = tokio::io::split(io);
    Conn::assemble(w, limits, None, move |p| read_loop(r, p))
}

/// The reader's state.
struct Dispatch {
    parts: Parts,
    streams: HashMap<u32, mpsc::Sender<Vec<u8>>>,
    last_id: u32,
    inflater: Inflater,
    deflater: Deflater,
    max_streams: usize,
}

async fn read_loop(r: impl AsyncRead + Send + Unpin + 'static, parts: Parts) {
    let max_frame = parts.limits.max_frame;
    let max_streams = parts.limits.max_streams;
    // Frames are read in their own task so that the idle check never cuts one in half.
    let (ftx, mut frx) = mpsc::channel(1);
    let framer = tokio::spawn(async move {
        let mut r = r;
        loop {
            let f = frame::read(&mut r, max_frame).await;
            let end = f.is_err();
            if ftx.send(f).await.is_err() || end {
                return;
            }
        }
    });
    let mut d = Dispatch {
        parts,
        streams: HashMap::new(),
        last_id: 0,
        inflater: Inflater::default(),
        deflater: Deflater::default(),
        max_streams,
    };
    while let Some(f) = d.parts.next(&mut frx).await {
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!("streaming connection: {e}");
                break;
            }
        };
        if !d.handle(f).await {
            break;
        }
    }
    framer.abort();
}

impl Dispatch {
    async fn send(&self, f: Vec<u8>) -> bool {
        self.parts.out.send(Out::Frame(f)).await.is_ok()
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
                wire: Wire::Spdy,
                out: self.parts.out.clone(),
                activity: self.parts.activity.clone(),
            },
        };
        if flags & FLAG_FIN == 0 {
            self.streams.insert(id, tx);
        }
        if self.parts.incoming.try_send(s).is_err() {
            self.streams.remove(&id);
            self.reset(id, rst::REFUSED_STREAM).await;
        }
        true
    }
}
