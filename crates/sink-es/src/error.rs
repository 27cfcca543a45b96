//! The errors of the Elasticsearch output.

use std::path::PathBuf;

/// An error of the Elasticsearch/NDJSON/dead-letter outputs: configuration, startup I/O, and
/// the failures of one bulk request (which say whether they are worth retrying).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EsError {
    /// A configuration value is invalid.
    #[error("invalid `{key}`: {reason}")]
    Config {
        /// The configuration key (`hosts`, `auth.region`, ...).
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The index template could not be parsed.
    #[error("invalid `index` template `{template}` at byte {position}: {reason}")]
    Template {
        /// The template text.
        template: String,
        /// Byte offset of the problem.
        position: usize,
        /// What is wrong there.
        reason: String,
    },
    /// A file (CA bundle, NDJSON output, dead-letter file) could not be opened or read.
    #[error("cannot use `{}` for `{key}`", path.display())]
    File {
        /// The configuration key naming the file.
        key: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up (bad CA file contents, no usable roots).
    #[error("TLS setup failed: {reason}")]
    Tls {
        /// What went wrong.
        reason: String,
    },
    /// AWS credentials for SigV4 could not be loaded. Retryable.
    #[error("AWS credentials for SigV4 are unavailable")]
    Credentials {
        /// The provider's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request could not be signed.
    #[error("SigV4 signing failed: {reason}")]
    Signing {
        /// What went wrong.
        reason: String,
    },
    /// The connection failed, timed out, or the answer could not be read. Retryable.
    #[error("request to {host} failed")]
    Connection {
        /// The host URL.
        host: String,
        /// The HTTP client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request timed out. Retryable.
    #[error("request to {host} timed out after {timeout:?}")]
    Timeout {
        /// The host URL.
        host: String,
        /// The configured timeout.
        timeout: std::time::Duration,
    },
    /// The server answered the whole request with an error status.
    #[error("{host} answered HTTP {status}: {body}")]
    Status {
        /// The host URL.
        host: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// A 2xx answer whose body is not a bulk response.
    #[error("{host} answered a bulk request with an unreadable body: {reason}")]
    BadResponse {
        /// The host URL.
        host: String,
        /// Why it could not be read.
        reason: String,
    },
}

impl EsError {
    /// Whether the whole request should be sent again later: connection errors, timeouts,
    /// credentials, and statuses classified by [`crate::is_retryable_status`].
    pub fn is_retryable(&self) -> bool {
        match self {
            EsError::Connection { .. }
            | EsError::Timeout { .. }
            | EsError::Credentials { .. }
            | EsError::BadResponse { .. } => true,
            EsError::Status { status, .. } => crate::retry::is_retryable_status(*status),
            EsError::Config { .. }
            | EsError::Template { .. }
            | EsError::File { .. }
            | EsError::Tls { .. }
            | EsError::Signing { .. } => false,
        }
    }
}
