//! The S3 output of logferry: the job of fluent-plugin-s3 (`@type s3`) for sealed buffer chunks.
//!
//! - [`KeyTemplate`]: object keys from fluent-plugin-s3's `s3_object_key_format` and
//!   `time_slice_format`, rendered from a chunk's persisted [`ChunkIdentity`], so a retried or
//!   post-crash upload overwrites the same key.
//! - [`Encoding`] / [`StoreAs`]: streaming gzip (default), zstd, or plain JSON lines.
//! - [`ObjectStore`]: [`S3Store`] (PutObject, multipart above a threshold; it needs only
//!   `s3:PutObject`, never lists or heads anything) and [`LocalStore`] (`file://DIR`, the same
//!   keys and bytes). Failures are [`StoreError`]s that say whether to retry.
//! - [`S3Config`]: the S3 keys of an `[outputs.X]` table (`type = "s3"`), with `validate()`
//!   and [`S3Config::build_uploader`].
//! - [`Uploader`]: key + encode + put for one chunk, reporting an [`UploadReport`].
//!
//! ```
//! use logferry_core::Timestamp;
//! use logferry_sink_s3::{ChunkIdentity, S3Config};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let config: S3Config = toml::from_str(&format!(
//!     r#"
//!     bucket = "file://{}"
//!     path = "audit/"
//!     utc = true
//!     "#,
//!     dir.path().display()
//! ))
//! .unwrap();
//! let uploader = config.build_uploader().await.unwrap();
//! let chunk = ChunkIdentity {
//!     tag: "s3.audit".to_string(),
//!     timekey: Timestamp::parse_rfc3339("2022-01-17T13:00:00Z").unwrap(),
//!     seq: 0,
//!     id: [0x5a; 16],
//!     sealed_at: Timestamp::parse_rfc3339("2022-01-17T14:00:30Z").unwrap(),
//! };
//! let lines = std::io::Cursor::new(b"{\"user\":\"alice\"}\n{\"user\":\"bob\"}\n".to_vec());
//! let report = uploader.upload(&chunk, lines).await.unwrap();
//! assert_eq!(report.key, "audit/2022011713_0.gz");
//! assert_eq!(report.bytes_in, 32);
//! assert!(dir.path().join("audit/2022011713_0.gz").is_file());
//! # });
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod classify;
mod client;
mod config;
mod encoding;
mod error;
mod identity;
mod local;
mod pgzip;
mod s3;
mod store;
mod strftime;
mod template;
mod uploader;

pub use config::{
    CredentialsConfig, FILE_BUCKET_PREFIX, S3Config, default_hex_random_length,
    default_index_format, default_multipart_chunk_size, default_multipart_threshold,
    default_s3_object_key_format, default_time_slice_format,
};
pub use encoding::{EncodeStats, Encoding, StoreAs};
pub use error::{SinkError, StoreError, StoreErrorKind};
pub use identity::ChunkIdentity;
pub use local::LocalStore;
pub use s3::{MAX_PART_SIZE, MIN_PART_SIZE, S3Store, S3StoreOptions};
pub use store::{Body, ObjectStore, PutOptions};
pub use template::{
    DEFAULT_KEY_FORMAT, DEFAULT_TIME_SLICE_FORMAT, KeyTemplate, KeyTemplateBuilder,
    MAX_HEX_RANDOM_LENGTH,
};
pub use uploader::{DEFAULT_MEMORY_LIMIT, UploadReport, Uploader};
