//! One-time tokens for streaming URLs, as kubelet's request cache: `Exec`, `Attach` and
//! `PortForward` park their request under a random token; the first connection to its URL
//! takes it. Tokens expire after a minute and at most 1000 wait at once.

use crate::error::{CriError, CriResult};
use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token stays valid.
pub const TTL: Duration = Duration::from_secs(60);
/// The most tokens waiting at once.
pub const MAX_PENDING: usize = 1000;

/// Parked requests by token.
pub struct Tokens<T> {
    inner: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T> Default for Tokens<T> {
    fn default() -> Self {
        Tokens {
            inner: Mutex::new(HashMap::new()),
        }
    }
}

/// 16 random bytes, URL-safe base64.
fn fresh() -> CriResult<String> {
    use base64::Engine;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| CriError::internal(format!("streaming token: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

impl<T> Tokens<T> {
    /// Parks `req`; its token.
    pub fn insert(&self, req: T) -> CriResult<String> {
        let token = fresh()?;
        let mut m = self
            .inner
            .lock()
            .map_err(|_| CriError::internal("streaming tokens poisoned"))?;
        m.retain(|_, (at, _)| at.elapsed() < TTL);
        if m.len() >= MAX_PENDING {
            return Err(CriError::Internal(
                "maximum number of in-flight streaming requests exceeded".into(),
            ));
        }
        m.insert(token.clone(), (Instant::now(), req));
        Ok(token)
    }

    /// Takes the request parked under `token`, if it is there and fresh.
    pub fn take(&self, token: &str) -> Option<T> {
        let (at, req) = self.inner.lock().ok()?.remove(token)?;
        (at.elapsed() < TTL).then_some(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_once() {
        let t = Tokens::default();
        let a = t.insert(1).expect("insert");
        let b = t.insert(2).expect("insert");
        assert_ne!(a, b);
        assert_eq!(t.take(&a), Some(1));
        assert_eq!(t.take(&a), None);
        assert_eq!(t.take("nope"), None);
        assert_eq!(t.take(&b), Some(2));
    }
}
