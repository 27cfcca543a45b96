//! TLS for TCP listeners (RFC 5425): the server configuration built from PEM files.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::{SyslogError, TlsConfig};

/// What a TLS listener needs per connection.
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) handshake_timeout: Duration,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the files named by `config` and builds the acceptor.
    pub(crate) fn new(config: &TlsConfig) -> Result<Tls, SyslogError> {
        Ok(Tls {
            acceptor: acceptor(config)?,
            handshake_timeout: config.handshake_timeout.as_duration(),
        })
    }
}

/// The server configuration: TLS 1.2 and 1.3 with aws-lc-rs.
fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, SyslogError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = certificates("cert_path", &config.cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&config.private_key_path).map_err(|e| {
        tls_error(
            "private_key_path",
            &config.private_key_path,
            pem_message(&e, "private key"),
        )
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("cert_path", &config.cert_path, e.to_string()))?;
    let builder = match (&config.ca_path, config.client_cert_auth) {
        (Some(ca_path), true) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("ca_path", ca_path)? {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("ca_path", ca_path, e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_error("ca_path", ca_path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let server = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("private_key_path", &config.private_key_path, e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// Every certificate in a PEM file; at least one.
fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SyslogError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(key, path, pem_message(&e, "certificate")))?;
    if certs.is_empty() {
        return Err(tls_error(key, path, "holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

fn pem_message(e: &rustls::pki_types::pem::Error, what: &str) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("cannot read it: {io}"),
        rustls::pki_types::pem::Error::NoItemsFound => format!("holds no PEM {what}"),
        other => format!("not a valid PEM {what} file: {other:?}"),
    }
}

fn tls_error(key: &'static str, path: &Path, message: String) -> SyslogError {
    SyslogError::Tls {
        key,
        path: path.to_owned(),
        message,
    }
}
