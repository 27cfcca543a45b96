//! The `logferry-shipper` command as a library: configuration, routing and wiring of the tail
//! source, the disk buffer and the S3 output. Embedders call [`ResolvedConfig::load`] and
//! [`run`] with their own shutdown signal.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod config;
mod matcher;
mod run;

pub use config::{
    ConfigError, LineFormat, OutputConfig, ResolvedConfig, ResolvedOutput, S3OutputConfig,
    ShipperConfig, SourceConfig,
};
pub use logferry_core::{InterpolateError, interpolate_env};
pub use matcher::TagPattern;
pub use run::{Mode, RunSummary, run};

use logferry_core::{ShutdownSignal, shutdown_pair};

/// Logs to stderr; the level comes from `LOGFERRY_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGFERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs that go to a file or journald stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// A signal that fires on SIGTERM or SIGINT (must be called inside a tokio runtime).
pub fn shutdown_on_signals() -> ShutdownSignal {
    let (trigger, signal) = shutdown_pair();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "Cannot listen for SIGTERM.");
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Stopping: flushing what can be flushed within shutdown_timeout.");
        trigger.trigger();
    });
    signal
}
