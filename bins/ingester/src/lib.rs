//! The `logferry-ingester` command: wiring of logferry's crates behind its subcommands.
//!
//! Every subcommand is a library function so that embedders and tests can call it without
//! spawning the binary:
//! - [`parse_command`]: `logferry-ingester parse`, parse a local file or stdin into NDJSON.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod parse_cmd;

pub use parse_cmd::{ParseArgs, ParseOutcome, parse_command};
