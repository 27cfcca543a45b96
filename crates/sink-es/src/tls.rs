//! The rustls client configuration: system roots plus `tls.ca_file`, or no verification.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::EsError;
use crate::config::TlsConfig;

fn tls_error(reason: impl Into<String>) -> EsError {
    EsError::Tls {
        reason: reason.into(),
    }
}

/// Builds the client configuration; `load_system_roots` is false when no host uses https.
pub(crate) fn client_config(
    tls: &TlsConfig,
    load_system_roots: bool,
) -> Result<rustls::ClientConfig, EsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    if !tls.verify_certificate {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let native = load_system_roots.then(rustls_native_certs::load_native_certs);
    let roots = root_store(native, tls.ca_file.as_deref())?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The trusted roots: the system's (`native`, loaded when a host uses https) and the
/// certificates of `ca_file`. When https is used and nothing at all is trusted, every request
/// would fail its handshake: that is an error here, at start-up, not an endless retry.
fn root_store(
    native: Option<rustls_native_certs::CertificateResult>,
    ca_file: Option<&std::path::Path>,
) -> Result<RootCertStore, EsError> {
    let mut roots = RootCertStore::empty();
    let mut system_errors = Vec::new();
    let https = native.is_some();
    if let Some(native) = native {
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        for error in native.errors {
            tracing::warn!(%error, "Could not read part of the system's trusted certificates.");
            system_errors.push(error.to_string());
        }
        if ignored > 0 {
            tracing::debug!(
                added,
                ignored,
                "Unparsable system certificates were skipped."
            );
        }
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<_, _>>())
            .map_err(|e| tls_error(format!("`tls.ca_file` `{}`: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(tls_error(format!(
                "`tls.ca_file` `{}` holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| tls_error(format!("`tls.ca_file` `{}`: {e}", path.display())))?;
        }
    }
    if https && roots.is_empty() {
        let why = if system_errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", system_errors.join("; "))
        };
        return Err(tls_error(format!(
            "no trusted root certificate for https hosts: the system store has none{why} and \
             `tls.ca_file` is not set (install the system CA certificates, point SSL_CERT_FILE \
             at a bundle, or set `tls.ca_file`)"
        )));
    }
    Ok(roots)
}

/// Accepts any certificate (`tls.verify_certificate = false`), still checking handshake
/// signatures so the connection is at least consistent.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testkit/fixtures/tls")
            .join(name)
    }

    #[test]
    fn ca_files_are_loaded_or_named_in_errors() {
        let tls = TlsConfig {
            ca_file: Some(fixture("ca.pem")),
            verify_certificate: true,
        };
        client_config(&tls, false).unwrap();
        let missing = TlsConfig {
            ca_file: Some(fixture("nope.pem")),
            verify_certificate: true,
        };
        let err = client_config(&missing, false).unwrap_err().to_string();
        assert!(err.contains("nope.pem"), "{err}");
        let not_a_cert = TlsConfig {
            ca_file: Some(fixture("server.key")),
            verify_certificate: true,
        };
        assert!(client_config(&not_a_cert, false).is_err());
        let insecure = TlsConfig {
            ca_file: None,
            verify_certificate: false,
        };
        client_config(&insecure, false).unwrap();
    }

    #[test]
    fn https_with_nothing_trusted_fails_at_start() {
        let err = root_store(Some(Default::default()), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no trusted root certificate"), "{err}");
        assert!(err.contains("tls.ca_file"), "{err}");
        // A CA file alone is enough; plain http needs no roots at all.
        let roots = root_store(Some(Default::default()), Some(&fixture("ca.pem"))).unwrap();
        assert_eq!(roots.len(), 1);
        assert!(root_store(None, None).unwrap().is_empty());
    }
}
