//! What the source emits.

use std::path::Path;
use std::sync::Arc;

use logferry_core::{AckToken, Timestamp};

/// One line as a record: the time it was read and a JSON object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailRecord {
    /// When the line was read.
    pub time: Timestamp,
    /// A JSON object: the line itself (`parse = "json"`) or `{"message":"<line>"}`.
    pub json: String,
    /// The byte offset in the file just after the line (its newline included). A consumer
    /// that already stored its stream up to this offset or beyond has the record: after a
    /// restart from a smaller resume position (another consumer was behind), it skips it.
    pub end_offset: u64,
}

/// Where a batch ends in its file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    /// A stable id of the file's identity: `<source id>:<dev>:<inode>:<fingerprint length>:
    /// <fingerprint hex>`. The same file keeps the same id across restarts; a file truncated
    /// in place (copytruncate) gets a new one.
    pub stream: String,
    /// The byte offset in the file just after the batch's last line. Storing it downstream
    /// and handing it back to `TailSource::new` as a resume position skips everything before.
    pub end_offset: u64,
}

/// Consecutive lines of one file, sent to the output with one acknowledgement.
///
/// The file's checkpoint advances to `position.end_offset` once `ack` (and every clone of it)
/// is released with [`logferry_core::AckStatus::Delivered`] and every earlier batch of the
/// same file was delivered.
#[derive(Debug)]
pub struct TailBatch {
    /// The tag of the file's records (the configured `tag` with `*` expanded).
    pub tag: Arc<str>,
    /// The path the file was found at.
    pub path: Arc<Path>,
    /// The records, in file order.
    pub records: Vec<TailRecord>,
    /// Release it (or every clone) with the outcome of storing the batch.
    pub ack: AckToken,
    /// Where the batch ends.
    pub position: StreamPosition,
}

/// How long a source runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Follow the files until shutdown.
    Follow,
    /// Read every matching file to its end (emitting partial last lines too), wait for every
    /// acknowledgement, write the checkpoints and return.
    Once,
}
