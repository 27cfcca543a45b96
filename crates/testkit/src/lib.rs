//! Test kit of logferry: starts real components for tests and checks what they received.
//!
//! - [`MotoServer`]: `moto_server` (S3, SQS, STS and IAM) from the workspace's `.venv` (installed
//!   by `scripts/install-test-deps`) on a free loopback port, killed on drop; stoppable and
//!   restartable on the same port; IAM enforcement on demand ([`MotoServer::enforce_iam`]).
//! - S3 helpers: [`MotoServer::s3_client`], [`MotoServer::create_bucket`],
//!   [`MotoServer::list_keys`], [`MotoServer::get_object_bytes`].
//! - SQS helpers: [`MotoServer::sqs_client`], [`MotoServer::create_queue`],
//!   [`MotoServer::notify_queue_on_create`] (S3 -> SQS notifications),
//!   [`MotoServer::send_message`], [`MotoServer::queue_counts`], [`MotoServer::drain_queue`].
//! - IAM helpers: [`MotoServer::create_user_with_policy`] (inline policy + access key) and
//!   [`MotoServer::create_role`] (trust policy + inline policy), over moto's query API.
//! - [`free_port`], [`wait_until`] / [`wait_until_async`] (conditions with deadlines, never
//!   sleep-and-hope) and [`workspace_root`].
//! - [`BulkServer`]: an Elasticsearch `_bulk` API server (in memory, on a free loopback port)
//!   with injectable 429/5xx request faults, per-item faults, a slow mode, authentication,
//!   HTTPS ([`BulkServerBuilder::tls`]), and inspection of documents and received requests.
//! - [`ListingServer`]: a synthetic S3 `ListObjectsV2` endpoint over a virtual bucket of up to
//!   millions of generated keys (computed from their index, never stored), for listing tests at
//!   a scale moto cannot hold; with [`ListingServerBuilder::object_body`], also `GetObject` and
//!   `HeadObject` of every key (all with that body), for whole-backfill benchmarks.
//! - [`tls_fixture`]: a test CA with server and client certificates (and an untrusted one).
//!
//! A missing `moto_server` is an error naming `scripts/install-test-deps`: tests that need it
//! fail, they never skip.
//!
//! ```no_run
//! use logferry_testkit::MotoServer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), logferry_testkit::TestkitError> {
//! let moto = MotoServer::start()?;
//! moto.create_bucket("logs").await?;
//! let writer = moto.create_user_with_policy(
//!     "shipper",
//!     r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::logs/*"}]}"#,
//! )?;
//! moto.enforce_iam(true)?;
//! let client = moto.s3_client_with_keys(&writer.access_key_id, &writer.secret_access_key);
//! client.put_object().bucket("logs").key("a.txt").body(b"hi".to_vec().into()).send().await.unwrap();
//! assert!(client.list_objects_v2().bucket("logs").send().await.is_err());
//! moto.enforce_iam(false)?;
//! assert_eq!(moto.list_keys("logs", "").await?, ["a.txt"]);
//! # Ok(()) }
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod bulk;
mod error;
mod http;
mod iam;
mod listing;
mod moto;
mod s3;
mod sqs;
mod tls;
mod wait;

pub use bulk::{BulkServer, BulkServerBuilder, ItemFault, ReceivedRequest};
pub use error::TestkitError;
pub use iam::{IamUser, MOTO_ACCOUNT_ID};
pub use listing::{
    DEFAULT_OBJECTS_PER_DAY, ListingServer, ListingServerBuilder, ListingStats, MAX_OBJECTS,
    S3_MAX_KEYS,
};
pub use moto::{MOTO_SERVER_ENV, MotoServer, MotoServerBuilder};
pub use s3::{TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};
pub use sqs::QueueCounts;
pub use tls::tls_fixture;
pub use wait::{free_port, wait_until, wait_until_async, workspace_root};
