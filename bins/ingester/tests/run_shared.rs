//! Several `logferry-ingester run` processes on one queue share the work (SQS visibility hands
//! out messages) without duplicates: for live bucket notifications and for a
//! `backfill --enqueue` of objects that already exist.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{Harness, Ingester, alb_object, gzip, run_to_end, wait_for};

const INDEX: &str = "alb-2018.07.02";
const OBJECTS: u64 = 12;
const LINES: u64 = 500;

/// One message at a time per ingester, so that neither can take the whole queue at once.
fn config(h: &Harness, queue: &str) -> std::path::PathBuf {
    h.config(
        "ingester.toml",
        &format!(
            "{}\n{}\n[backfill]\nlog_format = \"alb\"\n",
            h.sqs_toml(
                "alb",
                queue,
                "log_format = \"alb\"\nvisibility_timeout = \"30s\"\nworkers = 1\n\
                 max_in_flight = 1\nmax_number_of_messages = 1"
            ),
            h.es_toml("es", "alb-%Y.%m.%d", "batch_max_events = 100"),
        ),
    )
}

/// The `received=` count of an ingester's "Input stopped." line.
fn received(log: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains("Input stopped."))
        .unwrap_or_else(|| panic!("no summary:\n{log}"));
    let value = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("received="))
        .unwrap_or_else(|| panic!("no received= in {line}"));
    value.parse().unwrap()
}

fn put_objects(h: &Harness, bucket: &str) {
    for n in 0..OBJECTS {
        h.put(
            bucket,
            &format!("alb/{n:02}.log.gz"),
            gzip(alb_object(&format!("o{n}"), 1, LINES).as_bytes()),
        );
    }
}

/// Waits for the queue to empty, stops both ingesters, and checks that each processed some
/// messages, together `messages`, and that every line is indexed once.
fn finish(h: &Harness, queue: &str, a: Ingester, b: Ingester, messages: u64) {
    wait_for(
        "the queue to empty",
        90,
        || h.queue_total(queue) == 0 && h.bulk.count(INDEX) as u64 == OBJECTS * LINES,
        || h.diag(queue, &[&a, &b]),
    );
    let (status_a, log_a) = a.terminate();
    let (status_b, log_b) = b.terminate();
    assert!(status_a.success(), "{log_a}");
    assert!(status_b.success(), "{log_b}");
    let (ra, rb) = (received(&log_a), received(&log_b));
    eprintln!("ingester a received {ra} message(s), b {rb}");
    assert!(ra > 0 && rb > 0, "work not shared: a {ra}, b {rb}");
    assert_eq!(ra + rb, messages, "a message received twice or missed");
    assert_eq!(h.bulk.count(INDEX) as u64, OBJECTS * LINES);
    let urls: BTreeSet<String> = h
        .bulk
        .documents(INDEX)
        .values()
        .map(|d| d["request_url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len() as u64, OBJECTS * LINES);
    // No document was sent twice: every bulk item created a document.
    assert_eq!(h.bulk.items_received(), OBJECTS * LINES);
}

fn start_two(config: &Path) -> (Ingester, Ingester) {
    (
        Ingester::run(config, "ingester-a.log"),
        Ingester::run(config, "ingester-b.log"),
    )
}

#[test]
fn two_ingesters_share_one_queue() {
    let h = Harness::new("shared-live");
    let queue = h.notifying_bucket("live", "live");
    let config = config(&h, &queue);
    h.bulk.set_delay(Duration::from_millis(20));
    let (a, b) = start_two(&config);
    put_objects(&h, "live");
    finish(&h, &queue, a, b, OBJECTS + 1); // + the TestEvent
}

#[test]
fn backfill_enqueue_is_shared_by_two_ingesters() {
    let h = Harness::new("shared-enqueue");
    h.bucket("old");
    put_objects(&h, "old");
    h.put("old", "elsewhere/skipped.log", "not under the prefix\n");
    let queue = h.queue("backfill");
    let config = config(&h, &queue);
    h.bulk.set_delay(Duration::from_millis(20));
    let (a, b) = start_two(&config);
    let (status, _, err) = run_to_end(
        &h.dir,
        &[
            "backfill",
            "--config",
            config.to_str().unwrap(),
            "--bucket",
            "old",
            "--prefix",
            "alb/",
            "--enqueue",
            &queue,
            "--no-progress",
        ],
        60,
    );
    assert!(status.success(), "{err}");
    assert!(
        err.contains(&format!("{OBJECTS} object(s) enqueued")),
        "{err}"
    );
    finish(&h, &queue, a, b, OBJECTS);
}
