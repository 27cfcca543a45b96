//! The Elasticsearch/OpenSearch output of logferry, and the NDJSON and dead-letter outputs that
//! share its input.
//!
//! - [`EsEvent`] / [`EventOrigin`]: a JSON document with its `@timestamp`, where it came from
//!   (bucket, key, version, line, byte offset) and the [`logferry_core::AckToken`] of its unit
//!   of work.
//! - [`OutputConfig`]: an `[outputs.X]` table, `type = "elasticsearch"` ([`EsConfig`]) or
//!   `type = "ndjson"` ([`NdjsonConfig`]); [`DeadLetterConfig`] is `[dead_letter]`.
//! - [`Sink`]: a running output. [`Sink::send`] applies backpressure; [`Sink::shutdown`]
//!   flushes within a deadline. Each event's acknowledgement is released once it is stored or
//!   dead-lettered (`Delivered`), and reports `Errored` when it was given up.
//! - Bulk requests are batched by events, bytes and time, gzip-compressed, sent `concurrency`
//!   at a time, and retried with exponential backoff and jitter: whole requests on connection
//!   errors, 429 and 5xx; only the failed items of a partly failed bulk ([`classify_item`]).
//!   A 409 on `create` counts as delivered; other 4xx items go to the [`DeadLetterWriter`].
//! - [`DocumentId`]: deterministic `_id`s ([`IdMode`]) so replays do not duplicate;
//!   [`IndexTemplate`]: index names from `@timestamp` and fields.
//! - Authentication: basic, API key, AWS SigV4 ([`sign_request`]); TLS with rustls.
//!
//! ```
//! use logferry_core::{AckStatus, AckToken, Timestamp};
//! use logferry_sink_es::{EsConfig, EsEvent, EventOrigin};
//! use logferry_testkit::BulkServer;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let server = BulkServer::start().unwrap();
//! let mut config = EsConfig::new(vec![server.url()]);
//! config.index = "alb-%Y.%m.%d".to_string();
//! let sink = config.build("es", None).await.unwrap();
//!
//! let (token, acknowledged) = AckToken::new();
//! let ts = Timestamp::parse_rfc3339("2024-03-05T10:00:00Z").unwrap();
//! let events = (0..3u64)
//!     .map(|i| {
//!         let json = format!(r#"{{"@timestamp":"2024-03-05T10:00:00Z","n":{i}}}"#);
//!         EsEvent::new(json, ts, EventOrigin::new("logs", "alb/1.log.gz", i + 1, i * 50))
//!             .with_ack(token.clone())
//!     })
//!     .collect();
//! drop(token);
//! sink.send(events).await.unwrap();
//! assert_eq!(acknowledged.await, AckStatus::Delivered);
//! assert_eq!(server.count("alb-2024.03.05"), 3);
//! let stats = sink.shutdown(std::time::Duration::from_secs(5)).await;
//! assert_eq!(stats.delivered, 3);
//! # });
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod auth;
mod config;
mod dead_letter;
mod encode;
mod error;
mod es;
mod event;
mod id;
mod ndjson;
mod retry;
mod sink;
mod template;
mod tls;
mod transport;

pub use auth::sign_request;
pub use config::{
    AuthConfig, Compression, DeadLetterConfig, EsConfig, NdjsonConfig, OpType, OutputConfig,
    TlsConfig, default_batch_max_bytes, default_batch_max_events, default_batch_timeout,
    default_compression_level, default_concurrency, default_index, default_ndjson_path,
    default_request_timeout, default_retry_initial_backoff, default_retry_max_backoff,
    default_sigv4_service,
};
pub use dead_letter::DeadLetterWriter;
pub use error::EsError;
pub use event::{EsEvent, EventOrigin};
pub use id::{DOCUMENT_ID_LEN, DocumentId, IdMode};
pub use retry::{ItemAction, classify_item, is_retryable_status};
pub use sink::{Sink, SinkClosed, SinkStats};
pub use template::{IndexTemplate, RenderError};

/// Encoding of bulk bodies, exposed for benchmarks: batches `events` as the output would
/// (each event is written into its batch's body as it joins it), calling `each(body)` per bulk
/// body. Returns the number of events encoded.
pub fn encode_bulk_bodies(
    config: &EsConfig,
    events: Vec<EsEvent>,
    mut each: impl FnMut(&[u8]),
) -> Result<usize, EsError> {
    let template = IndexTemplate::parse(&config.index)?;
    let mut batcher = encode::Batcher::new(
        template,
        config.id,
        encode::Limits {
            max_events: config.batch_max_events,
            max_bytes: config.batch_max_bytes.bytes() as usize,
        },
        encode::Encoding {
            op: config.op_type,
            compression: config.compression,
            level: config.compression_level,
        },
    );
    let mut ready = Vec::new();
    let mut count = 0;
    let mut flush = |ready: &mut Vec<encode::Batch>, count: &mut usize| {
        for batch in ready.drain(..) {
            if let Some(body) = &batch.body {
                *count += batch.len();
                each(body);
            }
        }
    };
    for event in events {
        // Events whose index cannot be rendered are skipped, as the output dead-letters them.
        let _ = batcher.push(event, &mut ready);
        flush(&mut ready, &mut count);
    }
    ready.push(batcher.take());
    flush(&mut ready, &mut count);
    Ok(count)
}
