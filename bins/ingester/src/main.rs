//! `logferry-ingester`: pulls AWS logs out of S3 into Elasticsearch/OpenSearch.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logferry_ingester::{
    BackfillArgs, BackfillOutcome, IngesterConfig, ParseArgs, backfill, init_logging,
    parse_command, run, shutdown_on_signals,
};

/// Pulls AWS logs out of S3 (SQS notifications or backfill), parses them and indexes them.
#[derive(Debug, Parser)]
#[command(name = "logferry-ingester", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse a log file (or stdin) in one of the AWS formats and print one JSON object per event.
    ///
    /// Exit status: 0 when every line parsed, 1 when some did not (each is reported on stderr
    /// as FILE:LINE: reason) or the input was corrupt, 2 for usage errors.
    Parse(ParseArgs),
    /// Poll the SQS inputs, index every object they announce, delete each message once all its
    /// events are acknowledged; until SIGTERM/SIGINT.
    Run {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Import objects that already exist in a bucket (or a local file:// store), resumably;
    /// or send them to an SQS queue with --enqueue.
    ///
    /// Exit status: 0 when every listed object was delivered, 1 when some were not (or it was
    /// interrupted: run it again to resume), 2 for configuration errors.
    Backfill {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        args: BackfillArgs,
    },
    /// Validate the configuration and print it resolved (defaults filled in, secrets hidden).
    Check {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    logferry_core::cli::apply_allocator_settings();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Parse(args) => run_parse(&args),
        Command::Check { config } => match IngesterConfig::load(&config) {
            Ok(c) => {
                print!("{}", c.describe());
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        Command::Run { config } => {
            init_logging();
            let config = match IngesterConfig::load(&config) {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            with_runtime(async move {
                run(&config, shutdown_on_signals())
                    .await
                    .map(|_| ExitCode::SUCCESS)
            })
        }
        Command::Backfill { config, args } => {
            init_logging();
            let config = match IngesterConfig::load(&config) {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            with_runtime(async move {
                let outcome = backfill(&config, &args, shutdown_on_signals()).await?;
                if let BackfillOutcome::Imported { report, failures } = &outcome {
                    let s = &report.summary;
                    eprintln!(
                        "logferry-ingester: {} object(s), {} event(s), {} line(s) without an \
                         event; {} object(s) not delivered{}",
                        s.objects,
                        s.events,
                        failures,
                        report.failed_objects,
                        if report.complete {
                            ""
                        } else {
                            " (interrupted: run again to resume)"
                        }
                    );
                }
                if let BackfillOutcome::Abandoned { failures } = &outcome {
                    eprintln!(
                        "logferry-ingester: {failures} line(s) without an event; stopped with \
                         objects in flight after shutdown_timeout (interrupted: run again to \
                         resume)"
                    );
                }
                Ok(if outcome.is_complete() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            })
        }
    }
}

fn config_error(e: &logferry_ingester::ConfigError) -> ExitCode {
    eprintln!("logferry-ingester: configuration error: {e}");
    ExitCode::from(2)
}

/// Runs `work` on a multi-threaded runtime; an error is printed with its causes (exit 1).
fn with_runtime(work: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("logferry-ingester: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(work) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logferry-ingester: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_parse(args: &ParseArgs) -> ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut err = io::stderr().lock();
    match parse_command(args, &mut out, &mut err) {
        Ok(outcome) if outcome.errors == 0 && !outcome.input_failed => ExitCode::SUCCESS,
        Ok(outcome) => {
            let _ = writeln!(
                err,
                "logferry-ingester: {} event(s) written, {} line(s) failed to parse{}",
                outcome.records,
                outcome.errors,
                if outcome.input_failed {
                    ", input ended with an error"
                } else {
                    ""
                }
            );
            ExitCode::from(1)
        }
        Err(e) => {
            let _ = writeln!(err, "logferry-ingester: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
