//! The SQS input of the ingester: S3 event notifications from SQS, objects read from S3 as
//! streams, and bucket listings for backfills.
//!
//! - [`parse_notification`]: S3 event notifications, the same wrapped in SNS, EventBridge
//!   "Object Created" events; `s3:TestEvent` and non-create records are recognised. Keys are
//!   URL-decoded ([`decode_key`]).
//! - [`ObjectReader`]: one object's bytes (gzip, multi-member gzip, zstd or plain, found by
//!   magic bytes) -> lines with a maximum length -> records of a logferry-parse format (per
//!   input or per key) -> events with static fields, `key_regex_fields` captures and their
//!   origin, in [`ObjectBatch`]es; bad lines are [`Failure`]s with their location and raw
//!   text, to be dead-lettered.
//! - [`ObjectFetcher`]: GetObject streamed into the reader (the object is never held whole),
//!   or files of a `file://DIR` local-directory store.
//! - [`SqsSource`]: long polling with bounded workers and messages in flight, visibility
//!   extension, deletion only once every event is acknowledged, graceful shutdown.
//! - [`Lister`], [`Checkpoint`], [`Backfill`], [`enqueue`]: backfills of existing objects.
//! - [`SqsInputConfig`], [`AwsConfig`], [`BackfillConfig`]: the configuration tables.
//!
//! ```
//! use std::sync::Arc;
//! use logferry_core::{AckStatus, AckToken};
//! use logferry_source_sqs::{ObjectReader, ObjectRef, ReaderConfig, parse_notification};
//!
//! let body = r#"{"Records":[{"eventName":"ObjectCreated:Put",
//!   "s3":{"bucket":{"name":"logs"},"object":{"key":"app/today.log","size":12}}}]}"#;
//! let object = Arc::new(parse_notification("m-1", body).unwrap().objects.remove(0));
//! let reader = ObjectReader::new(&ReaderConfig::default()).unwrap();
//! let (token, mut done) = AckToken::new();
//! let mut batches = Vec::new();
//! reader.read(&object, &b"hello\nworld\n"[..], None, Some(&token), &mut |b| {
//!     batches.push(b);
//!     true
//! }).unwrap();
//! drop(token);
//! assert_eq!(batches[0].events.len(), 2);
//! assert_eq!(done.try_status(), None); // the output still holds the batch
//! drop(batches); // ... the output stored it and released it
//! assert_eq!(done.try_status(), Some(AckStatus::Delivered));
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod backfill;
mod client;
mod config;
mod error;
mod fetch;
mod listing;
mod notification;
mod reader;
mod sqs;
mod stats;

pub use backfill::{Backfill, BackfillReport};
pub use client::AwsClients;
pub use config::{
    AwsConfig, BackfillConfig, FormatByKey, ReaderConfig, SqsInputConfig, default_batch_size,
    default_max_in_flight, default_max_line_size, default_max_messages, default_max_object_size,
    default_origin_field, default_visibility_timeout, default_wait_time, default_workers,
};
pub use error::{BoxError, NotificationError, ObjectError, ObjectErrorKind, SourceError};
pub use fetch::{FILE_BUCKET_PREFIX, ObjectFetcher};
pub use listing::{
    Checkpoint, DEFAULT_PAGE_SIZE, ListedObject, Lister, enqueue, notification_body,
};
pub use notification::{Notification, ObjectRef, decode_key, parse_notification};
pub use reader::{EventOrigin, Failure, FailureKind, ObjectBatch, ObjectReader, ObjectSummary};
pub use sqs::{DEFAULT_SHUTDOWN_TIMEOUT, SqsSource};
pub use stats::{SqsStats, SqsSummary};
