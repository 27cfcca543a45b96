//! What logferry's command-line programs share (feature `cli`): logging to stderr and a
//! shutdown signal fired by SIGTERM or SIGINT.

use crate::{ShutdownSignal, shutdown_pair};

/// Logs to stderr; the level comes from `LOGFERRY_LOG` (default `info`, e.g.
/// `LOGFERRY_LOG=debug` or `LOGFERRY_LOG=logferry_sink_es=debug,info`). Colours only on a
/// terminal: logs that go to a file or journald stay plain text.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGFERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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
        tracing::info!("Stopping: finishing what can be finished within shutdown_timeout.");
        trigger.trigger();
    });
    signal
}
