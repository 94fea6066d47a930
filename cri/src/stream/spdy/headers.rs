//! SPDY/3 header blocks: a count, then length-prefixed names and values (32-bit big-endian
//! lengths; several values of one name joined by NUL), compressed with one zlib stream per
//! direction for the whole connection, primed with the draft's dictionary and flushed
//! (`Z_SYNC_FLUSH`) after each block. Decoding is bounded: a block inflates to at most
//! [`MAX_BLOCK`] bytes and [`MAX_PAIRS`] pairs.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The largest header block accepted, inflated.
pub const MAX_BLOCK: usize = 64 << 10;
/// The most name/value pairs accepted in one block.
pub const MAX_PAIRS: u32 = 256;

/// The length-prefixed words the SPDY/3 draft's zlib dictionary starts with.
const WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The raw text the dictionary ends with.
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 header compression dictionary.
pub fn dictionary() -> Vec<u8> {
    let mut d = Vec::with_capacity(1424);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
}

/// A header block that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The zlib stream is corrupt.
    #[error("corrupt header block: {0}")]
    Zlib(String),
    /// The block inflates past [`MAX_BLOCK`] or holds too many pairs.
    #[error("header block too large")]
    TooLarge,
    /// The block's lengths do not add up.
    #[error("malformed header block")]
    Malformed,
}

/// Name/value pairs (names lower-case, as SPDY sends them).
pub type Headers = Vec<(String, String)>;

/// The first value of `name` (compared case-insensitively).
pub fn get<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One direction's inflater.
pub struct Inflater {
    z: Decompress,
    dict: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            z: Decompress::new(true),
            dict: dictionary(),
        }
    }
}

impl Inflater {
    /// Inflates and parses one compressed block.
    pub fn decode(&mut self, mut input: &[u8]) -> Result<Headers, HeaderError> {
        let mut out: Vec<u8> = Vec::with_capacity(1024);
        loop {
            if out.len() == out.capacity() {
                if out.capacity() >= MAX_BLOCK {
                    return Err(HeaderError::TooLarge);
                }
                out.reserve((out.capacity() * 2).min(MAX_BLOCK) - out.len());
            }
            let (before, grown) = (self.z.total_in(), out.len());
            let r = self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.z.total_in() - before) as usize;
            input = &input[used.min(input.len())..];
            match r {
                Ok(Status::StreamEnd) => break,
                Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(_) if used == 0 && out.len() == grown && out.len() < out.capacity() => {
                    return Err(HeaderError::Malformed)
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(&self.dict)
                        .map_err(|e| HeaderError::Zlib(e.to_string()))?;
                }
                Err(e) => return Err(HeaderError::Zlib(e.to_string())),
            }
        }
        parse(&out)
    }
}

/// Reads a 32-bit big-endian length at `at`.
fn u32_at(b: &[u8], at: usize) -> Result<usize, HeaderError> {
    let s = b.get(at..at + 4).ok_or(HeaderError::Malformed)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// Parses an inflated block.
fn parse(b: &[u8]) -> Result<Headers, HeaderError> {
    let n = u32_at(b, 0)?;
    if n > MAX_PAIRS as usize {
        return Err(HeaderError::TooLarge);
    }
    let mut at = 4;
    let mut h = Vec::with_capacity(n);
    let text = |at: &mut usize| -> Result<String, HeaderError> {
        let len = u32_at(b, *at)?;
        let s = b
            .get(*at + 4..*at + 4 + len)
            .ok_or(HeaderError::Malformed)?;
        *at += 4 + len;
        Ok(String::from_utf8_lossy(s).into_owned())
    };
    for _ in 0..n {
        let name = text(&mut at)?.to_ascii_lowercase();
        let value = text(&mut at)?;
        for v in value.split('\0') {
            h.push((name.clone(), v.to_string()));
        }
    }
    Ok(h)
}

/// One direction's deflater.
pub struct Deflater {
    z: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        let mut z = Compress::new(Compression::default(), true);
        // A fresh stream always takes its dictionary.
        let _ = z.set_dictionary(&dictionary());
        Deflater { z }
    }
}

impl Deflater {
    /// Serializes and compresses `h` (flushed: the block is complete in the output).
    pub fn encode(&mut self, h: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(h.len() as u32).to_be_bytes());
        for (n, v) in h {
            for s in [n.to_ascii_lowercase().as_bytes(), v.as_bytes()] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s);
            }
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let before = self.z.total_in();
            let r = self.z.compress_vec(input, &mut out, FlushCompress::Sync);
            let used = (self.z.total_in() - before) as usize;
            input = &input[used.min(input.len())..];
            match r {
                Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_drafts() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        // zlib's adler32 of the SPDY/3 dictionary, as a SPDY peer's zlib header names it.
        let (mut a, mut b) = (1u32, 0u32);
        for x in &d {
            a = (a + u32::from(*x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 3_821_447_106);
    }

    #[test]
    fn blocks_round_trip_across_one_stream() {
        let (mut d, mut i) = (Deflater::default(), Inflater::default());
        for n in 0..3 {
            let port = n.to_string();
            let block = d.encode(&[("streamtype", "data"), ("port", &port)]);
            let h = i.decode(&block).expect("decode");
            assert_eq!(get(&h, "streamType"), Some("data"));
            assert_eq!(get(&h, "port"), Some(port.as_str()));
        }
        assert!(i.decode(&d.encode(&[])).expect("empty").is_empty());
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let mut d = Deflater::default();
        let big = "x".repeat(MAX_BLOCK * 2);
        let block = d.encode(&[("a", &big)]);
        assert!(Inflater::default().decode(&block).is_err());
        assert!(Inflater::default().decode(b"\x78\xbb garbage").is_err());
    }
}
