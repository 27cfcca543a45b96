//! Counters of a running source or backfill.

use std::sync::Arc;

logferry_core::counters! {
    /// What an SQS source or a backfill did; see [`SqsStats::summary`].
    summary SqsSummary for SqsStats;
    /// SQS messages received.
    messages_received,
    /// SQS messages deleted (every event acknowledged, or nothing to do).
    messages_deleted,
    /// SQS messages left in the queue: an object could not be read for a retryable reason or
    /// an output did not deliver (they reappear after the visibility timeout).
    messages_failed,
    /// SQS messages whose body is not a notification (left in the queue for its redrive
    /// policy to move to a dead-letter queue).
    malformed_messages,
    /// `s3:TestEvent` notifications (deleted).
    test_events,
    /// Records that are not object creations (`ObjectRemoved:*`, ...; deleted).
    non_create_events,
    /// ChangeMessageVisibility calls that extended a message's visibility timeout.
    visibility_extensions,
    /// Failed SQS calls (receive, delete, change visibility).
    sqs_errors,
    /// Objects read to their end.
    objects,
    /// Objects that could not be read to their end (corrupt, missing, too large, download
    /// errors).
    object_errors,
    /// Bytes read from objects (as stored, compressed).
    bytes,
    /// Bytes after decompression.
    decompressed_bytes,
    /// Events emitted.
    events,
    /// Lines or records that did not parse or were too long (dead-lettered).
    parse_errors,
    /// Objects listed by a backfill (after the since/until filters).
    objects_listed,
}

/// A cheap, clonable handle on the counters of an [`crate::SqsSource`], an
/// [`crate::ObjectReader`] or a backfill; it stays valid after they stop.
#[derive(Clone, Debug, Default)]
pub struct SqsStats {
    pub(crate) counters: Arc<Counters>,
}
