//! Content digests (`sha256:<64 hex>`), the addresses of blobs, layers and images.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not of the form `algorithm:hex`.
    #[error("invalid digest format: {0:?}")]
    Format(String),
    /// An algorithm other than sha256.
    #[error("unsupported digest algorithm: {0}")]
    Algorithm(String),
    /// The hex part has the wrong length or characters.
    #[error("invalid checksum digest length or characters: {0:?}")]
    Hex(String),
}

/// A sha256 content digest. Always lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Digest {
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// Builds a digest from a finished hasher.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Digest {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// Builds a digest from 64 lower-case hex characters (no algorithm prefix).
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Hex(hex.to_string()));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The algorithm name, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as Docker prints short IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_string()))?;
        if alg != "sha256" {
            return Err(DigestError::Algorithm(alg.to_string()));
        }
        Digest::from_hex(hex)
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d.clone()));
        assert!("md5:abc".parse::<Digest>().is_err());
        assert!("sha256:XYZ".parse::<Digest>().is_err());
        assert!("nocolon".parse::<Digest>().is_err());
    }
}
