//! Counters of a running source, and the summary it returns.

use std::sync::Arc;

logferry_core::counters! {
    /// What a tail source did; returned by `TailSource::run` and by [`TailStats::summary`].
    summary TailSummary for TailStats;
    /// Lines emitted as records (including truncated and partial ones).
    lines,
    /// Bytes consumed from files (newlines and skipped bytes included).
    bytes,
    /// Files opened for reading.
    files,
    /// Files open right now (a gauge).
    open_files,
    /// Lines longer than `max_line_size`, truncated.
    truncated_lines,
    /// Lines that `parse = "json"` could not read as a JSON object.
    parse_errors,
    /// Files that shrank below the read offset (copytruncate) and were read again from 0.
    truncations,
    /// Files that were renamed away, replaced or deleted while being read.
    rotations,
    /// Batches sent to the output.
    batches,
    /// Batches whose acknowledgement resolved `Delivered`.
    batches_delivered,
    /// Batches whose acknowledgement resolved `Errored` or `Rejected`.
    batches_failed,
    /// Bytes by which file checkpoints advanced (after in-order delivery).
    committed_bytes,
    /// Checkpoint files written.
    checkpoint_writes,
    /// Checkpoint file writes that failed (retried later).
    checkpoint_errors,
    /// Files or directories that could not be read (retried at the next scan).
    file_errors,
    /// Scans of the globs completed.
    scans,
}

/// A cheap, clonable handle on the counters of a [`crate::TailSource`]; it stays valid after
/// the source stopped.
///
/// ```
/// # use std::collections::HashMap;
/// use logferry_source_tail::{TailConfig, TailSource};
///
/// let dir = tempfile::tempdir().unwrap();
/// let config = TailConfig::new(vec![format!("{}/*.log", dir.path().display())], "t");
/// let source = TailSource::new("s", config, dir.path().join("s.pos"), HashMap::new()).unwrap();
/// let stats = source.stats();
/// assert_eq!(stats.lines(), 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct TailStats {
    pub(crate) counters: Arc<Counters>,
}
