//! `logferry-ingester parse`: one JSON object per event on stdout, bad lines on stderr.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::Context;
use logferry_parse::{DecodeError, DecodeOptions, Format, FormatOptions, decompress};

/// Arguments of `parse`.
#[derive(Debug, Clone, clap::Args)]
pub struct ParseArgs {
    /// Log format: alb, elb, cloudfront, s3access, vpcflow, waf, cloudtrail, cloudwatch,
    /// config, syslog, json, raw.
    #[arg(long, short = 'f', value_name = "NAME")]
    pub format: String,
    /// A format option, e.g. `timestamp_field=ts` (repeatable).
    #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub options: Vec<(String, String)>,
    /// Longest line accepted, in bytes; longer lines are reported and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = DecodeOptions::default().max_line_bytes)]
    pub max_line_bytes: usize,
    /// Input file (gzip and zstd are detected); `-` or nothing reads stdin.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// What a `parse` run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOutcome {
    /// Events written.
    pub records: u64,
    /// Lines (or document records) that did not parse.
    pub errors: u64,
    /// Whether the input ended in a read error (corrupt compression, truncated document).
    pub input_failed: bool,
}

/// Runs `parse`: writes events to `out`, reports bad lines as `FILE:LINE: reason` to `err`.
///
/// Returns `Err` for usage errors (unknown format or option, unreadable file); a broken
/// output pipe ends the run quietly.
pub fn parse_command(
    args: &ParseArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ParseOutcome> {
    let options: FormatOptions = args.options.iter().cloned().collect();
    let format = Format::new(&args.format, &options).context("invalid --format or --option")?;
    let (name, input): (String, Box<dyn BufRead>) = match &args.input {
        None => (
            "<stdin>".into(),
            Box::new(BufReader::with_capacity(256 * 1024, io::stdin())),
        ),
        Some(p) if p.as_os_str() == "-" => (
            "<stdin>".into(),
            Box::new(BufReader::with_capacity(256 * 1024, io::stdin())),
        ),
        Some(path) => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            (
                path.display().to_string(),
                Box::new(BufReader::with_capacity(256 * 1024, file)),
            )
        }
    };
    let decode_options = DecodeOptions {
        max_line_bytes: args.max_line_bytes,
        ..DecodeOptions::default()
    };
    let mut outcome = ParseOutcome::default();
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut write_failed: Option<io::Error> = None;
    let result = decompress(input)
        .map_err(DecodeError::Io)
        .and_then(|(_, reader)| {
            format.decode(reader, &decode_options, |item| match item {
                Ok(located) => {
                    outcome.records += 1;
                    if write_failed.is_some() {
                        return;
                    }
                    located.record.write_json(&mut buf);
                    buf.push(b'\n');
                    if buf.len() >= 128 * 1024 {
                        if let Err(e) = out.write_all(&buf) {
                            write_failed = Some(e);
                        }
                        buf.clear();
                    }
                }
                Err(e) => {
                    outcome.errors += 1;
                    let _ = writeln!(err, "{name}:{}: {}", e.line, e.error);
                }
            })
        });
    if write_failed.is_none()
        && let Err(e) = out.write_all(&buf).and_then(|()| out.flush())
    {
        write_failed = Some(e);
    }
    if let Some(e) = write_failed {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(outcome);
        }
        return Err(anyhow::Error::new(e).context("cannot write to stdout"));
    }
    if let Err(e) = result {
        outcome.input_failed = true;
        let _ = writeln!(err, "{name}: {e}");
    }
    Ok(outcome)
}
