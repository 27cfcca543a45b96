//! The `logferry-shipper` command as a library: configuration, routing and wiring of the tail
//! source, the disk buffer and the S3 output.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod interpolate;
mod matcher;

pub use interpolate::{InterpolateError, interpolate_env};
pub use matcher::TagPattern;
