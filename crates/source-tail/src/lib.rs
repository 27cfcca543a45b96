//! File tailing with glob paths, crash-safe checkpoints and rotation handling: the job of
//! fluentd's `in_tail` and Filebeat's `filestream`.
//!
//! A [`TailSource`] is built from a [`TailConfig`] (the `[sources.X]` table with
//! `type = "tail"`). It expands its globs, reads new lines of the matching files, and sends
//! them as [`TailBatch`]es of [`TailRecord`]s (a read time and a JSON object) on a bounded
//! channel: when the receiver is slow, reading stops. Each batch carries an
//! [`logferry_core::AckToken`]; a file's checkpoint (the `pos_file`) advances to a batch's
//! end only once that batch and every earlier batch of the file were delivered.
//!
//! Files are identified by device, inode and a fingerprint of their first bytes, so renamed
//! (rotated) files are read to their end, files truncated in place (copytruncate) are read again
//! from the start, and a reused inode is not mistaken for the file that had it before. See
//! `docs/tail.md` for the options, rotation behaviour, the checkpoint format and limits.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use logferry_core::{ShutdownSignal, AckStatus};
//! use logferry_source_tail::{RunMode, TailBatch, TailConfig, TailSource};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("app.log"), "hello\n{\"level\":\"info\"}\n").unwrap();
//!
//! let mut config = TailConfig::new(vec![format!("{}/*.log", dir.path().display())], "app.*");
//! config.read_from_head = true;
//! config.parse = logferry_source_tail::ParseMode::Json;
//! let pos_file = dir.path().join("app.pos");
//! let source = TailSource::new("app", config, pos_file, HashMap::new()).unwrap();
//!
//! let (tx, mut rx) = tokio::sync::mpsc::channel::<TailBatch>(16);
//! let consumer = tokio::spawn(async move {
//!     let mut lines = Vec::new();
//!     while let Some(batch) = rx.recv().await {
//!         lines.extend(batch.records.iter().map(|r| r.json.clone()));
//!         batch.ack.finish(AckStatus::Delivered); // once stored durably
//!     }
//!     lines
//! });
//! let summary = source
//!     .run(tx, ShutdownSignal::never(), RunMode::Once, Duration::from_secs(5))
//!     .await
//!     .unwrap();
//! assert_eq!(summary.lines, 2);
//! assert_eq!(summary.parse_errors, 1);
//! assert_eq!(consumer.await.unwrap(), [r#"{"message":"hello"}"#, r#"{"level":"info"}"#]);
//! # });
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod acks;
mod batch;
mod checkpoint;
mod config;
mod discover;
mod error;
mod fingerprint;
mod glob;
mod reader;
mod record;
mod run;
mod source;
mod stats;
mod tag;

pub use batch::{RunMode, StreamPosition, TailBatch, TailRecord};
pub use config::{
    ParseMode, TailConfig, default_batch_bytes, default_batch_size, default_max_line_size,
    default_partial_line_timeout, default_poll_interval, default_read_buffer_size,
    default_read_from_head, default_refresh_interval, default_rotate_wait,
};
pub use error::TailError;
pub use source::TailSource;
pub use stats::{TailStats, TailSummary};
pub use tag::expand_tag;
