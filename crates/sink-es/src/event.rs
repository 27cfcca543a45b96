//! The events the output indexes and where they came from.

use std::sync::Arc;

use logferry_core::text::Text;
use logferry_core::{AckToken, Timestamp};

/// Where an event came from: an S3 object (or a local file) and a position in it.
///
/// The strings are shared (`Arc<str>`) so that every event of an object points at one copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventOrigin {
    /// The bucket (or `file://DIR`).
    pub bucket: Arc<str>,
    /// The object key.
    pub key: Arc<str>,
    /// The object's version id, else its ETag, when known: folded into `id = "position"` ids so
    /// an object replaced under the same key gets new ids.
    pub version: Option<Arc<str>>,
    /// 1-based line number in the decompressed object.
    pub line: u64,
    /// Byte offset of the line's first byte in the decompressed object.
    pub offset: u64,
}

impl EventOrigin {
    /// An origin without a version.
    pub fn new(bucket: &str, key: &str, line: u64, offset: u64) -> EventOrigin {
        EventOrigin {
            bucket: Arc::from(bucket),
            key: Arc::from(key),
            version: None,
            line,
            offset,
        }
    }
}

/// One event for the output: its document, its time, its origin and its acknowledgement.
#[derive(Clone, Debug)]
pub struct EsEvent {
    /// The document: one JSON object (as `logferry-parse`'s `write_json` writes it,
    /// `@timestamp` first), sent to Elasticsearch as is (raw line breaks become spaces). Owned,
    /// or a range of a buffer the events of a batch share (`logferry_core::text`).
    pub json: Text,
    /// The event's `@timestamp`, which the index template formats.
    pub timestamp: Timestamp,
    /// Where the event came from: the document id is derived from it.
    pub origin: EventOrigin,
    /// Released once the event is delivered (or dead-lettered); updated to `Errored` when it
    /// could not be delivered (shutdown, retries exhausted) and to `Rejected` when it was
    /// rejected and there is no dead-letter output.
    pub ack: Option<AckToken>,
}

impl EsEvent {
    /// An event without an acknowledgement token.
    pub fn new(json: impl Into<Text>, timestamp: Timestamp, origin: EventOrigin) -> EsEvent {
        EsEvent {
            json: json.into(),
            timestamp,
            origin,
            ack: None,
        }
    }

    /// Sets the acknowledgement token.
    pub fn with_ack(mut self, ack: AckToken) -> EsEvent {
        self.ack = Some(ack);
        self
    }
}
