//! The registry trait: the OCI distribution API as the daemon needs it — resolve a reference
//! to a manifest, fetch manifests and blobs, push blobs and manifests.
//!
//! Calls are synchronous and stream blob content through `Read`/`Write`, so the daemon can
//! verify and unpack while bytes arrive.

use crate::error::DriverResult;
use crate::reference::Reference;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// Credentials for one registry, as `X-Registry-Auth` carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// User name (basic auth / token exchange).
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// A refresh/identity token instead of a password.
    #[serde(default)]
    pub identity_token: String,
}

/// A manifest as fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedManifest {
    /// The `Content-Type` / `mediaType`.
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: String,
    /// The raw manifest bytes (digest-verified).
    pub bytes: Vec<u8>,
}

/// The platform to pick from a manifest list (`--platform`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8`, ... (optional).
    #[serde(default)]
    pub variant: Option<String>,
}

/// An OCI distribution client.
pub trait Registry: Send + Sync {
    /// The client's name (`distribution`).
    fn name(&self) -> String;

    /// Checks credentials against the registry at `server` (`POST /auth`).
    fn login(&self, server: &str, creds: &Credentials) -> DriverResult<()>;

    /// Fetches the manifest `reference` points at (tag or digest), verifying its digest.
    fn fetch_manifest(
        &self,
        reference: &Reference,
        creds: &Credentials,
    ) -> DriverResult<FetchedManifest>;

    /// Streams blob `digest` of `reference`'s repository into `out`, verifying the digest.
    /// Returns the number of bytes written.
    fn fetch_blob(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
        out: &mut dyn Write,
    ) -> DriverResult<u64>;

    /// Opens blob `digest` of `reference`'s repository as a reader of its bytes as they
    /// arrive, so the daemon can verify, decompress and unpack without a copy in between.
    /// The digest and length are checked by the time the reader reports its end: a mismatch,
    /// a truncated stream or a transport error is an error from `read`. The default answers
    /// `Unsupported`; callers then fall back to [`Registry::fetch_blob`]. (The plugin host
    /// implements it for every registry plugin, over `fetch_blob` and a pipe.)
    fn open_blob(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
    ) -> DriverResult<Box<dyn Read + Send>> {
        let _ = (reference, digest, creds);
        Err(crate::DriverError::Unsupported(format!(
            "{} cannot open blobs as streams",
            self.name()
        )))
    }

    /// Whether blob `digest` already exists in `reference`'s repository.
    fn blob_exists(
        &self,
        reference: &Reference,
        digest: &str,
        creds: &Credentials,
    ) -> DriverResult<bool>;

    /// Uploads blob `digest` of `size` bytes read from `data`.
    fn push_blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        creds: &Credentials,
        data: &mut dyn Read,
    ) -> DriverResult<()>;

    /// Puts a manifest under `reference`'s tag; returns its digest.
    fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
        creds: &Credentials,
    ) -> DriverResult<String>;
}
