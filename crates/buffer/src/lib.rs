//! Durable disk buffer (and memory buffer) of time-keyed chunks, with fluentd's `<buffer>`
//! semantics and option names.
//!
//! Records (one formatted line each) are [appended](Buffer::append) with a tag and a time; a
//! record goes to the open chunk of `(tag, time slice)`, the slice being
//! `floor(time / timekey)`. A chunk is *sealed* (fluentd: "queued") when the clock passes the
//! end of its slice plus `timekey_wait`, when `flush_interval` has passed since it was
//! created, when the next record would exceed `chunk_limit_size` or `chunk_limit_records`
//! (the record then starts the next chunk of the same key, with the next `seq`), or on
//! [`Buffer::seal_all`]. Sealed chunks are handed out by [`Buffer::next_ready`]; the uploader
//! gives each back with [`Buffer::complete`] (deleted) or [`Buffer::retry_later`] (offered
//! again after an exponential backoff, or moved to `failed/` after `retry_max_times`).
//!
//! Every chunk has a persisted identity, [`ChunkMeta`] (`id`, `tag`, `timekey`, `seq`, ...),
//! that never changes once it is sealed, so object keys derived from it are the same on every
//! retry and after a restart: re-uploading after a crash overwrites the same object.
//!
//! Guarantees of a file buffer: when `append` returns, the records and the source position
//! are written and (with `fsync = "batch"`, the default) fsynced; after `kill -9` and
//! [`Buffer::open`], every such record is in a chunk that is offered for upload. A chunk is
//! deleted only by `complete`. Memory buffers lose their chunks when the process stops;
//! their [`AckReceiver`](logferry_core::AckReceiver)s resolve only after the upload. See
//! `docs/buffer.md` for every option and guarantee.
//!
//! ```
//! use std::io::Read;
//! use logferry_buffer::{Buffer, BufferConfig, BufferRecord, SourcePosition};
//! use logferry_core::{AckStatus, Timestamp};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let config: BufferConfig = toml::from_str("timekey = \"60s\"\ntimekey_use_utc = true").unwrap();
//! let buffer = Buffer::open(&config, dir.path()).unwrap();
//!
//! let time = Timestamp::parse_rfc3339("2024-05-01T12:00:30Z").unwrap();
//! let records = [
//!     BufferRecord { time, line: br#"{"msg":"one"}"# },
//!     BufferRecord { time, line: br#"{"msg":"two"}"# },
//! ];
//! let position = SourcePosition { stream: "/var/log/app.log", offset: 42 };
//! let ack = buffer.append("app", &records, Some(position)).await.unwrap();
//! assert_eq!(ack.await, AckStatus::Delivered); // durable on disk
//! assert_eq!(buffer.positions()["/var/log/app.log"], 42);
//!
//! buffer.seal_all().unwrap();
//! let chunk = buffer.next_ready().await;
//! assert_eq!(chunk.meta().tag, "app");
//! assert_eq!(chunk.meta().timekey.to_string(), "2024-05-01T12:00:00Z");
//! assert_eq!(chunk.meta().seq, 0);
//! let mut text = String::new();
//! chunk.open_reader().unwrap().read_to_string(&mut text).unwrap();
//! assert_eq!(text, "{\"msg\":\"one\"}\n{\"msg\":\"two\"}\n");
//! // ... upload, then:
//! buffer.complete(chunk).unwrap();
//! assert!(buffer.is_empty());
//! # });
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod buffer;
mod chunk;
mod clock;
mod config;
mod error;
mod inner;
mod meta;
mod recover;
mod retry;
mod state;

pub use buffer::{Buffer, BufferRecord, BufferStats, SourcePosition};
pub use chunk::{Chunk, ChunkReader};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    BufferConfig, BufferType, FsyncMode, default_flush_thread_count,
    default_retry_exponential_backoff_base, default_retry_forever, default_retry_max_interval,
    default_retry_randomize, default_retry_wait, default_timekey, default_timekey_use_utc,
    default_timekey_wait,
};
pub use error::BufferError;
pub use meta::ChunkMeta;
pub use retry::RetryPolicy;
