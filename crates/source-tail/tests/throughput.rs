//! Release-mode throughput of reading one large file of JSON lines, as `parse = "none"` and
//! `parse = "json"`:
//! `cargo test -p logferry-source-tail --release -- --ignored --nocapture`.

mod common;

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use common::*;
use logferry_core::{AckStatus, ShutdownSignal};
use logferry_source_tail::{ParseMode, RunMode, TailBatch, TailSource};
use tokio::sync::mpsc;

const TARGET_BYTES: u64 = 200 * 1000 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run in release mode with --ignored --nocapture"]
async fn throughput_of_a_200mb_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    let mut out = BufWriter::new(std::fs::File::create(&log).unwrap());
    let mut written = 0u64;
    let mut i = 0u64;
    while written < TARGET_BYTES {
        let line = format!(
            "{{\"time\":\"2024-01-17T10:00:00.{:06}Z\",\"host\":\"host-{}\",\"pid\":{},\
             \"request\":\"GET /api/v1/items/{} HTTP/1.1\",\"status\":200,\"bytes\":5123,\
             \"ua\":\"Mozilla/5.0 (X11; Linux x86_64)\"}}\n",
            i % 1_000_000,
            i % 50,
            i % 9999,
            i
        );
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        i += 1;
    }
    out.flush().unwrap();
    drop(out);

    for parse in [ParseMode::None, ParseMode::Json] {
        let mut config = fast_config(glob(dir.path(), "*.log"));
        config.parse = parse;
        let pos = dir.path().join(format!("{parse:?}.pos"));
        let source = TailSource::new("bench", config, pos, HashMap::new()).unwrap();
        let (tx, mut rx) = mpsc::channel::<TailBatch>(64);
        let consumer = tokio::spawn(async move {
            let mut lines = 0u64;
            while let Some(batch) = rx.recv().await {
                lines += batch.records.len() as u64;
                batch.ack.finish(AckStatus::Delivered);
            }
            lines
        });
        let start = Instant::now();
        let summary = source
            .run(
                tx,
                ShutdownSignal::never(),
                RunMode::Once,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let elapsed = start.elapsed().as_secs_f64();
        assert_eq!(consumer.await.unwrap(), i);
        assert_eq!(summary.bytes, written);
        assert_eq!(summary.parse_errors, 0);
        println!(
            "parse={parse:?}: {} lines, {:.1} MB in {elapsed:.2}s: {:.1} MiB/s, {:.2} M lines/s",
            summary.lines,
            written as f64 / 1e6,
            written as f64 / elapsed / (1 << 20) as f64,
            summary.lines as f64 / elapsed / 1e6,
        );
    }
}
