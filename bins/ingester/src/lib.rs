//! The `logferry-ingester` command: wiring of logferry's crates behind its subcommands.
//!
//! Every subcommand is a library function so that embedders and tests can call it without
//! spawning the binary:
//! - [`run`]: `logferry-ingester run`, SQS notifications -> S3 objects -> parse -> outputs,
//!   each message deleted once every event it led to is acknowledged.
//! - [`backfill`]: `logferry-ingester backfill`, objects that already exist (S3 or a local
//!   `file://` store) -> parse -> outputs, resumable; or `--enqueue` them to SQS.
//! - [`IngesterConfig::load`]: what `logferry-ingester check` validates and prints.
//! - [`parse_command`]: `logferry-ingester parse`, parse a local file or stdin into NDJSON.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod backfill_cmd;
mod config;
mod parse_cmd;
mod pipeline;
mod run_cmd;

pub use backfill_cmd::{BackfillArgs, BackfillOutcome, backfill, backfill_config};
pub use config::{IngesterConfig, Input};
pub use logferry_core::ConfigError;
pub use logferry_core::cli::{init_logging, shutdown_on_signals};
pub use parse_cmd::{ParseArgs, ParseOutcome, parse_command};
pub use pipeline::Outputs;
pub use run_cmd::{RunSummary, run};
