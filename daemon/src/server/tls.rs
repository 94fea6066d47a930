//! The TLS side of the TCP listeners: a rustls server configuration built from the PEM files
//! of the settings (server certificate chain and key; with `tlsverify`, the CA that client
//! certificates must chain to), loaded once at start-up so a bad file stops berthd before it
//! binds anything.

use crate::tlsconf::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("could not load {what} {path}: {reason}")]
    Load {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// rustls refused the combination (key does not match the certificate, bad CA...).
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

fn load_err(what: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Load {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    berth_api::tls::pem_certs(path).map_err(|e| load_err(what, path, e))
}

/// Builds the acceptor of the TCP listeners, or `None` when TLS is off.
pub fn acceptor(cfg: &TlsConfig) -> Result<Option<TlsAcceptor>, TlsError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs("certificate", &cfg.cert)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| load_err("key", &cfg.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if cfg.verify {
        let mut roots = RootCertStore::empty();
        for c in certs("CA certificate", &cfg.ca)? {
            roots
                .add(c)
                .map_err(|e| load_err("CA certificate", &cfg.ca, e))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut server = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}
