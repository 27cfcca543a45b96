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

/// The allocator settings logferry's binaries run with: mimalloc commits arena memory lazily
/// and returns freed memory after 5 ms, which keeps the resident set small and flat.
pub const ALLOCATOR_SETTINGS: [(&str, &str); 2] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_PURGE_DELAY", "5"),
];

/// Re-executes the current program once with [`ALLOCATOR_SETTINGS`] in its environment
/// (mimalloc reads them only at start-up), unless one of them is already set. Call it first
/// thing in `main`; on failure to re-exec it returns and the program runs with the defaults.
/// The process id stays the same (exec, not spawn).
pub fn apply_allocator_settings() {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        if ALLOCATOR_SETTINGS
            .iter()
            .any(|(name, _)| std::env::var_os(name).is_some())
        {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(argv0) = args.next() {
            command.arg0(argv0);
        }
        let _exec_failed = command.args(args).envs(ALLOCATOR_SETTINGS).exec();
    }
}
