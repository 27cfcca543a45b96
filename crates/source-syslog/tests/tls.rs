//! The source over TLS (RFC 5425), with rustls clients and the test kit's certificates.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{config, json, start};
use logferry_core::ConfigDuration;
use logferry_source_syslog::{Protocol, SyslogConfig, SyslogError, SyslogSource, TlsConfig};
use logferry_testkit::tls_fixture;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

fn tls_config(client_cert_auth: bool) -> SyslogConfig {
    let mut c = config(Protocol::Tcp);
    c.tls = Some(TlsConfig {
        cert_path: tls_fixture("server.pem"),
        private_key_path: tls_fixture("server.key"),
        ca_path: client_cert_auth.then(|| tls_fixture("ca.pem")),
        client_cert_auth,
        handshake_timeout: ConfigDuration::from_secs(10),
    });
    c
}

/// Connects over TLS, trusting the test CA, presenting `identity` (`client` or
/// `other-client`) if given.
async fn connect(
    addr: SocketAddr,
    identity: Option<&str>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(tls_fixture("ca.pem")).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let client = match identity {
        Some(name) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(tls_fixture(&format!("{name}.pem"))).unwrap()],
                PrivateKeyDer::from_pem_file(tls_fixture(&format!("{name}.key"))).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await?;
    // TLS 1.3 reports a rejected client certificate only after the handshake: flush a record
    // through so that the rejection shows up as an error here or on the next write.
    stream.flush().await?;
    Ok(stream)
}

async fn send(stream: &mut TlsStream<TcpStream>, data: &str) -> std::io::Result<()> {
    stream.write_all(data.as_bytes()).await?;
    stream.flush().await
}

#[test]
fn both_framings_over_tls() {
    let running = start(tls_config(false));
    running.runtime.block_on(async {
        let mut s = connect(running.addr, None).await.unwrap();
        let counted = "<165>1 2003-10-11T22:14:15.003Z host app 7 ID1 - over tls";
        send(
            &mut s,
            &format!(
                "{} {counted}<38>Feb  5 17:32:18 myhost sshd[1234]: newline framed\n",
                counted.len()
            ),
        )
        .await
        .unwrap();
        s.shutdown().await.unwrap();
    });
    let got = running.wait_for_records(2);
    let messages: Vec<_> = got
        .iter()
        .map(|(_, j)| json(j)["message"].clone())
        .collect();
    assert_eq!(messages, ["over tls", "newline framed"]);
    assert_eq!(got[1].0, "system.auth.info");
    assert_eq!(json(&got[1].1)["host"], "myhost");
    running.wait_for("closed", |s| s.open_connections() == 0);
    let summary = running.stop().unwrap();
    assert_eq!(summary.tls_handshake_failures, 0);
}

#[test]
fn a_plain_tcp_client_fails_the_handshake_and_is_counted() {
    let running = start(tls_config(false));
    let mut plain = std::net::TcpStream::connect(running.addr).unwrap();
    std::io::Write::write_all(&mut plain, b"<13>plain text, not TLS\n").unwrap();
    running.wait_for("a failed handshake", |s| s.tls_handshake_failures() == 1);
    // The listener still serves TLS clients.
    running.runtime.block_on(async {
        let mut s = connect(running.addr, None).await.unwrap();
        send(&mut s, "<13>after the failure\n").await.unwrap();
    });
    let got = running.wait_for_records(1);
    assert_eq!(json(&got[0].1)["message"], "after the failure");
    assert_eq!(running.count(), 1, "nothing from the plain client");
}

#[test]
fn client_certificates_are_required_and_checked() {
    let running = start(tls_config(true));
    running.runtime.block_on(async {
        let mut trusted = connect(running.addr, Some("client")).await.unwrap();
        send(&mut trusted, "<13>from a trusted client\n")
            .await
            .unwrap();
        // No certificate, or one from another CA: the handshake fails on the server.
        for identity in [None, Some("other-client")] {
            let rejected = async {
                let mut s = connect(running.addr, identity).await?;
                send(&mut s, "<13>must not arrive\n").await?;
                // The server's alert may arrive after our write: a read sees it.
                let mut buf = [0u8; 16];
                tokio::io::AsyncReadExt::read(&mut s, &mut buf).await
            };
            match tokio::time::timeout(Duration::from_secs(20), rejected).await {
                Ok(Ok(0)) | Ok(Err(_)) => {}
                other => panic!("{identity:?} was not rejected: {other:?}"),
            }
        }
    });
    running.wait_for("two failed handshakes", |s| s.tls_handshake_failures() == 2);
    let got = running.wait_for_records(1);
    assert_eq!(json(&got[0].1)["message"], "from a trusted client");
    assert_eq!(running.count(), 1);
}

#[test]
fn a_silent_client_times_out_of_the_handshake() {
    let mut c = tls_config(false);
    c.tls.as_mut().unwrap().handshake_timeout = ConfigDuration::new(Duration::from_millis(200));
    let running = start(c);
    let _silent = std::net::TcpStream::connect(running.addr).unwrap();
    running.wait_for("a timed-out handshake", |s| {
        s.tls_handshake_failures() == 1 && s.open_connections() == 0
    });
}

#[test]
fn unusable_certificate_files_are_named_at_bind() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bind = |c: SyslogConfig| runtime.block_on(SyslogSource::bind("t", c)).unwrap_err();
    let with = |f: &dyn Fn(&mut TlsConfig)| {
        let mut c = tls_config(true);
        f(c.tls.as_mut().unwrap());
        c
    };
    let missing = tls_fixture("missing.pem");
    match bind(with(&|t| t.cert_path = missing.clone())) {
        SyslogError::Tls { key, path, message } => {
            assert_eq!((key, path), ("cert_path", missing.clone()));
            assert!(message.starts_with("cannot read it"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A certificate where the key should be.
    let e = bind(with(&|t| t.private_key_path = tls_fixture("server.pem")));
    assert!(
        matches!(&e, SyslogError::Tls { key: "private_key_path", message, .. } if message.contains("no PEM private key")),
        "{e}"
    );
    // A key that does not belong to the certificate.
    let e = bind(with(&|t| t.private_key_path = tls_fixture("client.key")));
    assert!(
        matches!(
            &e,
            SyslogError::Tls {
                key: "private_key_path",
                ..
            }
        ),
        "{e}"
    );
    // A key where the CA should be.
    let e = bind(with(&|t| t.ca_path = Some(tls_fixture("ca.key"))));
    assert!(
        matches!(&e, SyslogError::Tls { key: "ca_path", message, .. } if message.contains("no PEM certificate")),
        "{e}"
    );
    assert!(e.to_string().contains("ca.key"), "{e}");
}
