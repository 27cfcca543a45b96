//! What the source emits.

use std::sync::Arc;

use logferry_core::{AckToken, Timestamp};

/// One syslog message as a record: its time and a JSON object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogRecord {
    /// The message's own time, or when it was received if it has none (or did not parse).
    pub time: Timestamp,
    /// A JSON object shaped like fluentd's `in_syslog` records (see the crate docs).
    pub json: String,
}

/// Consecutive messages with the same tag, sent to the output with one acknowledgement.
///
/// Syslog has no acknowledgement back to the sender, so nothing waits on `ack`; it is there so
/// that outputs treat every source's batches alike.
#[derive(Debug)]
pub struct SyslogBatch {
    /// `<tag>.<facility>.<severity>`, or `<tag>.unmatched` for messages that did not parse.
    pub tag: Arc<str>,
    /// The records, in arrival order.
    pub records: Vec<SyslogRecord>,
    /// Release it (or every clone) with the outcome of storing the batch.
    pub ack: AckToken,
}

impl SyslogBatch {
    /// A batch of `records` tagged `tag` with a fresh acknowledgement token.
    pub(crate) fn new(tag: Arc<str>, records: Vec<SyslogRecord>) -> SyslogBatch {
        let (ack, _receiver) = AckToken::new();
        SyslogBatch { tag, records, ack }
    }
}
