//! The errors of the S3 output: [`SinkError`] for configuration, templates and encoding, and
//! [`StoreError`] for object stores, which keeps whether a failed put may be retried.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error kept as the source of another.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error of the S3 output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A configuration value is invalid.
    #[error("invalid `{key}`: {reason}")]
    Config {
        /// The configuration key (`s3_object_key_format`, `credentials.role_arn`, ...).
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A key template or time format could not be parsed.
    #[error("invalid `{key}` `{template}` at byte {position}: {reason}")]
    Template {
        /// The configuration key the template came from.
        key: &'static str,
        /// The template text.
        template: String,
        /// Byte offset of the problem in the template.
        position: usize,
        /// What is wrong there.
        reason: String,
    },
    /// Reading the chunk or writing its encoded form failed.
    #[error("encoding the chunk for `{key}` failed")]
    Encode {
        /// The object key the chunk was encoded for.
        key: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The object store refused or failed the upload.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SinkError {
    /// Whether trying again later may succeed: store errors say so themselves
    /// ([`StoreError::is_retryable`]), encoding errors (a full disk) are retryable, configuration
    /// errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            SinkError::Store(err) => err.is_retryable(),
            SinkError::Encode { .. } => true,
            SinkError::Config { .. } | SinkError::Template { .. } => false,
        }
    }
}

/// What kind of failure a [`StoreError`] is; decides [`StoreErrorKind::is_retryable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The service asked us to slow down (`SlowDown`, HTTP 429/503 throttling). Retryable.
    Throttled,
    /// The service failed (HTTP 5xx, `InternalError`). Retryable.
    Server,
    /// A request or connection timed out (including S3's `RequestTimeout`). Retryable.
    Timeout,
    /// The connection failed (refused, reset, DNS) or the answer was unreadable. Retryable.
    Connection,
    /// Credentials could not be loaded or refreshed (STS, IMDS, profile). Retryable: the
    /// provider may recover, and an expired session token is renewed on the next try.
    Credentials,
    /// The principal may not write there (`AccessDenied`, `InvalidAccessKeyId`,
    /// `SignatureDoesNotMatch`, KMS denials). Not retryable.
    AccessDenied,
    /// The bucket does not exist. Not retryable.
    NoSuchBucket,
    /// The request is invalid (`InvalidRequest`, `InvalidArgument`, key too long, bad storage
    /// class, any other 4xx). Not retryable.
    InvalidRequest,
    /// A local I/O error (local store, reading the encoded body). Retryable.
    Io,
}

impl StoreErrorKind {
    /// Whether an error of this kind may go away by itself, so the upload should be retried.
    pub fn is_retryable(self) -> bool {
        match self {
            StoreErrorKind::Throttled
            | StoreErrorKind::Server
            | StoreErrorKind::Timeout
            | StoreErrorKind::Connection
            | StoreErrorKind::Credentials
            | StoreErrorKind::Io => true,
            StoreErrorKind::AccessDenied
            | StoreErrorKind::NoSuchBucket
            | StoreErrorKind::InvalidRequest => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            StoreErrorKind::Throttled => "throttled",
            StoreErrorKind::Server => "server error",
            StoreErrorKind::Timeout => "timed out",
            StoreErrorKind::Connection => "connection failed",
            StoreErrorKind::Credentials => "credentials unavailable",
            StoreErrorKind::AccessDenied => "access denied",
            StoreErrorKind::NoSuchBucket => "no such bucket",
            StoreErrorKind::InvalidRequest => "invalid request",
            StoreErrorKind::Io => "I/O error",
        }
    }
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A failed put to an object store, with the object key, the operation, the service's error
/// code and HTTP status when there was an answer, and the original error as its source.
#[derive(Debug)]
pub struct StoreError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: StoreErrorKind,
    operation: &'static str,
    location: String,
    key: String,
    code: Option<String>,
    status: Option<u16>,
    detail: String,
    source: Option<BoxError>,
}

impl StoreError {
    /// Builds an error; `detail` is a one-line description for humans (the source is kept too).
    pub(crate) fn new(
        kind: StoreErrorKind,
        operation: &'static str,
        location: &str,
        key: &str,
        detail: String,
    ) -> StoreError {
        StoreError(Box::new(Inner {
            kind,
            operation,
            location: location.to_string(),
            key: key.to_string(),
            code: None,
            status: None,
            detail,
            source: None,
        }))
    }

    pub(crate) fn with_code(mut self, code: Option<&str>, status: Option<u16>) -> StoreError {
        self.0.code = code.map(str::to_string);
        self.0.status = status;
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> StoreError {
        self.0.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.0.kind
    }

    /// Whether the upload should be tried again later (see [`StoreErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.0.kind.is_retryable()
    }

    /// The operation that failed (`PutObject`, `UploadPart`, `write`, ...).
    pub fn operation(&self) -> &'static str {
        self.0.operation
    }

    /// The object key being written.
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// Where the object was going (`s3://bucket`, `file://dir`).
    pub fn location(&self) -> &str {
        &self.0.location
    }

    /// The service's error code (`AccessDenied`, `SlowDown`, ...), when it answered with one.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The HTTP status of the service's answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of `{}` to {} failed ({}",
            self.0.operation, self.0.key, self.0.location, self.0.kind
        )?;
        if !self.is_retryable() {
            f.write_str(", not retryable")?;
        }
        write!(f, "): {}", self.0.detail)
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_the_kind() {
        let err = StoreError::new(
            StoreErrorKind::AccessDenied,
            "PutObject",
            "s3://b",
            "k",
            "x".into(),
        )
        .with_code(Some("AccessDenied"), Some(403));
        assert!(!err.is_retryable());
        assert_eq!(err.code(), Some("AccessDenied"));
        assert_eq!(
            err.to_string(),
            "PutObject of `k` to s3://b failed (access denied, not retryable): x"
        );
        let sink: SinkError = err.into();
        assert!(!sink.is_retryable());
        let err = StoreError::new(
            StoreErrorKind::Connection,
            "PutObject",
            "s3://b",
            "k",
            "x".into(),
        );
        assert!(SinkError::from(err).is_retryable());
    }
}
