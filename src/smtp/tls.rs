//! The SMTP listener's TLS identity for STARTTLS: a certificate chain and key from PEM files
//! (`--tls-cert`, `--tls-key`), or, without them, a self-signed certificate made at start-up.
//! rustls with the `ring` provider: no OpenSSL, no aws-lc.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// PEM files with a certificate chain (leaf first) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tls-cert`: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// `--tls-key`: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The TLS identity could not be loaded or made. Shown at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {}: {detail}", .path.display())]
    Cert { path: PathBuf, detail: String },
    #[error("cannot read the TLS key {}: {detail}", .path.display())]
    Key { path: PathBuf, detail: String },
    #[error("the TLS certificate {} and key {} do not go together: {detail}", .cert.display(), .key.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("cannot make a self-signed TLS certificate: {0}")]
    SelfSigned(String),
}

/// A loaded TLS identity: what accepts STARTTLS handshakes, and where it came from.
#[derive(Clone)]
pub struct Tls {
    /// Accepts a handshake on a plain stream.
    pub acceptor: TlsAcceptor,
    /// For the start-up log: `self-signed` or the certificate's path.
    pub source: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads `files`, or makes a self-signed certificate for `localhost`, the loopback
    /// addresses and `bind` (when it is a specific address).
    ///
    /// # Errors
    /// [`TlsError`] naming the file that cannot be read or parsed, or a key that does not
    /// match its certificate.
    pub fn load(files: Option<&TlsFiles>, bind: IpAddr) -> Result<Tls, TlsError> {
        let (chain, key, source) = match files {
            Some(f) => {
                let (chain, key) = read_files(f)?;
                (chain, key, f.cert.display().to_string())
            }
            None => {
                let (chain, key) = self_signed(bind)?;
                (chain, key, "self-signed".to_owned())
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| match files {
                Some(f) => TlsError::Mismatch {
                    cert: f.cert.clone(),
                    key: f.key.clone(),
                    detail: e.to_string(),
                },
                None => TlsError::SelfSigned(e.to_string()),
            })?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            source,
        })
    }
}

fn read_files(
    f: &TlsFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert_error = |detail: String| TlsError::Cert {
        path: f.cert.clone(),
        detail,
    };
    let chain = CertificateDer::pem_file_iter(&f.cert)
        .map_err(|e| cert_error(pem_detail(&f.cert, e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(pem_detail(&f.cert, e)))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE block in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&f.key).map_err(|e| TlsError::Key {
        path: f.key.clone(),
        detail: pem_detail(&f.key, e),
    })?;
    Ok((chain, key))
}

/// Says what went wrong with a PEM file in words an operator can act on.
fn pem_detail(path: &Path, e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => io.to_string(),
        E::NoItemsFound => format!("no PEM block of the right kind in {}", path.display()),
        other => format!("not a valid PEM file ({other:?})"),
    }
}

fn self_signed(
    bind: IpAddr,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let mut names = vec![
        super::HOSTNAME.to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !bind.is_unspecified() && !bind.is_loopback() {
        names.push(bind.to_string());
    }
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    Ok((vec![made.cert.der().clone()], key.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_self_signed_identity() {
        let tls = Tls::load(None, "0.0.0.0".parse().unwrap()).unwrap();
        assert_eq!(tls.source, "self-signed");
    }

    #[test]
    fn loads_pem_files_and_names_the_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        };
        let ip = "127.0.0.1".parse().unwrap();
        let tls = Tls::load(Some(&files), ip).unwrap();
        assert_eq!(tls.source, cert.display().to_string());

        let missing = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: key.clone(),
        };
        let e = Tls::load(Some(&missing), ip).unwrap_err().to_string();
        assert!(e.contains("nope.pem") && e.contains("certificate"), "{e}");

        let swapped = TlsFiles {
            cert: key.clone(),
            key: cert.clone(),
        };
        let e = Tls::load(Some(&swapped), ip).unwrap_err().to_string();
        assert!(e.contains("key.pem"), "{e}");

        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other_key = dir.path().join("other.pem");
        std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
        let mismatched = TlsFiles {
            cert,
            key: other_key,
        };
        let e = Tls::load(Some(&mismatched), ip).unwrap_err().to_string();
        assert!(e.contains("do not go together"), "{e}");
    }
}
