//! Parser throughput per format, and against the `vrl` crate (what Vector runs per event) for
//! alb, vpcflow and syslog.
//!
//! Each format's group measures, on the same generated input:
//! - `logferry/parse`: [`Format::decode`] of the whole input into typed records;
//! - `logferry/parse+json`: the same plus encoding every record as a JSON line with
//!   `logferry_core::json` (what the ingester does);
//! - `logferry/parse+serde_json`: the same records encoded by `serde_json::to_writer` (the
//!   encoder `logferry_core::json` replaced: same text);
//! - `vrl/parse` (alb, vpcflow, syslog): a compiled VRL program `. = parse_aws_alb_log!(.message)`
//!   (resp. `parse_aws_vpc_flow_log!`, `parse_syslog!`) resolved per line against an event
//!   holding the line as `message`, as Vector's `remap` transform does;
//! - `vrl/parse+json`: the same plus encoding the resulting value as JSON.
//!
//! Throughput is in bytes of input; lines/s = bytes/s divided by the mean line length, which
//! the benchmark prints before each group.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logferry_parse::{DecodeOptions, Format, FormatOptions};
use vrl::compiler::state::RuntimeState;
use vrl::compiler::{Context, Program, TargetValue, TimeZone};
use vrl::value::{Secrets, Value};

/// Records per generated input.
const RECORDS: usize = 20_000;

fn vrl_program(source: &str) -> Program {
    let functions = vrl::stdlib::all();
    match vrl::compiler::compile(source, &functions) {
        Ok(result) => result.program,
        Err(diagnostics) => panic!("VRL program does not compile: {diagnostics:?}"),
    }
}

fn vrl_run(program: &Program, lines: &[&str], encode: bool, out: &mut Vec<u8>) -> usize {
    let timezone = TimeZone::default();
    let mut state = RuntimeState::default();
    let mut ok = 0;
    for line in lines {
        let mut event = BTreeMap::new();
        event.insert("message".into(), Value::from(*line));
        let mut target = TargetValue {
            value: Value::Object(event),
            metadata: Value::Object(BTreeMap::new()),
            secrets: Secrets::default(),
        };
        let mut ctx = Context::new(&mut target, &mut state, &timezone);
        if program.resolve(&mut ctx).is_ok() {
            ok += 1;
            if encode {
                out.clear();
                serde_json::to_writer(&mut *out, &target.value).expect("VRL value encodes");
            }
        }
        black_box(&target.value);
    }
    ok
}

/// How `logferry_run` encodes each record.
#[derive(Clone, Copy)]
enum Encode {
    /// Not at all (parse only).
    No,
    /// `Record::write_json_str` (`logferry_core::json`), what the ingester runs.
    Logferry,
    /// `serde_json::to_writer` of the same record: the encoder it replaced.
    SerdeJson,
}

fn logferry_run(format: &Format, input: &[u8], encode: Encode, out: &mut Vec<u8>) -> u64 {
    let mut text = String::with_capacity(4096);
    let summary = format
        .decode(input, &DecodeOptions::default(), |item| {
            if let Ok(located) = item {
                match encode {
                    Encode::No => {
                        black_box(located.record.timestamp());
                    }
                    Encode::Logferry => {
                        text.clear();
                        located.record.write_json_str(&mut text);
                        black_box(&text);
                    }
                    Encode::SerdeJson => {
                        out.clear();
                        serde_json::to_writer(&mut *out, &located.record).expect("records encode");
                        black_box(&out);
                    }
                }
            }
        })
        .expect("in-memory input decodes");
    summary.records
}

fn bench_format(c: &mut Criterion, name: &str, vrl_source: Option<&str>) {
    let input = logferry_benches::sample(name, RECORDS).expect("a sample generator exists");
    let format = Format::new(name, &FormatOptions::new()).expect("the format exists");
    let lines: Vec<&str> = input.lines().collect();
    let mut out = Vec::with_capacity(64 * 1024);
    let records = logferry_run(&format, input.as_bytes(), Encode::No, &mut out);
    eprintln!(
        "{name}: {} bytes, {} lines, {} records, mean line {:.0} bytes",
        input.len(),
        lines.len(),
        records,
        input.len() as f64 / lines.len().max(1) as f64
    );
    assert!(records > 0, "{name}: the sample must parse");

    let mut group = c.benchmark_group(format!("parse/{name}"));
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("logferry/parse", |b| {
        b.iter(|| logferry_run(&format, black_box(input.as_bytes()), Encode::No, &mut out))
    });
    group.bench_function("logferry/parse+json", |b| {
        b.iter(|| {
            logferry_run(
                &format,
                black_box(input.as_bytes()),
                Encode::Logferry,
                &mut out,
            )
        })
    });
    group.bench_function("logferry/parse+serde_json", |b| {
        b.iter(|| {
            logferry_run(
                &format,
                black_box(input.as_bytes()),
                Encode::SerdeJson,
                &mut out,
            )
        })
    });
    if let Some(source) = vrl_source {
        let program = vrl_program(source);
        let ok = vrl_run(&program, &lines, false, &mut out);
        eprintln!("{name}: vrl parsed {ok} of {} lines", lines.len());
        group.bench_function("vrl/parse", |b| {
            b.iter(|| vrl_run(&program, black_box(&lines), false, &mut out))
        });
        group.bench_function("vrl/parse+json", |b| {
            b.iter(|| vrl_run(&program, black_box(&lines), true, &mut out))
        });
    }
    group.finish();
}

fn parsers(c: &mut Criterion) {
    let only = std::env::var("LOGFERRY_BENCH_FORMATS").ok();
    let selected = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|f| f == name))
    };
    let vrl = [
        ("alb", Some(". = parse_aws_alb_log!(.message)")),
        ("vpcflow", Some(". = parse_aws_vpc_flow_log!(.message)")),
        ("syslog", Some(". = parse_syslog!(.message)")),
    ];
    for name in logferry_parse::FORMAT_NAMES {
        if !selected(name) {
            continue;
        }
        let source = vrl.iter().find(|(f, _)| f == name).and_then(|(_, s)| *s);
        bench_format(c, name, source);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = parsers
}
criterion_main!(benches);
