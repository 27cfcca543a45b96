//! Syslog over TCP: the RFC 6587 frame decoder alone, and the whole receive path of a
//! `SyslogSource` (read, frame, parse, shape fluentd-style JSON records, batch) over a loopback
//! connection, both framings. Throughput in messages and bytes per second.
//!
//! ```sh
//! cargo bench -p logferry-benches --bench syslog_tcp
//! ```

use std::hint::black_box;
use std::io::Write;
use std::net::TcpStream;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logferry_core::shutdown_pair;
use logferry_source_syslog::{FrameDecoder, Protocol, SyslogConfig, SyslogSource};

/// Messages per iteration of the end-to-end benchmark.
const MESSAGES: usize = 20_000;

fn message(i: usize) -> String {
    format!(
        "<86>Oct 11 22:14:15 web-{:03} sshd[{:05}]: Accepted publickey for deploy from 10.0.{}.{} port 51234",
        i % 100,
        i % 30000,
        i % 250,
        i % 200
    )
}

/// `MESSAGES` messages framed as `octet` counted or newline-delimited.
fn stream(octet: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..MESSAGES {
        let m = message(i);
        if octet {
            write!(out, "{} {m}", m.len()).unwrap();
        } else {
            writeln!(out, "{m}").unwrap();
        }
    }
    out
}

fn decoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("syslog_tcp/frame_decoder");
    for (name, octet) in [("octet_counted", true), ("newline", false)] {
        let data = stream(octet);
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut d = FrameDecoder::new(8192);
                let mut n = 0usize;
                // In 64 KiB reads, as the source reads a connection.
                for chunk in data.chunks(64 << 10) {
                    d.extend(chunk);
                    while let Some(f) = d.next_frame() {
                        n += f.data.len();
                    }
                }
                black_box(n)
            })
        });
    }
    group.finish();
}

fn source(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut config = SyslogConfig::new(Protocol::Tcp);
    config.port = 0;
    let source = runtime
        .block_on(SyslogSource::bind("bench", config))
        .unwrap();
    let addr = source.local_addr();
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let (trigger, signal) = shutdown_pair();
    let listener = runtime.spawn(source.run(tx, signal));

    let mut group = c.benchmark_group("syslog_tcp/source");
    group.sample_size(20);
    for (name, octet) in [("octet_counted", true), ("newline", false)] {
        let data = stream(octet);
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let data = data.clone();
                let writer = std::thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(&data).unwrap();
                });
                let mut received = 0;
                while received < MESSAGES {
                    let batch = rx.blocking_recv().expect("the source runs");
                    received += batch.records.len();
                }
                writer.join().unwrap();
            })
        });
    }
    group.finish();
    println!(
        "syslog_tcp/source: {MESSAGES} messages of ~{} bytes per iteration; messages/s = \
         bytes/s divided by that",
        message(0).len() + 4
    );
    trigger.trigger();
    runtime.block_on(listener).unwrap().unwrap();
}

criterion_group!(benches, decoder, source);
criterion_main!(benches);
