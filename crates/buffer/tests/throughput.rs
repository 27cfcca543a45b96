//! Append throughput, measured in release mode:
//! `cargo test -p logferry-buffer --release -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use logferry_buffer::{Buffer, BufferConfig, BufferRecord, BufferType, FsyncMode};
use logferry_core::{ByteSize, Timestamp};

const BATCH: usize = 1000;
const TOTAL_BYTES: usize = 512 << 20;

fn line(i: usize) -> String {
    format!(
        r#"{{"@timestamp":"2024-05-01T12:00:00.123456Z","host":"web-{:03}","message":"GET /api/v1/items/{i} HTTP/1.1 200 1534 0.012","user_agent":"Mozilla/5.0 (X11; Linux x86_64)","request_id":"{:016x}"}}"#,
        i % 997,
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    )
}

async fn measure(name: &str, config: BufferConfig) {
    let dir = tempfile::tempdir().unwrap();
    let buffer = Buffer::open(&config, dir.path()).unwrap();
    let lines: Vec<String> = (0..BATCH * 8).map(line).collect();
    let line_bytes: usize = lines.iter().map(|l| l.len() + 1).sum::<usize>() / 8;
    let batches = TOTAL_BYTES / line_bytes;
    let now = Timestamp::now();
    let drain = tokio::spawn({
        let buffer = buffer.clone();
        async move {
            loop {
                let chunk = buffer.next_ready().await;
                buffer.complete(chunk).unwrap();
            }
        }
    });
    let start = Instant::now();
    let mut written = 0usize;
    for b in 0..batches {
        let slice = &lines[(b % 8) * BATCH..(b % 8 + 1) * BATCH];
        let records: Vec<_> = slice
            .iter()
            .map(|l| BufferRecord {
                time: now,
                line: l.as_bytes(),
            })
            .collect();
        buffer.append("bench", &records, None).await.unwrap();
        written += line_bytes;
    }
    let elapsed = start.elapsed().max(Duration::from_micros(1));
    drain.abort();
    let mib = written as f64 / f64::from(1 << 20);
    println!(
        "{name:<22} {mib:>7.0} MiB in {:>6.2}s: {:>8.1} MiB/s, {:>9.0} records/s ({} records per append)",
        elapsed.as_secs_f64(),
        mib / elapsed.as_secs_f64(),
        (batches * BATCH) as f64 / elapsed.as_secs_f64(),
        BATCH
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run in release mode with --ignored --nocapture"]
async fn append_throughput() {
    let file = |fsync| BufferConfig {
        fsync,
        chunk_limit_size: Some(ByteSize::new(64 << 20)),
        ..BufferConfig::default()
    };
    measure("file, fsync = batch", file(FsyncMode::Batch)).await;
    measure("file, fsync = never", file(FsyncMode::Never)).await;
    measure(
        "memory",
        BufferConfig {
            buffer_type: BufferType::Memory,
            total_limit_size: Some(ByteSize::new(4 << 30)),
            ..BufferConfig::default()
        },
    )
    .await;
}
