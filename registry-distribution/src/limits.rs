//! Bounds on what a registry may send: the largest manifest, token reply and error body read
//! into memory, and how long a read may wait for the next byte. A hostile or broken registry
//! (an endless manifest, a 100 MB error page, a connection that stalls after its headers)
//! fails the pull with an error naming the bound instead of exhausting berthd's memory or
//! hanging the pull forever.
//!
//! The manifest bound is the 4 MiB that registries and containerd use. Image configs are
//! blobs, streamed to the caller: berthd bounds the one it reads into memory itself.

use crate::error::RegistryError;
use std::io::Read;
use std::time::Duration;

/// The largest manifest (or index) read: 4 MiB.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The largest token-server reply read: 1 MiB.
pub const MAX_TOKEN_REPLY: u64 = 1 << 20;
/// The most of an error answer's body read for its message: 64 KiB.
pub const MAX_ERROR_BODY: u64 = 64 << 10;
/// Connecting to a registry (TCP and TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a download (headers, then each read of a body) may wait for data: a blob may
/// take long, but it must make progress.
pub const READ_IDLE: Duration = Duration::from_secs(30);
/// The same for requests carrying a body (uploads), whose wait for the answer also covers
/// sending the body.
pub const UPLOAD_READ_IDLE: Duration = Duration::from_secs(600);

/// A size in the units people read (`4 MiB`, `64 KiB`).
pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads all of `body` (`what` names it in errors: "manifest", "token reply"), failing with
/// [`RegistryError::TooLarge`] once it passes `limit` bytes. `announced` is the
/// Content-Length, refused at once when above the limit.
pub fn read_capped(
    body: &mut dyn Read,
    announced: Option<u64>,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, RegistryError> {
    if announced.is_some_and(|n| n > limit) {
        return Err(RegistryError::TooLarge { what, limit });
    }
    let mut out = Vec::with_capacity(announced.unwrap_or(0).min(limit) as usize);
    let mut bounded = body.take(limit + 1);
    bounded
        .read_to_end(&mut out)
        .map_err(|e| read_error(what, &e))?;
    if out.len() as u64 > limit {
        return Err(RegistryError::TooLarge { what, limit });
    }
    Ok(out)
}

/// Reads at most `limit` bytes of `body` (an error page: what is past the bound is dropped,
/// as is the rest of the connection); read errors end it early.
pub fn read_prefix(body: &mut dyn Read, limit: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = body.take(limit).read_to_end(&mut out);
    out
}

/// The error for a failed read of `what`, saying so when the registry stopped sending.
pub fn read_error(what: &str, e: &std::io::Error) -> RegistryError {
    if is_timeout(e) {
        RegistryError::Stalled {
            what: what.to_string(),
            secs: READ_IDLE.as_secs(),
        }
    } else {
        RegistryError::Transport(format!("reading {what}: {e}"))
    }
}

/// Whether `e` is a read timeout (reqwest wraps its own error inside the `io::Error`).
pub fn is_timeout(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|i| i as _);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<reqwest::Error>() {
            if r.is_timeout() {
                return true;
            }
        }
        if s.to_string().contains("timed out") {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_bodies() {
        let mut small = &b"{}"[..];
        assert_eq!(
            read_capped(&mut small, None, 4, "manifest").expect("accepted"),
            b"{}"
        );
        let mut endless = std::io::repeat(b'x');
        let e = read_capped(&mut endless, None, 1 << 10, "manifest").expect_err("refused");
        assert_eq!(
            e.to_string(),
            "manifest is larger than the limit of 1 KiB: refusing it"
        );
        let mut announced = &b"xx"[..];
        assert!(matches!(
            read_capped(&mut announced, Some(5 << 20), MAX_MANIFEST, "manifest"),
            Err(RegistryError::TooLarge { .. })
        ));
        let mut page = std::io::repeat(b'e');
        assert_eq!(read_prefix(&mut page, 10).len(), 10);
        assert_eq!(human(MAX_MANIFEST), "4 MiB");
        assert_eq!(human(MAX_ERROR_BODY), "64 KiB");
    }
}
