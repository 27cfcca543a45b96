//! Crash safety of `logferry-ingester run`: `kill -9` in the middle of large objects, restart,
//! again and again; at the end every line is in the index exactly once, and no message was
//! deleted before every line of its object was indexed.
//!
//! The kill moments are random (a number of bulk items received since the start of the run);
//! the seed is printed and `LOGFERRY_INGESTER_CRASH_SEED=N` replays the choices (not the exact
//! timing). `LOGFERRY_INGESTER_CRASH_KILLS=N` sets the number of kills (default 4).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Harness, Ingester, Rng, alb_object, gzip, wait_for};

const BUCKET: &str = "big";
const OBJECTS: u64 = 3;
const LINES: u64 = 10_000;
const INDEX: &str = "alb-2018.07.02";

fn key(n: u64) -> String {
    format!("alb/2018/07/02/big-{n}.log.gz")
}

/// The lines of each object (by key) that are in the index.
fn indexed(h: &Harness) -> BTreeMap<String, BTreeSet<u64>> {
    let mut out: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for doc in h.bulk.documents(INDEX).values() {
        let key = doc["log_origin"]["key"].as_str().unwrap().to_string();
        let line = doc["log_origin"]["line"].as_u64().unwrap();
        assert!(out.entry(key).or_default().insert(line), "line twice");
    }
    out
}

/// Messages deleted so far must be at most the objects whose every line is indexed (+ the
/// TestEvent).
fn check_no_early_delete(h: &Harness, queue: &str, context: &str) {
    // Read the queue first: anything deleted by then had its lines indexed before.
    let remaining = h.queue_total(queue);
    let complete = indexed(h)
        .values()
        .filter(|lines| lines.len() as u64 == LINES)
        .count() as u64;
    let deleted = OBJECTS + 1 - remaining;
    assert!(
        deleted <= complete + 1,
        "{context}: {deleted} message(s) deleted but only {complete} object(s) fully indexed"
    );
}

#[test]
fn kill_9_in_the_middle_of_large_objects_loses_and_duplicates_nothing() {
    let mut rng = Rng::from_env("LOGFERRY_INGESTER_CRASH_SEED");
    let kills: u64 = std::env::var("LOGFERRY_INGESTER_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let h = Harness::new("run-crash");
    let queue = h.notifying_bucket(BUCKET, "big");
    let config = h.config(
        "ingester.toml",
        &format!(
            "{}\n{}",
            h.sqs_toml(
                "alb",
                &queue,
                "log_format = \"alb\"\nvisibility_timeout = \"4s\"\nworkers = 2\nbatch_size = 500"
            ),
            h.es_toml(
                "es",
                "alb-%Y.%m.%d",
                "batch_max_events = 1000\nconcurrency = 2"
            )
        ),
    );
    for n in 0..OBJECTS {
        let tag = format!("o{n}");
        h.put(BUCKET, &key(n), gzip(alb_object(&tag, 1, LINES).as_bytes()));
    }
    assert_eq!(h.queue_total(&queue), OBJECTS + 1);
    // Slow answers widen the window in which a kill finds events sent but not acknowledged.
    h.bulk.set_delay(Duration::from_millis(20));

    let started = std::time::Instant::now();
    for round in 0..kills {
        let before = h.bulk.items_received();
        let after = rng.range(0, 8_000);
        let ingester = Ingester::run(&config, &format!("ingester-{round}.log"));
        wait_for(
            &format!("round {round}: {after} more bulk items"),
            90,
            || h.bulk.items_received() >= before + after,
            || h.diag(&queue, &[&ingester]),
        );
        ingester.kill9();
        eprintln!(
            "{:?} round {round}: killed after {} more items; {} documents, queue {:?}",
            started.elapsed(),
            h.bulk.items_received() - before,
            h.bulk.count(INDEX),
            h.block_on(h.moto.queue_counts(&queue)).unwrap()
        );
        check_no_early_delete(&h, &queue, &format!("after kill {round}"));
    }

    h.bulk.set_delay(Duration::ZERO);
    let ingester = Ingester::run(&config, "ingester-last.log");
    let mut last_remaining = h.queue_total(&queue);
    wait_for(
        "the queue to empty",
        120,
        || {
            let remaining = h.queue_total(&queue);
            if remaining != last_remaining {
                // A message was deleted: its object must be indexed whole.
                check_no_early_delete(&h, &queue, "last run");
                last_remaining = remaining;
            }
            remaining == 0
        },
        || h.diag(&queue, &[&ingester]),
    );
    // The queue is empty: every line must be indexed already.
    let lines = indexed(&h);
    for n in 0..OBJECTS {
        let got = lines.get(&key(n)).map_or(0, |l| l.len() as u64);
        assert_eq!(got, LINES, "object {n}: {}", h.diag(&queue, &[&ingester]));
    }
    assert_eq!(h.bulk.count(INDEX) as u64, OBJECTS * LINES);
    assert_eq!(h.bulk.total_count() as u64, OBJECTS * LINES);
    // Each line once, with its own content.
    let urls: BTreeSet<String> = h
        .bulk
        .documents(INDEX)
        .values()
        .map(|d| d["request_url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len() as u64, OBJECTS * LINES);
    let (status, log) = ingester.terminate();
    assert!(status.success(), "exit {status:?}:\n{log}");
    eprintln!("{:?} done", started.elapsed());
}
