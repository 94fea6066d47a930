//! TLS for the blocking client, as docker's CLI does it: `--tls` encrypts without checking the
//! daemon's certificate, `--tlsverify` checks it against `--tlscacert`; a client certificate
//! (`--tlscert`/`--tlskey`) is presented when given. Defaults come from `DOCKER_CERT_PATH` (or
//! `~/.docker`), `DOCKER_TLS_VERIFY` and `DOCKER_TLS`.
//!
//! A TLS connection is handed to the caller as one end of a local socket pair, pumped to and
//! from the TCP socket by two threads (one per direction), so it can be cloned and half-closed
//! like a plain socket (hijacked attach/exec streams read and write at once). A half-close
//! sends TLS `close_notify`, as Go's `CloseWrite`.

use crate::client::ClientError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// TLS options of a client (docker's `--tls*` flags and environment).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Check the daemon's certificate against `ca`.
    pub verify: bool,
    /// The CA file (used when verifying).
    pub ca: Option<PathBuf>,
    /// The client certificate to present (with `key`).
    pub cert: Option<PathBuf>,
    /// The client key.
    pub key: Option<PathBuf>,
}

impl TlsOptions {
    /// Docker CLI's rules: TLS when `--tls`, `--tlsverify` (given at all) or `DOCKER_TLS` /
    /// `DOCKER_TLS_VERIFY` say so; files default to `$DOCKER_CERT_PATH` or `~/.docker`
    /// (`ca.pem`, `cert.pem`, `key.pem`), a default certificate or key that does not exist
    /// being left out. `None` when TLS is off.
    pub fn from_flags(
        tls: Option<bool>,
        tlsverify: Option<bool>,
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Option<TlsOptions> {
        let env_set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        let verify = tlsverify.unwrap_or_else(|| env_set("DOCKER_TLS_VERIFY"));
        let on = tlsverify.is_some() || verify || tls.unwrap_or_else(|| env_set("DOCKER_TLS"));
        if !on {
            return None;
        }
        let dir = std::env::var_os("DOCKER_CERT_PATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        let default = |given: Option<PathBuf>, name: &str| match given {
            Some(p) => Some(p),
            None => Some(dir.join(name)).filter(|p| p.exists()),
        };
        Some(TlsOptions {
            verify,
            ca: Some(ca.unwrap_or_else(|| dir.join("ca.pem"))),
            cert: default(cert, "cert.pem"),
            key: default(key, "key.pem"),
        })
    }

    /// The rustls configuration for these options.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let builder = match (&self.ca, self.verify) {
            (Some(ca), true) => {
                let mut roots = RootCertStore::empty();
                for c in read_certs(ca, "CA certificate")? {
                    roots
                        .add(c)
                        .map_err(|e| bad_file(ca, "CA certificate", e))?;
                }
                builder.with_root_certificates(roots)
            }
            (None, true) => return Err(ClientError::Tls("--tlsverify needs a CA file".into())),
            (_, false) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider))),
        };
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "certificate")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad_file(key, "key", e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| ClientError::Tls(format!("client certificate: {e}")))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(ClientError::Tls(
                    "a client certificate needs both --tlscert and --tlskey".into(),
                ))
            }
        };
        Ok(Arc::new(config))
    }
}

fn bad_file(path: &Path, what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(format!("could not read {what} {}: {e}", path.display()))
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    pem_certs(path).map_err(|e| bad_file(path, what, e))
}

/// Why [`pem_certs`] found no certificates.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file could not be read or holds a broken PEM block.
    #[error("{0}")]
    Read(#[from] rustls::pki_types::pem::Error),
    /// The file holds no certificate block.
    #[error("no PEM certificate in it")]
    Empty,
}

/// The certificates of the PEM file `path`, in order, at least one: the one reader of
/// certificate files for the client's `--tls*` files and berthd's TCP listeners.
pub fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let list = CertificateDer::pem_file_iter(path)?.collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(list)
}

/// `--tls` without `--tlsverify`: the daemon's certificate is not checked (its signatures
/// still are, so the channel is encrypted to whoever holds that key).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Writes all of `buf` to a socket without raising SIGPIPE (the CLI restores its default
/// disposition) when the other side is gone.
fn send_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice of `buf.len()` bytes and `fd` an open socket that the
        // caller's stream owns for the duration of the call.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[usize::try_from(n).unwrap_or(0)..];
    }
    Ok(())
}

/// Why a pumped TLS connection ended early (an alert from the daemon, a bad record), for
/// the caller to report instead of a bare end of file.
pub type TlsFailure = Arc<Mutex<Option<String>>>;

/// The reason stored in `f`, if any.
pub(crate) fn failure(f: &TlsFailure) -> Option<String> {
    f.lock().ok().and_then(|g| g.clone())
}

/// The TLS state shared by the two pump threads; `tcp_out` orders their writes to the wire.
struct Shared {
    conn: Mutex<ClientConnection>,
    tcp_out: Mutex<TcpStream>,
}

impl Shared {
    /// Encrypts what rustls has queued and sends it, in order.
    fn flush(&self, mut c: std::sync::MutexGuard<'_, ClientConnection>) -> io::Result<()> {
        let mut out = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut out)?;
        }
        let tcp = self
            .tcp_out
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        drop(c);
        send_all(tcp.as_raw_fd(), &out)
    }
}

/// Connects TLS over `tcp` to `host` (the name or address checked against the certificate),
/// completes the handshake, and returns the local end of the pumped socket pair with the
/// place where a failure of the connection is recorded.
pub(crate) fn connect(
    config: Arc<ClientConfig>,
    host: &str,
    mut tcp: TcpStream,
) -> Result<(UnixStream, TlsFailure), ClientError> {
    let name = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(name.to_string())
        .map_err(|e| ClientError::Tls(format!("invalid server name {host:?}: {e}")))?;
    let mut c = ClientConnection::new(config, name).map_err(|e| ClientError::Tls(e.to_string()))?;
    while c.is_handshaking() {
        c.complete_io(&mut tcp)
            .map_err(|e| ClientError::Tls(format!("TLS handshake with {host} failed: {e}")))?;
    }
    let (ours, theirs) = UnixStream::pair()?;
    let tcp_in = tcp.try_clone()?;
    let shared = Arc::new(Shared {
        conn: Mutex::new(c),
        tcp_out: Mutex::new(tcp),
    });
    let (local_in, local_out) = (ours.try_clone()?, ours);
    let failed = TlsFailure::default();
    let (s, f) = (shared.clone(), failed.clone());
    std::thread::spawn(move || {
        if let Err(e) = from_daemon(&s, tcp_in, &local_out) {
            if let Ok(mut g) = f.lock() {
                *g = Some(e.to_string());
            }
        }
        let _ = local_out.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = to_daemon(&shared, local_in);
    });
    Ok((theirs, failed))
}

/// Daemon → caller: decrypts records until the daemon closes.
fn from_daemon(s: &Shared, mut tcp: TcpStream, local: &UnixStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut plain = vec![0u8; 64 * 1024];
    loop {
        let n = tcp.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut got = Vec::new();
        let mut closed = false;
        {
            let mut c = s.conn.lock().map_err(|_| io::Error::other("poisoned"))?;
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                c.read_tls(&mut rest)?;
                c.process_new_packets().map_err(io::Error::other)?;
                loop {
                    match c.reader().read(&mut plain) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(k) => got.extend_from_slice(&plain[..k]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            if c.wants_write() {
                s.flush(c)?;
            }
        }
        send_all(local.as_raw_fd(), &got)?;
        if closed {
            return Ok(());
        }
    }
}

/// Caller → daemon: encrypts what the caller writes; its half-close sends `close_notify`.
fn to_daemon(s: &Shared, mut local: UnixStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match local.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        let mut c = s.conn.lock().map_err(|_| io::Error::other("poisoned"))?;
        if n == 0 {
            c.send_close_notify();
            return s.flush(c);
        }
        c.writer().write_all(&buf[..n])?;
        s.flush(c)?;
    }
}
