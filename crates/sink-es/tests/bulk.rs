//! End-to-end tests of the Elasticsearch output against the testkit bulk server (or a real
//! cluster when `LOGFERRY_ES_URL` is set; see `common/mod.rs`).

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, acked, events, events_with, expected_documents};
use logferry_core::{AckStatus, AckToken};
use logferry_sink_es::{
    AuthConfig, Compression, DeadLetterConfig, DeadLetterWriter, DocumentId, IdMode, OpType,
};
use logferry_testkit::{BulkServer, ItemFault};
use serde_json::Value;

const SHUTDOWN: Duration = Duration::from_secs(10);

/// The testkit server holds exactly `expected` in `index`.
fn assert_holds_exactly(server: &BulkServer, index: &str, expected: &[(String, Value)]) {
    let held = server.documents(index);
    assert_eq!(held.len(), expected.len());
    for (id, doc) in expected {
        assert_eq!(held.get(id), Some(doc), "document {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_exact_documents_with_position_ids() {
    let cluster = Cluster::start();
    let index = cluster.index("exact");
    let sink = cluster.config(&index).build("es", None).await.unwrap();
    let (batch, ack) = events("alb/a.log.gz", 0, 250);
    let expected = expected_documents(&batch);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(cluster.count(&index).await, 250);
    for (id, doc) in expected.iter().step_by(25) {
        assert_eq!(cluster.document(&index, id).await.as_ref(), Some(doc));
    }
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!(
        (stats.delivered, stats.errored, stats.dead_lettered),
        (250, 0, 0)
    );
    if let Some(server) = &cluster.server {
        // 250 events in batches of at most 100, all gzip, all `create` with an `_id`.
        let bulks: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.is_bulk())
            .collect();
        assert!(bulks.len() >= 3, "{}", bulks.len());
        assert!(bulks.iter().all(|r| r.gzip && r.items <= 100));
        assert!(
            bulks
                .iter()
                .all(|r| r.header("content-type") == Some("application/x-ndjson"))
        );
        assert!(bulks.iter().all(|r| r.body.len() < r.decoded_len / 2));
        assert_eq!(server.documents(&index).len(), 250);
        for (id, doc) in &expected {
            assert_eq!(server.document(&index, id).as_ref(), Some(doc));
        }
    }
    cluster.delete(&index).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_create_yields_conflicts_not_duplicates() {
    let cluster = Cluster::start();
    let index = cluster.index("replay");
    let sink = cluster.config(&index).build("es", None).await.unwrap();
    let (first, ack) = events("alb/b.log.gz", 0, 120);
    sink.send(first).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    // The same message delivered again (SQS redelivery): same ids, 409s, still delivered.
    let (again, ack) = events("alb/b.log.gz", 0, 120);
    sink.send(again).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(cluster.count(&index).await, 120);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!(stats.conflicts, 120);
    assert_eq!(stats.delivered, 240);
    cluster.delete(&index).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_lines_stay_distinct_and_replaced_objects_get_new_ids() {
    let cluster = Cluster::start();
    let index = cluster.index("same");
    let sink = cluster.config(&index).build("es", None).await.unwrap();
    let (token, ack) = AckToken::new();
    let mut batch = events_with("k", 0, 10, &token);
    for event in &mut batch {
        event.json = r#"{"@timestamp":"2024-03-05T10:00:00Z","message":"identical"}"#.into();
    }
    // The same key replaced by a new version: new documents, the old ones stay.
    let mut replaced = events_with("k", 0, 10, &token);
    for event in &mut replaced {
        event.origin.version = Some("v2".into());
    }
    drop(token);
    sink.send(batch).await.unwrap();
    sink.send(replaced).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(cluster.count(&index).await, 20);
    sink.shutdown(SHUTDOWN).await;
    cluster.delete(&index).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_op_overwrites_and_none_ids_are_generated() {
    let cluster = Cluster::start();
    let index = cluster.index("overwrite");
    let mut config = cluster.config(&index);
    config.op_type = OpType::Index;
    config.compression = Compression::None;
    let sink = config.build("es", None).await.unwrap();
    let (batch, ack) = events("o", 0, 30);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    let (batch, ack) = events("o", 0, 30);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(cluster.count(&index).await, 30);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!((stats.delivered, stats.conflicts), (60, 0));
    if let Some(server) = &cluster.server {
        assert!(
            server
                .requests()
                .iter()
                .filter(|r| r.is_bulk())
                .all(|r| !r.gzip)
        );
        let (batch, _) = events("o", 0, 1);
        let id = DocumentId::for_event(IdMode::Position, &batch[0]).unwrap();
        assert_eq!(server.version(&index, id.as_str()), Some(2));
    }
    let generated = cluster.index("generated");
    let mut config = cluster.config(&generated);
    config.id = IdMode::None;
    let sink = config.build("es", None).await.unwrap();
    for _ in 0..2 {
        let (batch, ack) = events("g", 0, 15);
        sink.send(batch).await.unwrap();
        assert_eq!(acked(ack).await, AckStatus::Delivered);
    }
    // Without ids a replay duplicates: that is what `id = "none"` means.
    assert_eq!(cluster.count(&generated).await, 30);
    sink.shutdown(SHUTDOWN).await;
    cluster.delete(&index).await;
    cluster.delete(&generated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_request_429_and_503_then_recovery_loses_and_duplicates_nothing() {
    let cluster = Cluster::start();
    let Some(server) = cluster.fault_injection() else {
        return;
    };
    let index = cluster.index("recover");
    let mut config = cluster.config(&index);
    config.concurrency = 2;
    let sink = config.build("es", None).await.unwrap();
    server.fail_next_requests(5, 429);
    server.fail_next_requests(5, 503);
    let (token, ack) = AckToken::new();
    for part in 0..5 {
        sink.send(events_with("r", part * 100, 100, &token))
            .await
            .unwrap();
    }
    drop(token);
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(server.count(&index), 500);
    assert_eq!(server.items_received(), 500, "no item was processed twice");
    let failed = server
        .requests()
        .iter()
        .filter(|r| r.status == 429 || r.status == 503)
        .count();
    assert_eq!(failed, 10);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!(
        (stats.delivered, stats.conflicts, stats.failed_requests),
        (500, 0, 10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partly_failed_bulk_retries_only_failed_items() {
    let cluster = Cluster::start();
    let Some(server) = cluster.fault_injection() else {
        return;
    };
    let index = cluster.index("partial");
    let sink = cluster.config(&index).build("es", None).await.unwrap();
    server.fail_next_items(7, ItemFault::TooManyRequests);
    server.fail_next_items(3, ItemFault::Unavailable);
    let (batch, ack) = events("p", 0, 100);
    let expected = expected_documents(&batch);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    // The retried items carry their own documents (read back from the first request's body).
    assert_holds_exactly(server, &index, &expected);
    // 100 items, then only the 10 that failed.
    assert_eq!(server.items_received(), 110);
    let items: Vec<usize> = server
        .requests()
        .iter()
        .filter(|r| r.is_bulk())
        .map(|r| r.items)
        .collect();
    assert_eq!(items, [100, 10]);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!(
        (stats.delivered, stats.retried_items, stats.conflicts),
        (100, 10, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_too_large_is_sent_again_in_halves() {
    let cluster = Cluster::start();
    let Some(server) = cluster.fault_injection() else {
        return;
    };
    let index = cluster.index("halves");
    let sink = cluster.config(&index).build("es", None).await.unwrap();
    server.fail_next_requests(2, 413);
    let (batch, ack) = events("h", 0, 100);
    let expected = expected_documents(&batch);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_holds_exactly(server, &index, &expected);
    // 100 refused, its first half (50) refused, then 25 + 25 + 50 (the server records a
    // refused request without reading its items).
    let items: Vec<usize> = server
        .requests()
        .iter()
        .filter(|r| r.is_bulk())
        .map(|r| r.items)
        .collect();
    assert_eq!(items, [0, 0, 25, 25, 50]);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!((stats.delivered, stats.errored), (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_items_go_to_the_dead_letter_output_with_the_reason() {
    let cluster = Cluster::start();
    let Some(server) = cluster.fault_injection() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead/letters.ndjson");
    let dead_letter = DeadLetterWriter::open(&DeadLetterConfig { path: path.clone() }).unwrap();
    let index = cluster.index("reject");
    let mut config = cluster.config(&index);
    config.index = format!("{index}-%{{[type]}}");
    let sink = config.build("es-main", Some(dead_letter)).await.unwrap();
    server.fail_items_where(|_, doc| {
        (doc["n"].as_u64()? % 10 == 3).then_some(ItemFault::MapperParsing)
    });
    let (mut batch, ack) = events("alb/d.log.gz", 0, 50);
    // An event whose index name cannot be rendered is dead-lettered too.
    batch[49].json = r#"{"@timestamp":"2024-03-05T10:00:00Z","n":49}"#.into();
    sink.send(batch).await.unwrap();
    // Dead-lettered events count as handled: the message may be deleted.
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!((stats.delivered, stats.dead_lettered), (44, 6));
    assert_eq!(server.count(&format!("{index}-https")), 44);
    assert_eq!(
        server.items_received(),
        49,
        "rejected items are not retried"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let mapping: Vec<&Value> = lines.iter().filter(|l| l["status"] == 400).collect();
    assert_eq!(mapping.len(), 5);
    for line in &mapping {
        assert_eq!(line["bucket"], "logs");
        assert_eq!(line["key"], "alb/d.log.gz");
        assert_eq!(line["output"], "es-main");
        assert_eq!(line["document"]["n"].as_u64().unwrap() % 10, 3);
        assert_eq!(
            line["line"].as_u64().unwrap(),
            line["document"]["n"].as_u64().unwrap() + 1
        );
        assert!(
            line["error"]
                .as_str()
                .unwrap()
                .starts_with("mapper_parsing_exception: "),
            "{line}"
        );
    }
    let unroutable = lines.iter().find(|l| l["line"] == 50).unwrap();
    assert_eq!(
        unroutable["error"],
        "index template field `type` is missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_without_dead_letter_output_reports_rejected() {
    let cluster = Cluster::start();
    let Some(server) = cluster.fault_injection() else {
        return;
    };
    let index = cluster.index("noqueue");
    let sink = cluster.config(&index).build("es", None).await.unwrap();
    server.fail_next_items(1, ItemFault::MapperParsing);
    let (batch, ack) = events("x", 0, 5);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Rejected);
    assert_eq!(sink.shutdown(SHUTDOWN).await.rejected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_max_times_gives_up_with_errored() {
    let cluster = Cluster::start();
    let Some(server) = cluster.fault_injection() else {
        return;
    };
    let index = cluster.index("giveup");
    let mut config = cluster.config(&index);
    config.retry_max_times = Some(2);
    let sink = config.build("es", None).await.unwrap();
    server.fail_next_requests(100, 503);
    let (batch, ack) = events("x", 0, 5);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Errored);
    assert_eq!(server.bulk_request_count(), 3);
    assert_eq!(sink.shutdown(SHUTDOWN).await.errored, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_interrupts_endless_retries() {
    let cluster = Cluster::start();
    let Some(server) = cluster.fault_injection() else {
        return;
    };
    let index = cluster.index("interrupt");
    let sink = cluster.config(&index).build("es", None).await.unwrap();
    server.fail_next_requests(1_000_000, 429);
    let (batch, ack) = events("x", 0, 20);
    sink.send(batch).await.unwrap();
    let (batch2, ack2) = events("y", 0, 20);
    sink.send(batch2).await.unwrap();
    assert!(logferry_testkit::wait_until(
        Instant::now() + Duration::from_secs(10),
        || server.bulk_request_count() >= 3
    ));
    let started = Instant::now();
    let stats = sink.shutdown(Duration::from_millis(300)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(stats.errored, 40);
    assert_eq!(acked(ack).await, AckStatus::Errored);
    assert_eq!(acked(ack2).await, AckStatus::Errored);
    assert_eq!(server.count(&index), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_sends_a_partly_filled_batch_before_batch_timeout() {
    let cluster = Cluster::start();
    let index = cluster.index("flush");
    let mut config = cluster.config(&index);
    config.batch_timeout = logferry_core::ConfigDuration::from_secs(3600);
    let sink = config.build("es", None).await.unwrap();
    let (batch, ack) = events("f", 0, 7);
    sink.send(batch).await.unwrap();
    sink.flush().await.unwrap();
    // Far sooner than the hour of batch_timeout.
    let status = tokio::time::timeout(Duration::from_secs(20), ack)
        .await
        .expect("the flushed batch is acknowledged");
    assert_eq!(status, AckStatus::Delivered);
    assert_eq!(cluster.count(&index).await, 7);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!((stats.delivered, stats.requests), (7, 1));
    cluster.delete(&index).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_applies_backpressure_and_batches_by_time() {
    let cluster = Cluster::start();
    let Some(server) = cluster.fault_injection() else {
        return;
    };
    let index = cluster.index("slow");
    let mut config = cluster.config(&index);
    config.concurrency = 1;
    config.batch_max_events = 10;
    let sink = config.build("es", None).await.unwrap();
    server.set_delay(Duration::from_millis(100));
    let (token, ack) = AckToken::new();
    // One event: sent when batch_timeout passes, not held for a full batch.
    sink.send(events_with("s", 0, 1, &token)).await.unwrap();
    assert!(logferry_testkit::wait_until(
        Instant::now() + Duration::from_secs(5),
        || server.count(&index) == 1
    ));
    // With one request in flight and a short queue, send() must wait for the slow server.
    let started = Instant::now();
    for i in 0..10 {
        sink.send(events_with("s", 1 + i * 10, 10, &token))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    drop(token);
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(server.count(&index), 101);
    let bulks = server
        .requests()
        .into_iter()
        .filter(|r| r.is_bulk())
        .count();
    assert_eq!(bulks, 11);
    sink.shutdown(SHUTDOWN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_and_api_key_authentication() {
    let server = BulkServer::builder()
        .basic_auth("elastic", "s3cret")
        .start()
        .unwrap();
    let mut config = logferry_sink_es::EsConfig::new(vec![server.url()]);
    config.index = "auth".into();
    config.auth = Some(AuthConfig::Basic {
        user: "elastic".into(),
        password: "s3cret".into(),
    });
    let sink = config.build("es", None).await.unwrap();
    let (batch, ack) = events("a", 0, 3);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(server.count("auth"), 3);
    sink.shutdown(SHUTDOWN).await;

    let server = BulkServer::builder().api_key("aWQ6a2V5").start().unwrap();
    config.hosts = vec![server.url()];
    config.auth = Some(AuthConfig::ApiKey {
        key: "aWQ6a2V5".into(),
    });
    let sink = config.build("es", None).await.unwrap();
    let (batch, ack) = events("a", 0, 3);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("ApiKey aWQ6a2V5")
    );
    sink.shutdown(SHUTDOWN).await;

    // Wrong credentials: 401 is retried (not dead-lettered) until shutdown gives up.
    config.auth = Some(AuthConfig::ApiKey {
        key: "wrong".into(),
    });
    let sink = config.build("es", None).await.unwrap();
    let (batch, ack) = events("a", 10, 3);
    sink.send(batch).await.unwrap();
    assert!(logferry_testkit::wait_until(
        Instant::now() + Duration::from_secs(10),
        || { server.requests().iter().filter(|r| r.status == 401).count() >= 2 }
    ));
    let stats = sink.shutdown(Duration::from_millis(100)).await;
    assert_eq!((stats.errored, stats.dead_lettered), (3, 0));
    assert_eq!(acked(ack).await, AckStatus::Errored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_are_retried_on_the_next_host() {
    let server = BulkServer::start().unwrap();
    let dead = format!(
        "http://127.0.0.1:{}",
        logferry_testkit::free_port().unwrap()
    );
    let mut config = logferry_sink_es::EsConfig::new(vec![dead, server.url()]);
    config.index = "hosts".into();
    config.retry_initial_backoff = "10ms".parse().unwrap();
    config.retry_max_backoff = "50ms".parse().unwrap();
    let sink = config.build("es", None).await.unwrap();
    let (batch, ack) = events("h", 0, 10);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    assert_eq!(server.count("hosts"), 10);
    let stats = sink.shutdown(SHUTDOWN).await;
    assert_eq!(stats.failed_requests, 1);
}
