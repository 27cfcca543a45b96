//! The `logferry-shipper` command as a library: configuration, routing and wiring of the tail
//! source, the disk buffer and the S3 output. Embedders call [`ResolvedConfig::load`] and
//! [`run`] with their own shutdown signal.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod config;
mod matcher;
mod run;

pub use config::{
    LineFormat, OutputConfig, ResolvedConfig, ResolvedOutput, S3OutputConfig, ShipperConfig,
    SourceConfig,
};
pub use logferry_core::{ConfigError, InterpolateError, interpolate_env};
pub use matcher::TagPattern;
pub use run::{Mode, RunSummary, run};

pub use logferry_core::cli::{init_logging, shutdown_on_signals};
