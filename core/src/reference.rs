//! Image references as Docker normalises them: `busybox` is `docker.io/library/busybox:latest`.
//!
//! The parsing rules (domain detection, default tag, digests, error texts) are filled in by the
//! registry work; this module holds the one type every crate passes around.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A fully normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// Registry host (with port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub domain: String,
    /// Repository path, e.g. `library/busybox`.
    pub path: String,
    /// Tag, if any (`latest` when neither tag nor digest was given).
    pub tag: Option<String>,
    /// Digest, if given with `@sha256:...`.
    pub digest: Option<String>,
}

/// Why a string is not a valid reference (texts as Docker's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Generic malformed reference.
    #[error("invalid reference format")]
    Format,
    /// Upper-case letters in the repository name.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
}

const DEFAULT_DOMAIN: &str = "docker.io";

impl Reference {
    /// Parses and normalises `s` as Docker does.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() || s.contains(char::is_whitespace) {
            return Err(ReferenceError::Format);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let parsed: Result<crate::Digest, _> = d.parse();
                if parsed.is_err() {
                    return Err(ReferenceError::Format);
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(ReferenceError::Format);
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if path.is_empty() || name.ends_with('/') {
            return Err(ReferenceError::Format);
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(name.to_string()));
        }
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !path.split('/').all(valid_component) {
            return Err(ReferenceError::Format);
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as Docker shows it (`busybox`, `127.0.0.1:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// `familiar_name:tag` (or `@digest`), as `images` and `Loaded image:` print.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let r = Reference::parse("busybox").expect("parse");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar_string(), "busybox:latest");
        let r = Reference::parse("127.0.0.1:5000/team/app:1.0").expect("parse");
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.path, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        let r = Reference::parse("localhost/app").expect("parse");
        assert_eq!(r.domain, "localhost");
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(Reference::parse("a b").is_err());
        assert!(Reference::parse("busybox:").is_err());
    }
}
