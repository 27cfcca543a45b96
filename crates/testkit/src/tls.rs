//! Test-only TLS certificates (`fixtures/tls`, made by its `generate.sh`).

use std::path::PathBuf;

/// The path of a TLS fixture file: `ca.pem`; `server.pem`/`server.key` (for `127.0.0.1` and
/// `localhost`, signed by `ca.pem`); `client.pem`/`client.key` (a client certificate signed by
/// `ca.pem`); `other-ca.pem` and `other-client.pem`/`other-client.key` (signed by a CA nobody
/// trusts). The keys are public test keys: never use them for anything else.
///
/// ```
/// assert!(logferry_testkit::tls_fixture("server.pem").is_file());
/// ```
pub fn tls_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/tls")
        .join(name)
}
