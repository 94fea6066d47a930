//! A blob's body as the registry sends it: hashed as it is read, its length and digest checked
//! at its end, and a registry that stops sending fails the read after [`limits::READ_IDLE`]
//! (the client's per-read timeout) instead of hanging the pull.

use crate::client::hex_digest;
use crate::error::RegistryError;
use crate::limits;
use reqwest::blocking::Response;
use sha2::{Digest as _, Sha256};
use std::io::Read;

/// A blob's body as it arrives, hashed; at its end the length and digest are checked and a
/// mismatch is the error of the last `read` (a [`RegistryError`] inside the `io::Error`).
pub(crate) struct BlobReader {
    resp: Response,
    hasher: Sha256,
    pub(crate) got: u64,
    want: Option<u64>,
    digest: String,
    checked: bool,
}

impl BlobReader {
    /// Reads `resp`, the answer to a GET of blob `digest`.
    pub(crate) fn new(resp: Response, digest: &str) -> BlobReader {
        BlobReader {
            want: resp.content_length(),
            resp,
            hasher: Sha256::new(),
            got: 0,
            digest: digest.to_string(),
            checked: false,
        }
    }

    fn fail(e: RegistryError) -> std::io::Error {
        std::io::Error::other(e)
    }

    /// The registry error inside an `io::Error` from [`BlobReader::read`].
    pub(crate) fn unwrap_error(e: std::io::Error) -> RegistryError {
        match e.get_ref().map(|i| i.is::<RegistryError>()) {
            Some(true) => e
                .into_inner()
                .and_then(|i| i.downcast::<RegistryError>().ok())
                .map(|b| *b)
                .unwrap_or_else(|| RegistryError::Transport("reading blob".into())),
            _ => RegistryError::Io(e),
        }
    }

    fn check(&mut self) -> Result<(), RegistryError> {
        if let Some(want) = self.want {
            if self.got != want {
                return Err(RegistryError::Truncated {
                    got: self.got,
                    want,
                });
            }
        }
        let actual = hex_digest(std::mem::take(&mut self.hasher));
        if actual != self.digest {
            return Err(RegistryError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self
            .resp
            .read(buf)
            .map_err(|e| Self::fail(limits::read_error(&format!("blob {}", self.digest), &e)))?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            self.got += n as u64;
            return Ok(n);
        }
        if !buf.is_empty() && !self.checked {
            self.checked = true;
            self.check().map_err(Self::fail)?;
        }
        Ok(0)
    }
}
