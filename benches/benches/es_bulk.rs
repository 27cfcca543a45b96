//! Bulk encoding throughput of the Elasticsearch output: ALB documents (parsed from generated
//! ALB lines by logferry-parse, as the ingester produces them) batched with index names from
//! `alb-%Y.%m.%d`, position ids and `create` actions into bulk bodies, with and without gzip
//! (level 1, the default). Throughput is in bytes of documents; events/s = bytes/s divided by
//! the mean document length, printed before the group.
//!
//! `send/null-endpoint` additionally runs the whole output (batching task, request tasks,
//! HTTP client) against a loopback HTTP server that answers every request as a cluster answers
//! a full default batch through the output's `filter_path` (`{"errors":false,"items":[...]}`,
//! 2,000 items of `{"create":{"status":201}}`) without reading the documents, so it measures
//! the sink's own cost per event.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use logferry_parse::{DecodeOptions, Format, FormatOptions};
use logferry_sink_es::{Compression, EsConfig, EsEvent, EventOrigin, encode_bulk_bodies};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Events per iteration.
const EVENTS: usize = 20_000;

fn alb_events() -> Vec<EsEvent> {
    let input = logferry_benches::sample("alb", EVENTS).expect("the alb generator exists");
    let format = Format::new("alb", &FormatOptions::new()).expect("alb exists");
    let bucket: Arc<str> = Arc::from("alb-logs");
    let key: Arc<str> =
        Arc::from("AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/03/05/x.log.gz");
    let mut events = Vec::with_capacity(EVENTS);
    format
        .decode(input.as_bytes(), &DecodeOptions::default(), |item| {
            if let Ok(located) = item {
                let mut json = Vec::new();
                located.record.write_json(&mut json);
                let origin = EventOrigin {
                    bucket: Arc::clone(&bucket),
                    key: Arc::clone(&key),
                    version: Some(Arc::from("3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")),
                    line: located.line,
                    offset: located.position,
                };
                let json = String::from_utf8(json).expect("JSON is UTF-8");
                events.push(EsEvent::new(json, located.record.timestamp(), origin));
            }
        })
        .expect("in-memory input decodes");
    events
}

fn config(url: &str, compression: Compression) -> EsConfig {
    let mut config = EsConfig::new(vec![url.to_string()]);
    config.index = "alb-%Y.%m.%d".to_string();
    config.compression = compression;
    config
}

fn bench_encode(c: &mut Criterion) {
    let events = alb_events();
    let doc_bytes: usize = events.iter().map(|e| e.json.len()).sum();
    println!(
        "es_bulk: {} ALB documents, mean {} bytes",
        events.len(),
        doc_bytes / events.len()
    );
    let mut group = c.benchmark_group("es_bulk/alb");
    group.throughput(Throughput::Bytes(doc_bytes as u64));
    group.sample_size(20);
    for (name, compression) in [
        ("encode", Compression::None),
        ("encode+gzip", Compression::Gzip),
    ] {
        let config = config("http://127.0.0.1:9", compression);
        group.bench_function(name, |b| {
            b.iter_batched(
                || events.clone(),
                |batch| {
                    let mut body_bytes = 0;
                    let n = encode_bulk_bodies(&config, batch, |body| body_bytes += body.len())
                        .expect("the template parses");
                    black_box((n, body_bytes))
                },
                BatchSize::LargeInput,
            )
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let url = runtime.block_on(null_endpoint());
    for (name, compression) in [
        ("send/null-endpoint", Compression::None),
        ("send+gzip/null-endpoint", Compression::Gzip),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || events.clone(),
                |batch| {
                    runtime.block_on(async {
                        let sink = config(&url, compression)
                            .build("bench", None)
                            .await
                            .expect("builds");
                        for chunk in batch.chunks(1000) {
                            sink.send(chunk.to_vec()).await.expect("open");
                        }
                        let stats = sink.shutdown(Duration::from_secs(60)).await;
                        assert_eq!(stats.delivered as usize, EVENTS);
                    })
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Items in each answer of [`null_endpoint`]: `batch_max_events`' default.
const ANSWER_ITEMS: usize = 2_000;

/// A loopback HTTP/1.1 server that reads each request and answers `{"errors":false}` with
/// [`ANSWER_ITEMS`] successful items.
async fn null_endpoint() -> String {
    let items = vec![r#"{"create":{"status":201}}"#; ANSWER_ITEMS].join(",");
    let body = format!(r#"{{"errors":false,"items":[{items}]}}"#);
    let answer: Arc<str> = Arc::from(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("has an address"));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
