//! The `:authority` of gRPC clients on unix sockets. grpc-go as vendored by cri-tools 1.26
//! (crictl, critest, older kubelets) sends the socket's path (`/run/berth/cri.sock`) as the
//! HTTP/2 `:authority`, which is no valid authority, and the `h2` server under tonic resets
//! such a stream with PROTOCOL_ERROR. [`FixAuthority`] wraps each accepted connection and
//! rewrites, in the client's HEADERS frames, an `:authority` literal that is not a valid
//! authority into `x…x` of the same length — the same length, so the entry the client and
//! the server add to their HPACK dynamic tables has the same size on both sides and later
//! indexed references stay in step. Everything else passes through untouched; nothing is
//! buffered beyond one HEADERS frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HEADERS frames longer than this pass through unread (gRPC's are a few hundred bytes).
const MAX_HEADERS: usize = 64 << 10;
/// The largest frame payload the server accepts unless it says more (`SETTINGS_MAX_FRAME_SIZE`).
const MAX_FRAME: usize = 16 << 10;
const HEADERS: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// A connection whose incoming HEADERS frames get a valid `:authority`.
pub struct FixAuthority<S> {
    inner: S,
    /// Bytes read but not yet examined.
    pending: Vec<u8>,
    /// Bytes examined, for the reader.
    ready: Vec<u8>,
    /// Bytes of the current frame still to pass through unexamined.
    skip: usize,
    preface: bool,
    eof: bool,
}

impl<S> FixAuthority<S> {
    /// Wraps an accepted connection.
    pub fn new(inner: S) -> Self {
        FixAuthority {
            inner,
            pending: Vec::new(),
            ready: Vec::new(),
            skip: 0,
            preface: false,
            eof: false,
        }
    }

    /// Moves what can be decided from `pending` to `ready`.
    fn process(&mut self) {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.pending.len());
                self.ready.extend(self.pending.drain(..n));
                self.skip -= n;
                if self.skip > 0 {
                    return;
                }
            }
            if !self.preface {
                if self.pending.len() < PREFACE.len() {
                    return;
                }
                self.preface = true;
                self.skip = PREFACE.len();
                continue;
            }
            if self.pending.len() < 9 {
                return;
            }
            let len = usize::from(self.pending[0]) << 16
                | usize::from(self.pending[1]) << 8
                | usize::from(self.pending[2]);
            let (kind, flags) = (self.pending[3], self.pending[4]);
            if kind != HEADERS || flags & END_HEADERS == 0 || len > MAX_HEADERS {
                self.skip = 9 + len;
                continue;
            }
            if self.pending.len() < 9 + len {
                return;
            }
            let frame: Vec<u8> = self.pending.drain(..9 + len).collect();
            match rewrite_headers(&frame) {
                Some(f) => self.ready.extend_from_slice(&f),
                None => self.ready.extend_from_slice(&frame),
            }
        }
    }
}

/// A HEADERS frame with its `:authority` made valid, or None to keep it as it is.
fn rewrite_headers(frame: &[u8]) -> Option<Vec<u8>> {
    let flags = frame[4];
    let payload = &frame[9..];
    let mut at = 0;
    let pad = if flags & PADDED != 0 {
        at = 1;
        usize::from(*payload.first()?)
    } else {
        0
    };
    if flags & PRIORITY != 0 {
        at += 5;
    }
    let end = payload.len().checked_sub(pad)?;
    let block = payload.get(at..end)?;
    let fixed = fix_block(block)?;
    let new_len = payload.len() - block.len() + fixed.len();
    if new_len > MAX_FRAME {
        return None;
    }
    let mut out = Vec::with_capacity(9 + new_len);
    out.extend_from_slice(&[(new_len >> 16) as u8, (new_len >> 8) as u8, new_len as u8]);
    out.extend_from_slice(&frame[3..9]);
    out.extend_from_slice(&payload[..at]);
    out.extend_from_slice(&fixed);
    out.extend_from_slice(&payload[end..]);
    Some(out)
}

/// Reads an HPACK integer with an `n`-bit prefix at `*at`.
fn integer(b: &[u8], at: &mut usize, n: u32) -> Option<usize> {
    let max = (1usize << n) - 1;
    let mut v = usize::from(*b.get(*at)?) & max;
    *at += 1;
    if v < max {
        return Some(v);
    }
    let mut shift = 0;
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        v = v.checked_add(usize::from(byte & 0x7f).checked_shl(shift)?)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// Reads a string literal at `*at`: (its bytes as sent, whether Huffman-coded).
fn string<'a>(b: &'a [u8], at: &mut usize) -> Option<(&'a [u8], bool)> {
    let huffman = *b.get(*at)? & 0x80 != 0;
    let len = integer(b, at, 7)?;
    let s = b.get(*at..at.checked_add(len)?)?;
    *at += len;
    Some((s, huffman))
}

/// Whether `v` is an authority `h2` accepts (host, port, user info; no path).
fn valid_authority(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~:[]@!$&'()*+,;=%".contains(c))
}

/// Writes an HPACK integer with an `n`-bit prefix whose high bits are `first`.
fn put_integer(out: &mut Vec<u8>, first: u8, n: u32, v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = v - max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// The header block with an invalid `:authority` value replaced, or None when it needs no
/// change (or cannot be read: then h2 judges it as it is).
fn fix_block(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len() + 64);
    let mut at = 0;
    let mut changed = false;
    while at < b.len() {
        let start = at;
        let first = b[at];
        let prefix = match first {
            f if f & 0x80 != 0 => {
                integer(b, &mut at, 7)?;
                out.extend_from_slice(&b[start..at]);
                continue;
            }
            f if f & 0xe0 == 0x20 => {
                integer(b, &mut at, 5)?;
                out.extend_from_slice(&b[start..at]);
                continue;
            }
            f if f & 0xc0 == 0x40 => 6,
            _ => 4,
        };
        let index = integer(b, &mut at, prefix)?;
        let name_literal = if index == 0 {
            Some(string(b, &mut at)?)
        } else {
            None
        };
        let head_end = at;
        let (value, huffman) = string(b, &mut at)?;
        let is_authority = match name_literal {
            None => index == 1,
            Some((n, false)) => n == b":authority",
            Some((n, true)) => crate::huffman::decode(n).ok()?.as_slice() == b":authority",
        };
        if !is_authority {
            out.extend_from_slice(&b[start..at]);
            continue;
        }
        let decoded = if huffman {
            crate::huffman::decode(value).ok()?
        } else {
            value.to_vec()
        };
        if valid_authority(&decoded) {
            out.extend_from_slice(&b[start..at]);
            continue;
        }
        out.extend_from_slice(&b[start..head_end]);
        put_integer(&mut out, 0, 7, decoded.len());
        out.extend(std::iter::repeat_n(b'x', decoded.len()));
        changed = true;
    }
    changed.then_some(out)
}

impl<S: AsyncRead + Unpin> AsyncRead for FixAuthority<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        loop {
            if !me.ready.is_empty() {
                let n = me.ready.len().min(buf.remaining());
                buf.put_slice(&me.ready[..n]);
                me.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if me.eof {
                // A partial frame at the end goes as it is; h2 reports it.
                let rest = std::mem::take(&mut me.pending);
                if rest.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                me.ready = rest;
                continue;
            }
            let mut tmp = [0u8; 16 << 10];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut me.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        me.eof = true;
                    } else {
                        me.pending.extend_from_slice(rb.filled());
                        me.process();
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FixAuthority<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> tonic::transport::server::Connected for FixAuthority<S>
where
    S: Send + 'static,
{
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_frame(block: &[u8]) -> Vec<u8> {
        let n = block.len();
        let mut f = vec![
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8,
            HEADERS,
            END_HEADERS,
        ];
        f.extend_from_slice(&[0, 0, 0, 1]);
        f.extend_from_slice(block);
        f
    }

    #[test]
    fn a_path_authority_becomes_x_of_the_same_length() {
        // `:method: POST` (indexed 3), then `:authority` (static name 1, incremental
        // indexing) with a raw path value.
        let mut block = vec![0x83, 0x41, 9];
        block.extend_from_slice(b"/cri.sock");
        let out = rewrite_headers(&headers_frame(&block)).expect("rewritten");
        let mut want = vec![0x83, 0x41, 9];
        want.extend_from_slice(b"xxxxxxxxx");
        assert_eq!(&out[9..], &want[..]);
        // A valid authority is left alone.
        let mut ok = vec![0x41, 9];
        ok.extend_from_slice(b"localhost");
        assert!(rewrite_headers(&headers_frame(&ok)).is_none());
    }

    #[test]
    fn a_huffman_coded_path_is_decoded_for_its_length() {
        // "www.example.com" Huffman-coded is a valid authority: kept.
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut block = vec![0x41, 0x80 | www.len() as u8];
        block.extend_from_slice(&www);
        assert!(fix_block(&block).is_none());
        assert_eq!(integer(&[0x1f, 0x9a, 0x0a], &mut 0, 5), Some(1337));
        let mut v = Vec::new();
        put_integer(&mut v, 0, 5, 1337);
        assert_eq!(v, [0x1f, 0x9a, 0x0a]);
    }
}
