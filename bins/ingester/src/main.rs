//! `logferry-ingester`: pulls AWS logs out of S3 into Elasticsearch/OpenSearch.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logferry_ingester::{ParseArgs, parse_command};

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
}

fn main() -> ExitCode {
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
