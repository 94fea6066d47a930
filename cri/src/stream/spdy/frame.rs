//! SPDY/3.1 frames on the wire: an 8-byte header — a control frame's version and type, or a
//! data frame's stream ID, then flags and a 24-bit length — and the payload. Reading refuses a
//! frame longer than the caller's bound before reading its payload.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The SPDY version berth speaks.
pub const VERSION: u16 = 3;
/// `FLAG_FIN` (data frames, SYN_STREAM, SYN_REPLY).
pub const FLAG_FIN: u8 = 0x01;

/// Control frame types.
pub mod kind {
    /// SYN_STREAM.
    pub const SYN_STREAM: u16 = 1;
    /// SYN_REPLY.
    pub const SYN_REPLY: u16 = 2;
    /// RST_STREAM.
    pub const RST_STREAM: u16 = 3;
    /// SETTINGS.
    pub const SETTINGS: u16 = 4;
    /// PING.
    pub const PING: u16 = 6;
    /// GOAWAY.
    pub const GOAWAY: u16 = 7;
    /// HEADERS.
    pub const HEADERS: u16 = 8;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u16 = 9;
}

/// RST_STREAM status codes berth sends.
pub mod rst {
    /// PROTOCOL_ERROR.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// REFUSED_STREAM.
    pub const REFUSED_STREAM: u32 = 3;
    /// STREAM_IN_USE.
    pub const STREAM_IN_USE: u32 = 8;
}

/// One frame as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A control frame.
    Control {
        /// Its type.
        kind: u16,
        /// Its flags.
        flags: u8,
        /// Its payload.
        data: Vec<u8>,
    },
    /// A data frame.
    Data {
        /// Its stream.
        stream: u32,
        /// Its flags.
        flags: u8,
        /// Its payload.
        data: Vec<u8>,
    },
}

/// A frame that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or ended.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A frame longer than allowed.
    #[error("SPDY frame of {0} bytes is too large")]
    TooLarge(usize),
    /// A control frame of another SPDY version.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
}

/// Reads one frame whose payload is at most `max` bytes.
pub async fn read(r: &mut (impl AsyncRead + Unpin), max: usize) -> Result<Frame, FrameError> {
    let mut h = [0u8; 8];
    r.read_exact(&mut h).await?;
    let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let flags = h[4];
    let len = u32::from_be_bytes([0, h[5], h[6], h[7]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await?;
    if word & 0x8000_0000 != 0 {
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        Ok(Frame::Control {
            kind: (word & 0xffff) as u16,
            flags,
            data,
        })
    } else {
        Ok(Frame::Data {
            stream: word & 0x7fff_ffff,
            flags,
            data,
        })
    }
}

/// The 8-byte header of a frame with `first` as its first word.
fn header(out: &mut Vec<u8>, first: u32, flags: u8, len: usize) {
    out.extend_from_slice(&first.to_be_bytes());
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&[flags, l[1], l[2], l[3]]);
}

/// A control frame of `kind` with `payload`.
pub fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    header(
        &mut out,
        0x8000_0000 | (u32::from(VERSION) << 16) | u32::from(kind),
        flags,
        payload.len(),
    );
    out.extend_from_slice(payload);
    out
}

/// A data frame on `stream` (the payload must fit 24 bits; callers cut it smaller).
pub fn data(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    header(&mut out, stream & 0x7fff_ffff, flags, payload.len());
    out.extend_from_slice(payload);
    out
}

/// The stream ID a control payload starts with (31 bits).
pub fn stream_id(payload: &[u8]) -> Option<u32> {
    let b = payload.get(..4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_lengths_are_bounded() {
        let mut wire = control(kind::PING, 0, &7u32.to_be_bytes());
        wire.extend(data(5, FLAG_FIN, b"hi"));
        let mut r = &wire[..];
        assert_eq!(
            read(&mut r, 64).await.expect("ping"),
            Frame::Control {
                kind: kind::PING,
                flags: 0,
                data: 7u32.to_be_bytes().to_vec()
            }
        );
        assert_eq!(
            read(&mut r, 64).await.expect("data"),
            Frame::Data {
                stream: 5,
                flags: FLAG_FIN,
                data: b"hi".to_vec()
            }
        );
        let big = data(1, 0, &[0u8; 100]);
        assert!(matches!(
            read(&mut &big[..], 64).await,
            Err(FrameError::TooLarge(100))
        ));
    }
}
