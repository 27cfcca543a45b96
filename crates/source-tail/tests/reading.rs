//! Reading lines: start positions, new files, partial and overlong lines, encodings, parsing.

mod common;

use common::*;
use logferry_core::ByteSize;
use logferry_source_tail::ParseMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_from_head_off_starts_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, "old1\nold2\n");
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.read_from_head = false;
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("the file is opened", || running.stats.files() == 1).await;
    append(&log, "new1\n");
    wait_until("the new line arrives", || count(&received) == 1).await;
    let summary = running.stop().await;
    assert_eq!(messages(&received), ["new1"]);
    assert_eq!(summary.lines, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_from_head_on_reads_existing_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, "old1\nold2\n");
    let config = fast_config(glob(dir.path(), "*.log"));
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("old lines arrive", || count(&received) == 2).await;
    append(&log, "new1\n");
    wait_until("the new line arrives", || count(&received) == 3).await;
    running.stop().await;
    assert_eq!(messages(&received), ["old1", "old2", "new1"]);
    let recs = received.lock().unwrap().clone();
    let expected_tag = logferry_source_tail::expand_tag("test.*", &log);
    assert!(recs.iter().all(|r| r.tag == expected_tag && r.path == log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_created_after_startup_are_read_from_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.read_from_head = false;
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("the first scan saw an empty directory", || {
        running.stats.scans() >= 1
    })
    .await;
    append(&dir.path().join("late.log"), "l1\nl2\n");
    append(&dir.path().join("ignored.txt"), "x\n");
    wait_until("the new file is read", || count(&received) == 2).await;
    append(&dir.path().join("later.log"), "m1\n");
    wait_until("the second new file is read", || count(&received) == 3).await;
    let summary = running.stop().await;
    assert_eq!(messages(&received), ["l1", "l2", "m1"]);
    assert_eq!(summary.files, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_line_is_held_until_completed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, "first\npart");
    let config = fast_config(glob(dir.path(), "*.log"));
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("the first line arrives", || count(&received) == 1).await;
    append(&log, "ial\r\n");
    wait_until("the completed line arrives", || count(&received) == 2).await;
    running.stop().await;
    assert_eq!(messages(&received), ["first", "partial"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_line_is_flushed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, "first\nlonely");
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.partial_line_timeout = ms(200);
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("the partial line is flushed", || count(&received) == 2).await;
    let summary = running.stop().await;
    assert_eq!(messages(&received), ["first", "lonely"]);
    assert_eq!(summary.bytes, file_len(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_line_is_truncated_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let long = "y".repeat(100_000);
    append(&log, format!("short\n{long}\nafter\n"));
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.max_line_size = ByteSize::new(16);
    config.read_buffer_size = ByteSize::new(1000);
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("all lines arrive", || count(&received) == 3).await;
    let summary = running.stop().await;
    assert_eq!(messages(&received), ["short", &"y".repeat(16), "after"]);
    assert_eq!(summary.truncated_lines, 1);
    assert_eq!(summary.bytes, file_len(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_replaced_and_crlf_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, b"caf\xe9\r\nok\r\n\xff\xfe\n");
    let config = fast_config(glob(dir.path(), "*.log"));
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("all lines arrive", || count(&received) == 3).await;
    running.stop().await;
    assert_eq!(
        messages(&received),
        ["caf\u{fffd}", "ok", "\u{fffd}\u{fffd}"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_json_passes_objects_and_wraps_other_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(
        &log,
        "{\"a\": 1, \"b\": [true]}\nnot json\n[1,2]\n{\"c\":\"\u{e9}\"}\n",
    );
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.parse = ParseMode::Json;
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("all lines arrive", || count(&received) == 4).await;
    let summary = running.stop().await;
    let json: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.json.clone())
        .collect();
    assert_eq!(
        json,
        [
            r#"{"a": 1, "b": [true]}"#,
            r#"{"message":"not json"}"#,
            r#"{"message":"[1,2]"}"#,
            "{\"c\":\"\u{e9}\"}",
        ]
    );
    assert_eq!(summary.parse_errors, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclude_path_and_several_globs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    append(&dir.path().join("a.log"), "a\n");
    append(&dir.path().join("skip.log"), "skip\n");
    append(&dir.path().join("sub/b.txt"), "b\n");
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.paths.push(glob(dir.path(), "sub/*.txt"));
    config.exclude_path = vec![glob(dir.path(), "skip*")];
    let (running, received) = follow(config, &dir.path().join("pos"));
    wait_until("both files are read", || count(&received) == 2).await;
    let summary = running.stop().await;
    let mut got = messages(&received);
    got.sort();
    assert_eq!(got, ["a", "b"]);
    assert_eq!(summary.files, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_path_is_reported_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    // A symbolic link to itself cannot be examined (ELOOP), even by root.
    std::os::unix::fs::symlink(&log, &log).unwrap();
    let (running, received) = follow(
        fast_config(glob(dir.path(), "*.log")),
        &dir.path().join("pos"),
    );
    wait_until("the failure is counted", || {
        running.stats.file_errors() >= 1
    })
    .await;
    std::fs::remove_file(&log).unwrap();
    append(&log, "fixed\n");
    wait_until("the file is read at a later scan", || count(&received) == 1).await;
    running.stop().await;
    assert_eq!(messages(&received), ["fixed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_reached_through_two_paths_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, "one\n");
    std::fs::hard_link(&log, dir.path().join("b.log")).unwrap();
    std::os::unix::fs::symlink(&log, dir.path().join("c.log")).unwrap();
    let (running, received) = follow(
        fast_config(glob(dir.path(), "*.log")),
        &dir.path().join("pos"),
    );
    wait_until("the line arrives", || count(&received) == 1).await;
    wait_until("a re-scan happened", || running.stats.scans() >= 3).await;
    let summary = running.stop().await;
    assert_eq!(messages(&received), ["one"]);
    assert_eq!(summary.files, 1);
}
