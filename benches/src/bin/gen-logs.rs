//! Writes generated sample logs to stdout: `gen-logs FORMAT COUNT`.
//! Used to build inputs for whole-process measurements (see docs/performance.md).

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(format), Some(count)) = (
        args.get(1),
        args.get(2).and_then(|c| c.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: gen-logs FORMAT COUNT");
        return ExitCode::from(2);
    };
    let Some(text) = logferry_benches::sample(format, count) else {
        eprintln!("gen-logs: unknown format {format}");
        return ExitCode::from(2);
    };
    if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
