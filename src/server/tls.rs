//! Inbound TLS (`server.tls`): rustls with a certificate chain and key from
//! PEM files, HTTP/2 or HTTP/1.1 by ALPN, and the files read again when they
//! change (a renewed certificate, a Kubernetes Secret swapped in place) with
//! no restart and no dropped connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// How often the certificate and key files are checked for a change.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Loads `files`: the certificate chain (leaf first) and its private key.
///
/// # Errors
/// What is wrong, naming the file; never the key's contents.
pub(super) fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, String> {
    let provider = rustls::crypto::ring::default_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("server.tls.cert: cannot read {}: {e}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "server.tls.cert: {} is not a PEM certificate file: {e}",
                files.cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "server.tls.cert: {} holds no PEM certificate",
            files.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "server.tls.key: {} holds no usable PEM private key: {e}",
            files.key.display()
        )
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("server.tls.key: {}: {e}", files.key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        format!(
            "server.tls.key: {} is not the key of the certificate in {}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// The certificate in use, swapped when the files change.
#[derive(Debug)]
struct Current(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// Accepts TLS connections with the current certificate.
pub(super) struct Tls {
    pub(super) acceptor: TlsAcceptor,
    current: Arc<Current>,
    files: TlsFiles,
}

impl Tls {
    /// Loads the files and builds the acceptor (ALPN: h2, then http/1.1).
    ///
    /// # Errors
    /// See [`load`].
    pub(super) fn new(files: TlsFiles) -> Result<Tls, String> {
        let current = Arc::new(Current(ArcSwap::new(load(&files)?)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("server.tls: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
            files,
        })
    }

    /// Checks the files every [`CHECK_EVERY`] and swaps in a changed
    /// certificate; a broken one is logged and the last good one kept.
    /// Runs until the returned handle is aborted.
    pub(super) fn watch(&self) -> tokio::task::JoinHandle<()> {
        let current = self.current.clone();
        let files = self.files.clone();
        tokio::spawn(async move {
            let mut seen = stamp(&files);
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = stamp(&files);
                if now == seen {
                    continue;
                }
                seen = now;
                match load(&files) {
                    Ok(certified) => {
                        current.0.store(certified);
                        tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                    }
                    Err(err) => tracing::error!(
                        "TLS certificate not reloaded, still serving the previous one: {err}"
                    ),
                }
            }
        })
    }
}

/// What identifies a version of the files: modification time and length.
fn stamp(files: &TlsFiles) -> [(Option<SystemTime>, u64); 2] {
    let one =
        |path: &Path| std::fs::metadata(path).map_or((None, 0), |m| (m.modified().ok(), m.len()));
    [one(&files.cert), one(&files.key)]
}

/// Resolves `path` against the config file's directory when it is relative.
pub fn resolve(config_path: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    config_path
        .parent()
        .map_or_else(|| path.to_owned(), |dir| dir.join(path))
}
