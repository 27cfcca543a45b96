//! The error types of the SQS source.

use std::path::PathBuf;

/// An SDK or transport error kept whole, with whether retrying may help.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the source, a listing or a checkpoint failed.
///
/// Problems with single lines are not errors: they are [`crate::Failure`] items sent beside the
/// events (to be dead-lettered). Problems with single messages (a malformed body) are logged,
/// counted and left in the queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A configuration key has an invalid value.
    #[error("invalid `{key}`: {message}")]
    Config {
        /// The key, relative to its table (`queue_url`, `format_by_key[1].regex`, ...).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// An SQS body is not a notification this source understands.
    #[error(transparent)]
    Notification(#[from] NotificationError),
    /// An SQS call failed.
    #[error("SQS {operation} on {queue_url} failed{}: {source}", if *.retryable { " (retryable)" } else { "" })]
    Sqs {
        /// The API operation (`ReceiveMessage`, `DeleteMessage`, ...).
        operation: &'static str,
        /// The queue.
        queue_url: String,
        /// Whether the same call may succeed later (throttling, 5xx, connection errors).
        retryable: bool,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// An S3 call that is not about one object failed (ListObjectsV2).
    #[error("S3 {operation} on bucket `{bucket}` failed{}: {source}", if *.retryable { " (retryable)" } else { "" })]
    S3 {
        /// The API operation.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// Whether the same call may succeed later.
        retryable: bool,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Reading one object failed in a way that retrying may fix (the message is left in the
    /// queue, the backfill checkpoint does not move past it).
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A local file (checkpoint, local-directory bucket) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file exists but belongs to another listing or is damaged.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The receiver of the source's batches was dropped while the source was running.
    #[error("the receiver of the SQS source's batches is gone")]
    OutputClosed,
}

impl SourceError {
    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Sqs { retryable, .. } | SourceError::S3 { retryable, .. } => *retryable,
            SourceError::Object(e) => e.is_retryable(),
            SourceError::Io { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> SourceError {
        SourceError::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// An SQS message body that is not an S3 event notification (plain, SNS-wrapped or
/// EventBridge). Names the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SQS message {message_id}: {reason}")]
pub struct NotificationError {
    /// The SQS message id.
    pub message_id: String,
    /// What is wrong with the body.
    pub reason: String,
}

/// Why one object could not be read to its end. Names the object.
#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {kind}")]
pub struct ObjectError {
    /// The bucket (`file://DIR` for the local-directory store).
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// What happened.
    pub kind: ObjectErrorKind,
}

impl ObjectError {
    pub(crate) fn new(bucket: &str, key: &str, kind: ObjectErrorKind) -> ObjectError {
        ObjectError {
            bucket: bucket.to_string(),
            key: key.to_string(),
            kind,
        }
    }

    /// Whether reading the object again may succeed: downloads that failed on the way
    /// (connection, throttling, 5xx, access denied until a policy is fixed) are retryable;
    /// corrupt data, a missing object and limits are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ObjectErrorKind::Download {
                retryable: true,
                ..
            }
        )
    }
}

/// What went wrong with an object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectErrorKind {
    /// GetObject (or opening the local file) failed, or the download broke off.
    #[error("download failed{}: {source}", if *.retryable { " (retryable)" } else { "" })]
    Download {
        /// Whether a later attempt may succeed.
        retryable: bool,
        /// The SDK or I/O error.
        #[source]
        source: BoxError,
    },
    /// The object does not exist (deleted since the notification was sent).
    #[error("no such object")]
    NotFound,
    /// The compressed data is corrupt (or `Content-Encoding` names a compression the bytes
    /// are not in).
    #[error(
        "corrupt or truncated {compression} data after {decompressed_bytes} decompressed bytes: {message}"
    )]
    Corrupt {
        /// `gzip`, `zstd` or `plain`.
        compression: &'static str,
        /// Decompressed bytes read before the error.
        decompressed_bytes: u64,
        /// The decoder's message.
        message: String,
    },
    /// The decompressed object is larger than `max_object_size`.
    #[error("decompressed size exceeds max_object_size ({limit} bytes)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// A whole-document format (CloudTrail, Config, CloudWatch) found a document it cannot
    /// continue past.
    #[error("{0}")]
    Document(String),
    /// No `format_by_key` rule matches the key and the input has no `log_format`.
    #[error("no format_by_key rule matches the key and no log_format is set")]
    NoFormat,
    /// The receiver of the batches went away while the object was read.
    #[error("the output closed while the object was read")]
    OutputClosed,
}
