//! kubelet's WebSocket channels (`channel.k8s.io`, `base64.channel.k8s.io` and their `v4.`
//! forms): after the RFC 6455 handshake every message is led by its channel, as a byte, or
//! with base64 as an ASCII digit (`'0'` + the number) followed by base64 text. Exec and attach
//! use channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize ([`remotecommand_channels`]);
//! port forwarding a data and an error channel per port (`stream/portforward_ws.rs`). The
//! channels become the same [`Stream`]s the SPDY wire gives, so the protocols run unchanged
//! on top; a channel cannot be half-closed, and the connection ends with a close frame.
//! Client frames must be masked and are bounded, whole messages included; data on a channel
//! the client may not write is dropped, as kubelet's `wsstream` does.

pub mod sha1;

use super::conn::{Conn, Limits, Out, Parts, Stream, StreamWriter, Wire};
use super::spdy::headers::Headers;
use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;

/// The channel names, by number.
const CHANNELS: [&str; 5] = ["stdin", "stdout", "stderr", "error", "resize"];
/// The GUID RFC 6455 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Opcodes.
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let d = sha1::digest(format!("{}{GUID}", key.trim()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// An unmasked (server) frame.
fn message(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// A message carrying `data` on channel `id`.
pub fn channel_message(id: u32, base64: bool, data: &[u8]) -> Vec<u8> {
    let ch = (id & 0xff) as u8;
    if base64 {
        let mut p = vec![b'0' + ch];
        p.extend(
            base64::engine::general_purpose::STANDARD
                .encode(data)
                .bytes(),
        );
        message(TEXT, &p)
    } else {
        let mut p = vec![ch];
        p.extend_from_slice(data);
        message(BINARY, &p)
    }
}

/// A frame as read: FIN, opcode, unmasked payload.
struct Frame {
    fin: bool,
    opcode: u8,
    data: Vec<u8>,
}

/// Reads one client frame of at most `max` bytes.
async fn read_frame(r: &mut (impl AsyncRead + Unpin), max: usize) -> std::io::Result<Frame> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await?;
    if h[1] & 0x80 == 0 {
        return Err(bad("unmasked client frame"));
    }
    let len = match h[1] & 0x7f {
        126 => u64::from(r.read_u16().await?),
        127 => r.read_u64().await?,
        n => u64::from(n),
    };
    if len > max as u64 {
        return Err(bad("WebSocket frame too large"));
    }
    let mut mask = [0u8; 4];
    r.read_exact(&mut mask).await?;
    let mut data = vec![0u8; len as usize];
    r.read_exact(&mut data).await?;
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok(Frame {
        fin: h[0] & 0x80 != 0,
        opcode: h[0] & 0x0f,
        data,
    })
}

/// One channel of a connection, numbered by its place in the list.
pub struct Channel {
    /// The headers its [`Stream`] carries for the protocol on top (names lower-case).
    pub headers: Headers,
    /// Whether the client writes on it (else its data is dropped).
    pub readable: bool,
    /// What berth sends on it first, before the protocol on top gets it.
    pub first: Option<Vec<u8>>,
}

/// The most channels a connection has: the numbers a base64 channel digit can carry.
pub const MAX_CHANNELS: usize = (u8::MAX - b'0') as usize;

/// The channels of exec and attach (the client writes stdin and resize).
pub fn remotecommand_channels() -> Vec<Channel> {
    CHANNELS
        .iter()
        .enumerate()
        .map(|(id, name)| Channel {
            headers: vec![("streamtype".into(), name.to_string())],
            readable: matches!(id, 0 | 4),
            first: None,
        })
        .collect()
}

/// Serves WebSocket `channels` (at most [`MAX_CHANNELS`]) on `io`, the upgraded connection.
pub fn start(
    io: impl AsyncRead + AsyncWrite + Send + 'static,
    limits: Limits,
    base64: bool,
    channels: Vec<Channel>,
) -> Conn {
    let (r, w) = tokio::io::split(io);
    let bye = message(CLOSE, &1000u16.to_be_bytes());
    Conn::assemble(w, limits, Some(bye), move |p| {
        read_loop(r, p, base64, channels)
    })
}

async fn read_loop(
    r: impl AsyncRead + Send + Unpin + 'static,
    parts: Parts,
    base64: bool,
    channels: Vec<Channel>,
) {
    let wire = Wire::WebSocket { base64 };
    // Every channel exists from the start.
    let mut feeds: Vec<Option<mpsc::Sender<Vec<u8>>>> = Vec::new();
    for (id, c) in channels.into_iter().take(MAX_CHANNELS).enumerate() {
        let (tx, rx) = mpsc::channel(super::conn::QUEUE);
        feeds.push(c.readable.then_some(tx));
        let s = Stream {
            headers: c.headers,
            rx,
            tx: StreamWriter {
                id: id as u32,
                wire,
                out: parts.out.clone(),
                activity: parts.activity.clone(),
            },
        };
        if let Some(first) = c.first {
            if !s.tx.write(&first).await {
                return;
            }
        }
        if parts.incoming.send(s).await.is_err() {
            return;
        }
    }
    let max = parts.limits.max_frame;
    let (ftx, mut frx) = mpsc::channel(1);
    let framer = tokio::spawn(async move {
        let mut r = r;
        loop {
            let f = read_frame(&mut r, max).await;
            let end = f.is_err();
            if ftx.send(f).await.is_err() || end {
                return;
            }
        }
    });
    let mut partial: Vec<u8> = Vec::new();
    while let Some(Ok(f)) = parts.next(&mut frx).await {
        match f.opcode {
            PING => {
                let _ = parts.out.send(Out::Frame(message(PONG, &f.data))).await;
                continue;
            }
            PONG => continue,
            CLOSE => break,
            _ => {}
        }
        if partial.len() + f.data.len() > max {
            break;
        }
        partial.extend_from_slice(&f.data);
        if !f.fin {
            continue;
        }
        let msg = std::mem::take(&mut partial);
        let Some((&ch, rest)) = msg.split_first() else {
            continue;
        };
        let (ch, data) = if base64 {
            let Ok(d) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                continue;
            };
            (ch.wrapping_sub(b'0'), d)
        } else {
            (ch, rest.to_vec())
        };
        if let Some(Some(tx)) = feeds.get(usize::from(ch)) {
            if !data.is_empty() && tx.send(data).await.is_err() {
                feeds[usize::from(ch)] = None;
            }
        }
    }
    framer.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn channel_messages_lead_with_their_channel() {
        assert_eq!(
            channel_message(1, false, b"hi"),
            vec![0x82, 3, 1, b'h', b'i']
        );
        assert_eq!(channel_message(3, true, b"hi"), {
            let mut m = vec![0x81, 5, b'3'];
            m.extend_from_slice(b"aGk=");
            m
        });
    }
}
