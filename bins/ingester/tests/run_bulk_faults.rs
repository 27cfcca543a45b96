//! `logferry-ingester run` against a failing bulk API: whole requests answered 429/503 for a
//! while (messages stay in the queue, nothing is lost or duplicated once it recovers), and
//! partly failed bulks (only the failed items are sent again; items rejected for good are
//! dead-lettered with the reason and not retried).

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use common::{Harness, Ingester, alb_object, gzip, wait_for};
use logferry_testkit::ItemFault;
use serde_json::Value;

const BUCKET: &str = "faults";
const INDEX: &str = "alb-2018.07.02";

/// The config of both tests: one ALB input, the bulk server, a dead-letter file.
fn config(h: &Harness, queue: &str) -> std::path::PathBuf {
    h.config(
        "ingester.toml",
        &format!(
            "{}\n{}\n[dead_letter]\npath = \"{}\"\n",
            h.sqs_toml(
                "alb",
                queue,
                "log_format = \"alb\"\nvisibility_timeout = \"30s\""
            ),
            h.es_toml("es", "alb-%Y.%m.%d", "batch_max_events = 500"),
            h.dir.join("dead.ndjson").display()
        ),
    )
}

/// The request URLs of the indexed documents (unique per line).
fn urls(h: &Harness) -> BTreeSet<String> {
    h.bulk
        .documents(INDEX)
        .values()
        .map(|d| d["request_url"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn throttled_and_unavailable_bulk_api_loses_and_duplicates_nothing() {
    let h = Harness::new("bulk-down");
    let queue = h.notifying_bucket(BUCKET, "faults");
    let config = config(&h, &queue);
    // Every request fails until the faults are cleared: 429s, then 503s.
    h.bulk.fail_next_requests(6, 429);
    h.bulk.fail_next_requests(10_000, 503);
    let ingester = Ingester::run(&config, "ingester.log");
    for n in 0..3 {
        h.put(
            BUCKET,
            &format!("alb/{n}.log.gz"),
            gzip(alb_object(&format!("o{n}"), 1, 1000).as_bytes()),
        );
    }
    wait_for(
        "retries of failed requests",
        60,
        || h.bulk.bulk_request_count() >= 15,
        || h.diag(&queue, &[&ingester]),
    );
    assert_eq!(h.bulk.total_count(), 0);
    assert!(
        h.bulk
            .requests()
            .iter()
            .any(|r| r.is_bulk() && r.status == 429)
    );
    // While the output fails, no message is deleted (the 3 objects; the TestEvent may be).
    assert!(
        h.queue_total(&queue) >= 3,
        "{}",
        h.diag(&queue, &[&ingester])
    );

    h.bulk.clear_faults();
    wait_for(
        "the queue to empty after recovery",
        60,
        || h.queue_total(&queue) == 0,
        || h.diag(&queue, &[&ingester]),
    );
    assert_eq!(
        h.bulk.count(INDEX),
        3000,
        "{}",
        h.diag(&queue, &[&ingester])
    );
    assert_eq!(urls(&h).len(), 3000);
    let (status, log) = ingester.terminate();
    assert!(status.success(), "exit {status:?}:\n{log}");
    assert!(
        !h.dir.join("dead.ndjson").exists() || {
            std::fs::read_to_string(h.dir.join("dead.ndjson"))
                .unwrap()
                .is_empty()
        }
    );
}

#[test]
fn partly_failed_bulks_retry_only_the_failed_items() {
    let h = Harness::new("bulk-partial");
    let queue = h.notifying_bucket(BUCKET, "partial");
    let config = config(&h, &queue);
    // Lines n % 10 == 0 of `part` fail once (429 or 503); lines n.is_multiple_of(25) of `bad` are
    // rejected for good (400 mapper_parsing_exception).
    let failed_once: Mutex<HashSet<String>> = Mutex::default();
    h.bulk.fail_items_where(move |_index, doc: &Value| {
        let url = doc["request_url"].as_str()?;
        let (tag, n) = url.rsplit_once('/')?;
        let n: u64 = n.parse().ok()?;
        if tag.ends_with("/bad") && n.is_multiple_of(25) {
            return Some(ItemFault::MapperParsing);
        }
        if tag.ends_with("/part")
            && n.is_multiple_of(10)
            && failed_once.lock().unwrap().insert(url.into())
        {
            return Some(if n.is_multiple_of(20) {
                ItemFault::TooManyRequests
            } else {
                ItemFault::Unavailable
            });
        }
        None
    });
    let ingester = Ingester::run(&config, "ingester.log");
    h.put(
        BUCKET,
        "alb/part.log.gz",
        gzip(alb_object("part", 1, 2000).as_bytes()),
    );
    h.put(
        BUCKET,
        "alb/bad.log.gz",
        gzip(alb_object("bad", 1, 50).as_bytes()),
    );
    wait_for(
        "the queue to empty",
        60,
        || h.queue_total(&queue) == 0,
        || h.diag(&queue, &[&ingester]),
    );
    let (status, log) = ingester.terminate();
    assert!(status.success(), "exit {status:?}:\n{log}");

    assert_eq!(h.bulk.count(INDEX), 2000 + 48, "{}", h.diag(&queue, &[]));
    assert_eq!(urls(&h).len(), 2048);
    // Every item once, plus one retry of each of the 200 items that failed once; the 2
    // rejected items are not retried.
    assert_eq!(h.bulk.items_received(), 2000 + 200 + 50);

    let dead: Vec<Value> = std::fs::read_to_string(h.dir.join("dead.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 2, "{dead:#?}");
    let mut rejected: Vec<(u64, String)> = dead
        .iter()
        .map(|d| {
            assert_eq!(d["bucket"], BUCKET);
            assert_eq!(d["key"], "alb/bad.log.gz");
            assert_eq!(d["status"], 400, "{d}");
            assert_eq!(d["output"], "es", "{d}");
            assert!(
                d["error"]
                    .as_str()
                    .unwrap()
                    .contains("mapper_parsing_exception"),
                "{d}"
            );
            (
                d["line"].as_u64().unwrap(),
                d["document"]["request_url"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rejected.sort();
    assert_eq!(
        rejected,
        [
            (25, "http://www.example.com:80/bad/25".to_string()),
            (50, "http://www.example.com:80/bad/50".to_string())
        ]
    );
}
