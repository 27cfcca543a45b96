//! The shared vocabulary of logferry's crates.
//!
//! - [`Timestamp`]: a UTC instant that formats as RFC 3339, the `@timestamp` of every event.
//! - [`Event`]: a timestamp plus fields encoded once as a JSON object.
//! - [`Batch`]: events that travel together with one [`AckToken`].
//! - [`text`]: event text that the events of a batch share (one buffer per batch).
//! - [`AckToken`] / [`AckReceiver`] / [`AckStatus`]: end-to-end acknowledgement of a unit of
//!   work (an SQS message is deleted, a file checkpoint advances, only on `Delivered`).
//! - [`ConfigDuration`] and [`ByteSize`]: `"60s"` and `"256MiB"` as configuration files write them.
//! - [`interpolate_env`] and [`find_line`]: `${NAME}` in configuration files, and the line of
//!   a key for error messages.
//! - [`json`]: compact JSON straight into a `String`, serde_json's text with faster string
//!   escaping (the encoder of every parsed record).
//! - [`shutdown_pair`]: a [`ShutdownTrigger`] and the [`ShutdownSignal`] tasks wait on.
//!
//! ```
//! use logferry_core::{AckStatus, AckToken, Batch, Event, Timestamp};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (token, delivered) = AckToken::new();
//! let mut batch = Batch::new(Some(token));
//! batch.events.push(Event::from_json_object(Timestamp::now(), "{}".to_string()).unwrap());
//! // ... an output writes the batch, then reports and releases it:
//! if let Some(ack) = batch.ack.take() { ack.finish(AckStatus::Delivered); }
//! assert_eq!(delivered.await, AckStatus::Delivered);
//! # });
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod ack;
mod batch;
#[cfg(feature = "cli")]
pub mod cli;
mod config_text;
mod counters;
mod error_chain;
mod event;
pub mod json;
mod shutdown;
pub mod text;
mod timestamp;
mod units;

pub use ack::{AckReceiver, AckStatus, AckToken};
pub use batch::Batch;
pub use config_text::{
    ConfigError, InterpolateError, find_line, interpolate_config, interpolate_env, read_config,
    unknown_field,
};
pub use error_chain::ErrorChain;
pub use event::{Event, EventError};
pub use shutdown::{ShutdownSignal, ShutdownTrigger, shutdown_pair};
pub use timestamp::Timestamp;
pub use units::{ByteSize, ConfigDuration, UnitError};
