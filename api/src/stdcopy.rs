//! Docker's stdcopy framing for multiplexed (non-TTY) attach, exec and log streams: each
//! frame is an 8-byte header `[stream, 0, 0, 0, len as u32 big-endian]` followed by `len`
//! bytes of payload. Stream 0 is stdin, 1 stdout, 2 stderr, 3 a system error.

use std::io::{self, Read, Write};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// 0: stdin (echoed back on some daemons).
    Stdin,
    /// 1: stdout.
    Stdout,
    /// 2: stderr.
    Stderr,
    /// 3: an error from the daemon; the client reports it and fails.
    SystemErr,
}

impl Stream {
    /// The header byte.
    pub fn byte(self) -> u8 {
        match self {
            Stream::Stdin => 0,
            Stream::Stdout => 1,
            Stream::Stderr => 2,
            Stream::SystemErr => 3,
        }
    }

    /// The stream for a header byte.
    pub fn from_byte(b: u8) -> Option<Stream> {
        Some(match b {
            0 => Stream::Stdin,
            1 => Stream::Stdout,
            2 => Stream::Stderr,
            3 => Stream::SystemErr,
            _ => return None,
        })
    }
}

/// Size of a frame header.
pub const HEADER_LEN: usize = 8;

/// The header of a frame carrying `len` bytes on `stream`.
pub fn header(stream: Stream, len: usize) -> [u8; HEADER_LEN] {
    let n = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [stream.byte(), 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Parses a frame header into its stream and payload length.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Option<(Stream, usize)> {
    let stream = Stream::from_byte(h[0])?;
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    Some((stream, len))
}

/// One whole frame (header + payload) as bytes. Payloads over 4 GiB are the caller's
/// problem: split them first.
pub fn frame(stream: Stream, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    v.extend_from_slice(&header(stream, payload.len()));
    v.extend_from_slice(payload);
    v
}

/// Writes one frame.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, stream: Stream, payload: &[u8]) -> io::Result<()> {
    w.write_all(&header(stream, payload.len()))?;
    w.write_all(payload)
}

/// Reads the next frame; `Ok(None)` at a clean end of stream (between frames).
pub fn read_frame<R: Read + ?Sized>(r: &mut R) -> io::Result<Option<(Stream, Vec<u8>)>> {
    let mut h = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut h[got..])?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated stdcopy header",
            ));
        }
        got += n;
    }
    let (stream, len) = parse_header(&h).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown stdcopy stream {}", h[0]),
        )
    })?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((stream, payload)))
}

/// Copies a multiplexed stream to `stdout`/`stderr` until its end; a system-error frame
/// becomes an error. Returns the bytes written.
pub fn demux<R: Read + ?Sized, O: Write + ?Sized, E: Write + ?Sized>(
    r: &mut R,
    stdout: &mut O,
    stderr: &mut E,
) -> io::Result<u64> {
    let mut total = 0u64;
    while let Some((stream, payload)) = read_frame(r)? {
        match stream {
            Stream::Stdin | Stream::Stdout => {
                stdout.write_all(&payload)?;
                stdout.flush()?;
            }
            Stream::Stderr => {
                stderr.write_all(&payload)?;
                stderr.flush()?;
            }
            Stream::SystemErr => {
                return Err(io::Error::other(
                    String::from_utf8_lossy(&payload).into_owned(),
                ))
            }
        }
        total += payload.len() as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, Stream::Stdout, b"hello\n").expect("write");
        write_frame(&mut buf, Stream::Stderr, b"oops\n").expect("write");
        assert_eq!(&buf[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let n = demux(&mut buf.as_slice(), &mut out, &mut err).expect("demux");
        assert_eq!(
            (out.as_slice(), err.as_slice(), n),
            (&b"hello\n"[..], &b"oops\n"[..], 11)
        );
    }

    #[test]
    fn system_error_and_truncation() {
        let buf = frame(Stream::SystemErr, b"boom");
        let e = demux(&mut buf.as_slice(), &mut Vec::new(), &mut Vec::new()).expect_err("err");
        assert_eq!(e.to_string(), "boom");
        let e = read_frame(&mut &[1u8, 0, 0][..]).expect_err("short");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
