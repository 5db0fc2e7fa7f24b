//! HTTPS and WSS for the signaling server: a rustls certificate pair loaded
//! at start, served with `axum-server`.
//!
//! The ring provider is named explicitly instead of relying on rustls'
//! process-wide default: binaries that also link str0m carry aws-lc-rs too,
//! and rustls refuses to pick between two providers on its own.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

/// How long open connections get to finish after shutdown is asked for.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Why a certificate pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("reading TLS certificate {path}: {reason}")]
    Certificate {
        /// The file given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no private key.
    #[error("reading TLS private key {path}: {reason}")]
    PrivateKey {
        /// The file given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("TLS certificate and key do not form a usable pair: {0}")]
    Config(#[from] rustls::Error),
}

/// Loads a PEM certificate chain and its PEM private key (PKCS#8, PKCS#1 or
/// SEC1) into a server configuration offering HTTP/1.1 and HTTP/2.
pub fn load_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain =
        parley_wire::pem::read_certificates(cert_path).map_err(|e| TlsError::Certificate {
            path: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::PrivateKey {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then
/// gives open connections [`DRAIN_TIME`] to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(DRAIN_TIME));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, RustlsConfig::from_config(tls))?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
