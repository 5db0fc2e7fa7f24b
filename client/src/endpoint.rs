//! Where a Parley server is and which certificate authorities to trust for
//! it.
//!
//! Public servers need nothing extra (the Mozilla roots from `webpki-roots`
//! are always trusted); a private deployment with its own CA, or a test with
//! a generated certificate, adds that CA here. The HTTP client and the
//! websocket share the same trust so they can never disagree about a
//! server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio_tungstenite::Connector;

/// Why an [`Endpoint`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The CA file is missing, unreadable or holds no certificate.
    #[error("reading CA certificate {path}: {reason}")]
    CaFile {
        /// The file given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TLS stack refused the configuration.
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// A server URL plus the extra certificate authorities trusted for it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: String,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl Endpoint {
    /// `url` (`http://` or `https://`), trusting the public web roots.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_string(),
            extra_roots: Vec::new(),
        }
    }

    /// Also trusts every certificate in the PEM file at `path`.
    pub fn with_ca_file(mut self, path: &Path) -> Result<Self, EndpointError> {
        let certs =
            parley_wire::pem::read_certificates(path).map_err(|e| EndpointError::CaFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        self.extra_roots.extend(certs);
        Ok(self)
    }

    /// Also trusts `cert` (DER).
    pub fn with_ca_der(mut self, cert: Vec<u8>) -> Self {
        self.extra_roots.push(CertificateDer::from(cert));
        self
    }

    /// The server URL without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An HTTP client trusting this endpoint's roots.
    pub fn http_client(&self) -> Result<reqwest::Client, EndpointError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .use_rustls_tls();
        for cert in &self.extra_roots {
            let cert = reqwest::Certificate::from_der(cert)
                .map_err(|e| EndpointError::Tls(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build()
            .map_err(|e| EndpointError::Tls(e.to_string()))
    }

    /// The websocket's TLS connector, with the same roots as
    /// [`http_client`](Self::http_client). The ring provider is named
    /// explicitly: binaries that link str0m carry aws-lc-rs as well.
    pub(crate) fn ws_connector(&self) -> Result<Connector, EndpointError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in &self.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| EndpointError::Tls(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| EndpointError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Connector::Rustls(Arc::new(config)))
    }
}

impl From<&str> for Endpoint {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<&String> for Endpoint {
    fn from(url: &String) -> Self {
        Self::new(url.as_str())
    }
}

impl From<String> for Endpoint {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(endpoint: &Endpoint) -> Self {
        endpoint.clone()
    }
}
