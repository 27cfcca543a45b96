//! Rotation: rename-and-create, copytruncate, deletion while reading.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use logferry_source_tail::RunMode;
use tokio::sync::mpsc;

fn with_prefix(all: &[String], prefix: &str) -> Vec<String> {
    all.iter()
        .filter(|m| m.starts_with(prefix))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_reads_old_and_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let rotated = dir.path().join("a.log.1");
    append(&log, numbered("old", 0..100));
    let (running, received) = follow(
        fast_config(glob(dir.path(), "*.log")),
        &dir.path().join("pos"),
    );
    wait_until("the first lines arrive", || count(&received) == 100).await;

    std::fs::rename(&log, &rotated).unwrap();
    // The writer has not reopened yet: it still appends to the renamed file...
    append(&rotated, numbered("old", 100..150));
    // ... then the new file appears and gets lines too, while the old one still grows.
    append(&log, numbered("new", 0..50));
    append(&rotated, numbered("old", 150..160));
    wait_until("every line arrives", || count(&received) == 210).await;
    wait_until("the rotated file is forgotten", || {
        running.stats.open_files() == 1
    })
    .await;
    let summary = running.stop().await;

    let all = messages(&received);
    assert_eq!(with_prefix(&all, "old"), expected("old", 0..160));
    assert_eq!(with_prefix(&all, "new"), expected("new", 0..50));
    assert!(summary.rotations >= 1, "{summary:?}");
    assert_eq!(summary.files, 2);
    // Only the new file is left in the checkpoint.
    let offsets = pos_offsets(&dir.path().join("pos"));
    assert_eq!(
        offsets,
        [(log.to_string_lossy().into_owned(), file_len(&log))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, numbered("before", 0..100));
    let (running, received) = follow(
        fast_config(glob(dir.path(), "*.log")),
        &dir.path().join("pos"),
    );
    wait_until("the first lines arrive", || count(&received) == 100).await;

    std::fs::copy(&log, dir.path().join("a.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, numbered("after", 0..10));
    wait_until("the lines after truncation arrive", || {
        count(&received) == 110
    })
    .await;
    let summary = running.stop().await;

    let all = messages(&received);
    assert_eq!(with_prefix(&all, "before"), expected("before", 0..100));
    assert_eq!(with_prefix(&all, "after"), expected("after", 0..10));
    assert_eq!(summary.truncations, 1);
    let recs = received.lock().unwrap().clone();
    assert_ne!(
        recs[0].stream, recs[109].stream,
        "new content, new stream id"
    );
    assert_eq!(
        pos_offset_of(&dir.path().join("pos"), &log),
        Some(file_len(&log))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_file_is_drained_then_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, numbered("line", 0..50_000));
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.batch_size = 100;
    let (tx, rx) = mpsc::channel(1);
    let running = start(
        config,
        &dir.path().join("pos"),
        HashMap::new(),
        RunMode::Follow,
        tx,
    );
    let (received, _task) = consume(rx, Duration::from_millis(1));
    wait_until("reading has started", || count(&received) >= 100).await;
    std::fs::remove_file(&log).unwrap();
    wait_until("every line arrives", || count(&received) == 50_000).await;
    wait_until("the deleted file is forgotten", || {
        running.stats.open_files() == 0
    })
    .await;
    let summary = running.stop().await;
    assert_eq!(messages(&received), expected("line", 0..50_000));
    assert_eq!(summary.rotations, 1);
    assert!(pos_offsets(&dir.path().join("pos")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_file_is_read_until_its_replacement_appears() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let rotated = dir.path().join("a.log.1");
    append(&log, numbered("old", 0..10));
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.rotate_wait = ms(50);
    let (running, received) = follow(config, &dir.path().join("pos"));
    let stats = running.stats.clone();
    wait_until("the first lines arrive", || count(&received) == 10).await;

    std::fs::rename(&log, &rotated).unwrap();
    wait_until("the rename is noticed", || stats.rotations() == 1).await;
    // Well past rotate_wait (each scan is at least refresh_interval = 100ms apart)...
    let scans = stats.scans();
    wait_until("time passes", || stats.scans() >= scans + 6).await;
    // ... the writer still appends to the renamed file: it has no replacement yet.
    append(&rotated, numbered("old", 10..20));
    wait_until("the late lines arrive", || count(&received) == 20).await;
    assert_eq!(stats.open_files(), 1);

    append(&log, numbered("new", 0..5));
    wait_until("the replacement is read", || count(&received) == 25).await;
    wait_until("the renamed file is forgotten", || stats.open_files() == 1).await;
    running.stop().await;
    let all = messages(&received);
    assert_eq!(with_prefix(&all, "old"), expected("old", 0..20));
    assert_eq!(with_prefix(&all, "new"), expected("new", 0..5));
}
