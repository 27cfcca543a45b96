//! `logferry-ingester backfill` against moto's S3: `--prefix`, `--since` and `--until` select
//! the objects; an interrupted backfill (SIGTERM, then `kill -9`, during a slow output) resumes
//! from its checkpoint and ends with every line indexed exactly once (`op_type = "create"`).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Harness, Ingester, alb_object, gzip, run_to_end, wait_for};

const BUCKET: &str = "archive";
const INDEX: &str = "alb-2018.07.02";

/// `shutdown_timeout` short enough that a SIGTERM leaves work undone.
fn config(h: &Harness, es_extra: &str) -> std::path::PathBuf {
    h.config_with_timeout(
        "ingester.toml",
        "1s",
        &format!(
            "{}\n[backfill]\nlog_format = \"alb\"\nworkers = 1\n",
            h.es_toml("es", "alb-%Y.%m.%d", es_extra),
        ),
    )
}

/// The next whole second after now, as seconds since the epoch, once the clock has passed it.
fn next_second() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let boundary = now.as_secs() + 1;
    wait_for(
        "the clock to pass a second",
        5,
        || SystemTime::now().duration_since(UNIX_EPOCH).unwrap() >= Duration::from_secs(boundary),
        String::new,
    );
    boundary
}

/// RFC 3339 of seconds since the epoch (UTC).
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn request_urls(h: &Harness) -> BTreeSet<String> {
    h.bulk
        .documents(INDEX)
        .values()
        .map(|d| d["request_url"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn since_until_and_prefix_select_the_objects() {
    let h = Harness::new("backfill-filters");
    h.bucket(BUCKET);
    let put = |key: &str, tag: &str| {
        h.put(BUCKET, key, gzip(alb_object(tag, 1, 10).as_bytes()));
    };
    put("alb/before.log.gz", "before");
    put("other/outside.log.gz", "outside");
    let since = next_second();
    put("alb/within.log.gz", "within");
    put("other/within-outside.log.gz", "within-outside");
    let until = next_second();
    put("alb/after.log.gz", "after");
    let config = config(&h, "");

    let (since, until) = (rfc3339(since), rfc3339(until));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "backfill",
            "--config",
            config.to_str().unwrap(),
            "--bucket",
            BUCKET,
            "--prefix",
            "alb/",
            "--no-progress",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, err) = run_to_end(&h.dir, &args, 60);
        assert!(status.success(), "{args:?}:\n{err}");
        err
    };
    let tags = |h: &Harness| -> BTreeSet<String> {
        request_urls(h)
            .iter()
            .map(|u| u.split('/').nth(3).unwrap().to_string())
            .collect()
    };

    let checkpoint = h.dir.join("within.checkpoint");
    let err = run(args(&[
        "--since",
        &since,
        "--until",
        &until,
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]));
    assert_eq!(
        tags(&h),
        BTreeSet::from(["within".to_string()]),
        "since {since} until {until}:\n{err}"
    );
    assert_eq!(h.bulk.count(INDEX), 10);

    let checkpoint = h.dir.join("since.checkpoint");
    run(args(&[
        "--since",
        &since,
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]));
    assert_eq!(
        tags(&h),
        BTreeSet::from(["within".to_string(), "after".to_string()])
    );

    let checkpoint = h.dir.join("until.checkpoint");
    run(args(&[
        "--until",
        &until,
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]));
    assert_eq!(
        tags(&h),
        BTreeSet::from([
            "before".to_string(),
            "within".to_string(),
            "after".to_string()
        ])
    );
    assert_eq!(h.bulk.count(INDEX), 30);
}

#[test]
fn interrupted_backfill_resumes_from_its_checkpoint() {
    const OBJECTS: u64 = 6;
    const LINES: u64 = 1000;
    let h = Harness::new("backfill-resume");
    h.bucket(BUCKET);
    for n in 0..OBJECTS {
        h.put(
            BUCKET,
            &format!("alb/{n:02}.log.gz"),
            gzip(alb_object(&format!("o{n}"), 1, LINES).as_bytes()),
        );
    }
    let config = config(
        &h,
        "op_type = \"create\"\nbatch_max_events = 100\nconcurrency = 1",
    );
    let checkpoint = h.dir.join("resume.checkpoint");
    let args = [
        "backfill",
        "--config",
        config.to_str().unwrap(),
        "--bucket",
        BUCKET,
        "--prefix",
        "alb/",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--no-progress",
    ];
    // A slow output: 10 requests per object.
    h.bulk.set_delay(Duration::from_millis(100));

    // 1. SIGTERM once more than one object is in.
    let mut first = Ingester::start(&h.dir, &args, "backfill-1.log");
    wait_for(
        "one object and a half indexed",
        60,
        || h.bulk.count(INDEX) as u64 >= LINES * 3 / 2,
        || first.log(),
    );
    first.sigterm();
    let status = first.wait(60);
    let log = first.log();
    assert_eq!(status.code(), Some(1), "interrupted: exit 1\n{log}");
    assert!(log.contains("run again to resume"), "{log}");
    let saved = std::fs::read_to_string(&checkpoint).unwrap_or_default();
    assert!(saved.contains("alb/"), "checkpoint: {saved:?}\n{log}");
    let after_first = h.bulk.count(INDEX) as u64;
    assert!(after_first < OBJECTS * LINES, "not interrupted\n{log}");

    // 2. kill -9 after some more progress.
    let second = Ingester::start(&h.dir, &args, "backfill-2.log");
    wait_for(
        "more documents",
        60,
        || h.bulk.count(INDEX) as u64 >= after_first + LINES,
        || second.log(),
    );
    second.kill9();
    assert!((h.bulk.count(INDEX) as u64) < OBJECTS * LINES);

    // 3. To the end, quickly: every line once; the run resumed instead of starting over.
    h.bulk.set_delay(Duration::ZERO);
    let items_before = h.bulk.items_received();
    let (status, _, err) = run_to_end(&h.dir, &args, 60);
    assert!(status.success(), "{err}");
    assert_eq!(h.bulk.count(INDEX) as u64, OBJECTS * LINES, "{err}");
    assert_eq!(request_urls(&h).len() as u64, OBJECTS * LINES);
    let resent = h.bulk.items_received() - items_before;
    assert!(
        resent < OBJECTS * LINES - LINES,
        "the last run sent {resent} items: it did not resume from the checkpoint\n{err}"
    );
    // Run again: nothing left to do.
    let items_before = h.bulk.items_received();
    let (status, _, err) = run_to_end(&h.dir, &args, 60);
    assert!(status.success(), "{err}");
    assert_eq!(h.bulk.items_received(), items_before, "{err}");
}
