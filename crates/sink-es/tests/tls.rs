//! The Elasticsearch output over HTTPS (rustls) against the testkit bulk server serving the
//! test kit's server certificate (`tls_fixture("server.pem")`, signed by its `ca.pem`).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{acked, events, expected_documents};
use logferry_core::AckStatus;
use logferry_sink_es::{EsConfig, EsError, OutputConfig};
use logferry_testkit::{BulkServer, tls_fixture};
use serde_json::Value;

const SHUTDOWN: Duration = Duration::from_secs(10);

fn https_server() -> BulkServer {
    let server = BulkServer::builder()
        .tls(tls_fixture("server.pem"), tls_fixture("server.key"))
        .basic_auth("elastic", "s3cret")
        .start()
        .unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"), "{server:?}");
    server
}

/// An output for `server` with fast retries, from a TOML table as the ingester reads it;
/// `tls` is the inline `tls = { ... }` table, if any.
fn config(server: &BulkServer, index: &str, tls: Option<&str>) -> EsConfig {
    let mut text = format!(
        "type = \"elasticsearch\"\nhosts = [\"{}\"]\nindex = \"{index}\"\n\
         auth = {{ type = \"basic\", user = \"elastic\", password = \"s3cret\" }}\n\
         batch_max_events = 100\nbatch_timeout = \"50ms\"\n\
         retry_initial_backoff = \"10ms\"\nretry_max_backoff = \"100ms\"\n",
        server.url()
    );
    if let Some(tls) = tls {
        text.push_str(&format!("tls = {tls}\n"));
    }
    let config: OutputConfig = toml::from_str(&text).unwrap();
    config.validate().unwrap();
    match config {
        OutputConfig::Elasticsearch(config) => *config,
        other => panic!("not elasticsearch: {other:?}"),
    }
}

/// `tls = { ca_file = '...' }` (a TOML literal string: no escaping of the path).
fn ca_file(path: &Path) -> String {
    format!("{{ ca_file = '{}' }}", path.display())
}

/// Log lines of the output, captured for the current thread (use a current-thread runtime so
/// that the output's tasks run on it).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_ca_file_indexes_exact_documents() {
    let server = https_server();
    let config = config(&server, "tls-exact", Some(&ca_file(&tls_fixture("ca.pem"))));
    assert_eq!(config.tls.ca_file.as_deref(), Some(&*tls_fixture("ca.pem")));
    assert!(config.tls.verify_certificate);
    let sink = config.build("es", None).await.unwrap();
    let (batch, ack) = events("alb/tls.log.gz", 0, 250);
    let expected: BTreeMap<String, Value> = expected_documents(&batch).into_iter().collect();
    assert_eq!(expected.len(), 250);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!(
        (stats.delivered, stats.errored, stats.failed_requests),
        (250, 0, 0)
    );
    // Exactly these documents, nothing else, in the one index.
    assert_eq!(server.indices(), ["tls-exact"]);
    assert_eq!(server.documents("tls-exact"), expected);
    assert_eq!(server.items_received(), 250, "no item was sent twice");
    let requests = server.requests();
    assert!(requests.len() >= 3, "{}", requests.len());
    assert!(
        requests
            .iter()
            .all(|r| r.is_bulk() && r.status == 200 && r.gzip)
    );
    assert!(requests.iter().all(|r| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))
    }));
    assert_eq!(server.tls_handshake_failures(), Vec::<String>::new());
}

/// Without the test CA (system roots only), or trusting another CA, the certificate is refused:
/// requests fail and are retried, nothing reaches the server, nothing is acknowledged
/// delivered; shutdown gives the events up as `Errored`.
#[tokio::test(flavor = "current_thread")]
async fn https_without_the_ca_fails_on_the_certificate_and_delivers_nothing() {
    let other_ca = ca_file(&tls_fixture("other-ca.pem"));
    for tls in [None, Some(other_ca.as_str())] {
        let server = https_server();
        let (logs, _guard) = capture_logs();
        let sink = config(&server, "tls-refused", tls)
            .build("es", None)
            .await
            .unwrap();
        let (batch, mut ack) = events("alb/refused.log.gz", 0, 5);
        sink.send(batch).await.unwrap();
        let refused = logferry_testkit::wait_until_async(
            Instant::now() + Duration::from_secs(20),
            || async {
                sink.stats().failed_requests >= 3 && server.tls_handshake_failures().len() >= 3
            },
        )
        .await;
        assert!(
            refused,
            "{tls:?}: {:?}, server saw {:?}",
            sink.stats(),
            server.tls_handshake_failures()
        );
        assert_eq!(ack.try_status(), None, "{tls:?}: acknowledged too early");
        // The server saw the client's alert, never a request.
        let failures = server.tls_handshake_failures();
        assert!(
            failures.iter().all(|f| f.contains("UnknownCA")),
            "{tls:?}: {failures:?}"
        );
        assert_eq!(server.request_count(), 0);
        assert_eq!(server.total_count(), 0);
        // The output's log says which host failed and that its certificate was refused.
        let text = logs.text();
        let line = text
            .lines()
            .find(|l| l.contains("Bulk request failed; retrying."))
            .unwrap_or_else(|| panic!("{tls:?}: no retry logged:\n{text}"));
        let lower = line.to_lowercase();
        assert!(line.contains(&server.url()), "{line}");
        assert!(
            lower.contains("certificate")
                && (lower.contains("unknownissuer") || lower.contains("unknown issuer")),
            "{tls:?}: {line}"
        );
        let stats = sink.shutdown(Duration::from_millis(200)).await;
        assert_eq!((stats.delivered, stats.errored), (0, 5), "{tls:?}");
        assert_eq!(acked(ack).await, AckStatus::Errored, "{tls:?}");
        assert_eq!(server.total_count(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_certificate_false_accepts_an_unknown_ca() {
    let server = https_server();
    let sink = config(
        &server,
        "tls-insecure",
        Some("{ verify_certificate = false }"),
    )
    .build("es", None)
    .await
    .unwrap();
    let (batch, ack) = events("alb/insecure.log.gz", 0, 20);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(sink.shutdown(SHUTDOWN).await.delivered, 20);
    assert_eq!(server.count("tls-insecure"), 20);
    assert!(server.tls_handshake_failures().is_empty());
}

/// A CA file that is missing, not PEM, holds no certificate or a broken one: `build` fails with
/// an error naming `tls.ca_file` and the file, before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_ca_files_are_errors_naming_the_file() {
    let server = https_server();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, contents: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    let cases = [
        dir.path().join("missing-ca.pem"),
        write("not-pem.pem", b"this is not a certificate\n"),
        write("empty.pem", b""),
        write("binary.der", &[0x30, 0x82, 0xff, 0x00, 0x80, 0xfe]),
        write(
            "bad-base64.pem",
            b"-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n",
        ),
        write(
            "not-der.pem",
            b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        ),
        // A PEM file, but of a private key.
        tls_fixture("server.key"),
        dir.path().to_path_buf(),
    ];
    for path in cases {
        let result = config(&server, "tls-bad-ca", Some(&ca_file(&path)))
            .build("es", None)
            .await;
        let err = match result {
            Ok(sink) => {
                sink.shutdown(SHUTDOWN).await;
                panic!("`{}` was accepted as a CA file", path.display());
            }
            Err(err) => err,
        };
        assert!(
            matches!(err, EsError::Tls { .. }),
            "{}: {err:?}",
            path.display()
        );
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(text.contains("tls.ca_file"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
    assert_eq!(server.request_count(), 0);
    assert!(server.tls_handshake_failures().is_empty());
}
