//! Reading certificates from PEM files: the server's chain and a client's
//! extra trust roots use the same reader.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why a PEM certificate file gave no certificates.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file could not be read or is not PEM.
    #[error("{0}")]
    Unreadable(String),
    /// The file is PEM but holds no certificate.
    #[error("no PEM certificate in the file")]
    Empty,
}

/// Every certificate in the PEM file at `path`.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| PemError::Unreadable(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::Unreadable(e.to_string()))?;
    if certs.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(certs)
}
