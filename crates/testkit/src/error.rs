//! The error type of the test kit.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a test component could not be started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// `moto_server` is not installed where the kit looks for it.
    #[error(
        "moto_server not found at `{}`: run `scripts/install-test-deps` from the repository root \
         (or set LOGFERRY_MOTO_SERVER to its path)",
        path.display()
    )]
    MotoMissing {
        /// Where the kit looked.
        path: PathBuf,
    },
    /// No directory holding `Cargo.lock` was found above the start directory.
    #[error("no workspace root (a directory with Cargo.lock) above `{}`", start.display())]
    WorkspaceRoot {
        /// The directory the search started from.
        start: PathBuf,
    },
    /// The server process could not be spawned.
    #[error("could not start `{}`", program.display())]
    Spawn {
        /// The program that failed to start.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer HTTP before the deadline.
    #[error(
        "moto_server on {endpoint} did not answer within {waited:?} (log `{}`):\n{log_tail}",
        log.display()
    )]
    NotReady {
        /// The endpoint polled.
        endpoint: String,
        /// How long the kit waited.
        waited: Duration,
        /// The server's log file.
        log: PathBuf,
        /// The end of that log.
        log_tail: String,
    },
    /// The server process exited while starting.
    #[error("moto_server exited while starting ({status}), log `{}`:\n{log_tail}", log.display())]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The server's log file.
        log: PathBuf,
        /// The end of that log.
        log_tail: String,
    },
    /// An HTTP exchange with the server failed.
    #[error("HTTP request to {endpoint} failed")]
    Http {
        /// The endpoint called.
        endpoint: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An AWS query-API call was answered with an error status.
    #[error("{action} answered HTTP {status}: {body}")]
    Api {
        /// The API action (`CreateUser`, ...).
        action: String,
        /// The HTTP status.
        status: u16,
        /// The response body (an XML error document).
        body: String,
    },
    /// An S3 call made through the AWS SDK failed.
    #[error("S3 {operation} failed: {source}")]
    S3 {
        /// The operation (`CreateBucket`, ...).
        operation: &'static str,
        /// The SDK's error, kept whole.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A TLS certificate or private key of a test server could not be loaded.
    #[error("cannot use `{}` for TLS: {reason}", path.display())]
    Tls {
        /// The PEM file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another I/O error (the log file, the process).
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
