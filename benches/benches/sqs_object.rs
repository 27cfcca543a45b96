//! The ingester's object reader path in one process: a gzip ALB object in memory ->
//! decompress -> frame -> parse -> events with `key_regex_fields`, static fields and their
//! origin, in batches (what `logferry-source-sqs` does to every downloaded object).
//!
//! Throughput is reported in bytes of the decompressed object (MiB/s); events/s = bytes/s
//! divided by the mean line length, which the benchmark prints, and per-object elements in
//! the `events` variant. The `freed on another thread` variant hands every batch to a second
//! thread that drops it, as the ingester's outputs do (memory allocated on the reading thread
//! and freed on another is what the allocator handles worst).

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logferry_source_sqs::{ObjectReader, ObjectRef, ReaderConfig};

/// Lines per generated object.
const RECORDS: usize = 50_000;

fn reader() -> ObjectReader {
    let config = ReaderConfig {
        log_format: Some("alb".to_string()),
        key_regex_fields: Some(r"^(?P<environment>[^\-]+)-(?P<application>[^/\-]+)/".to_string()),
        fields: [("team".to_string(), serde_json::json!("web"))]
            .into_iter()
            .collect(),
        ..ReaderConfig::default()
    };
    ObjectReader::new(&config).expect("the configuration is valid")
}

fn bench_object_reader(c: &mut Criterion) {
    let text = logferry_benches::alb_lines(RECORDS);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("in-memory gzip");
    let gz = encoder.finish().expect("in-memory gzip");
    println!(
        "sqs_object: {} lines, {:.1} bytes/line, {} bytes gzip ({:.1}x)",
        RECORDS,
        text.len() as f64 / RECORDS as f64,
        gz.len(),
        text.len() as f64 / gz.len() as f64
    );
    let object = Arc::new(ObjectRef {
        bucket: "alb-logs".to_string(),
        key: "prod-shop/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/01/17/x.log.gz"
            .to_string(),
        ..ObjectRef::default()
    });
    let reader = reader();
    let run = |body: &[u8]| {
        let mut events = 0usize;
        let summary = reader
            .read(&object, body, None, None, &mut |batch| {
                events += batch.events.len();
                black_box(&batch);
                true
            })
            .expect("the object reads");
        assert_eq!(events, RECORDS);
        summary
    };

    // Batches go through a bounded channel to a thread that drops them.
    let (to_output, output) = std::sync::mpsc::sync_channel::<logferry_source_sqs::ObjectBatch>(4);
    let dropper = std::thread::spawn(move || output.into_iter().for_each(drop));
    let run_handing_off = |body: &[u8]| {
        let mut events = 0usize;
        let summary = reader
            .read(&object, body, None, None, &mut |batch| {
                events += batch.events.len();
                to_output.send(batch).is_ok()
            })
            .expect("the object reads");
        assert_eq!(events, RECORDS);
        summary
    };

    let mut group = c.benchmark_group("sqs_object/alb");
    group.measurement_time(Duration::from_secs(10));
    group.sample_size(20);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("gzip->events (MiB/s of decompressed bytes)", |b| {
        b.iter(|| run(&gz))
    });
    group.bench_function("plain->events (MiB/s)", |b| b.iter(|| run(text.as_bytes())));
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("gzip->events (events/s)", |b| b.iter(|| run(&gz)));
    group.bench_function("gzip->events, freed on another thread (events/s)", |b| {
        b.iter(|| run_handing_off(&gz))
    });
    group.finish();
    drop(to_output);
    dropper.join().expect("the dropping thread ends");
}

criterion_group!(benches, bench_object_reader);
criterion_main!(benches);
