//! `logferry-ingester run` with bad input: malformed lines and a corrupt gzip object are
//! written to the `[dead_letter]` file with their location (bucket, key, line), everything else
//! is indexed, and the messages are deleted.

mod common;

use std::collections::BTreeSet;

use common::{Harness, Ingester, alb_line, alb_object, gzip, wait_for};
use serde_json::Value;

const BUCKET: &str = "bad";

fn dead_letters(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn malformed_lines_and_corrupt_gzip_are_dead_lettered_with_their_location() {
    let h = Harness::new("run-bad-input");
    let queue = h.notifying_bucket(BUCKET, "bad");
    let dead_letter = h.dir.join("dead/letters.ndjson");
    let config = h.config(
        "ingester.toml",
        &format!(
            "{}\n{}\n[dead_letter]\npath = \"{}\"\n",
            h.sqs_toml(
                "alb",
                &queue,
                "log_format = \"alb\"\nvisibility_timeout = \"30s\""
            ),
            h.es_toml("es", "alb-%Y.%m.%d", ""),
            dead_letter.display()
        ),
    );
    let ingester = Ingester::run(&config, "ingester.log");

    // Lines 2 and 5 do not parse; the other 6 do.
    let mixed_key = "mixed/app 1.log.gz";
    let mixed = [
        alb_line("mixed", 1),
        "broken line".to_string(),
        alb_line("mixed", 3),
        alb_line("mixed", 4),
        "http 2018-07-02T22:23:00.186641Z not enough fields".to_string(),
        alb_line("mixed", 6),
        alb_line("mixed", 7),
        alb_line("mixed", 8),
    ]
    .join("\n");
    h.put(BUCKET, mixed_key, gzip(mixed.as_bytes()));

    // A gzip object cut in the middle, garbage after: what was read before is indexed, the
    // object is dead-lettered as a whole.
    let corrupt_key = "corrupt/app.log.gz";
    let lines = 20_000;
    let mut corrupt = gzip(alb_object("corrupt", 1, lines).as_bytes());
    corrupt.truncate(corrupt.len() / 2);
    corrupt.extend_from_slice(&[0xde; 64]);
    h.put(BUCKET, corrupt_key, corrupt);

    // A good object after them, through the same queue.
    h.put(
        BUCKET,
        "good/app.log.gz",
        gzip(alb_object("good", 1, 100).as_bytes()),
    );

    wait_for(
        "every message deleted and 3 dead letters written",
        60,
        || h.queue_total(&queue) == 0 && dead_letters(&dead_letter).len() >= 3,
        || h.diag(&queue, &[&ingester]),
    );
    let (status, log) = ingester.terminate();
    assert!(status.success(), "exit {status:?}:\n{log}");

    let letters = dead_letters(&dead_letter);
    assert_eq!(letters.len(), 3, "{letters:#?}");
    let mut lines_of_mixed: Vec<(u64, String)> = letters
        .iter()
        .filter(|l| l["key"] == mixed_key)
        .map(|l| {
            assert_eq!(l["bucket"], BUCKET);
            assert!(!l["error"].as_str().unwrap().is_empty(), "{l}");
            (
                l["line"].as_u64().unwrap(),
                l["raw"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    lines_of_mixed.sort();
    assert_eq!(
        lines_of_mixed,
        [
            (2, "broken line".to_string()),
            (
                5,
                "http 2018-07-02T22:23:00.186641Z not enough fields".to_string()
            )
        ]
    );
    let whole = letters
        .iter()
        .find(|l| l["key"] == corrupt_key)
        .unwrap_or_else(|| panic!("no dead letter of the corrupt object: {letters:#?}"));
    assert_eq!(whole["bucket"], BUCKET);
    let error = whole["error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("gzip") || error.contains("deflate") || error.contains("corrupt"),
        "{whole}"
    );

    // Indexed: the 6 good lines of the mixed object at their own line numbers, a prefix of
    // the corrupt object (lines 1..=k, no gap), and all of the good object.
    let docs = h.bulk.documents("alb-2018.07.02");
    let lines_of = |key: &str| -> BTreeSet<u64> {
        docs.values()
            .filter(|d| d["log_origin"]["key"] == key)
            .map(|d| d["log_origin"]["line"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(lines_of(mixed_key), BTreeSet::from([1, 3, 4, 6, 7, 8]));
    let read = lines_of(corrupt_key);
    let k = read.len() as u64;
    assert!(
        k > 0 && k < lines,
        "{k} lines of the corrupt object indexed"
    );
    assert_eq!(read, (1..=k).collect::<BTreeSet<u64>>());
    assert_eq!(lines_of("good/app.log.gz").len(), 100);
    assert_eq!(docs.len() as u64, 6 + k + 100);

    let stopped = log
        .lines()
        .find(|l| l.contains("Input stopped."))
        .unwrap_or_else(|| panic!("no summary:\n{log}"));
    assert!(stopped.contains("deleted=4"), "{stopped}"); // 3 objects and the TestEvent
    assert!(stopped.contains("parse_errors=2"), "{stopped}");
    assert!(stopped.contains("failed=0"), "{stopped}");
}
