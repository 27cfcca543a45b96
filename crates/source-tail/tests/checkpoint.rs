//! Checkpoints: exact resumption after a restart or a crash, file identity, resume positions.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, numbered("a", 0..100));
    let complete = file_len(&log);
    append(&log, "part-");

    let config = fast_config(glob(dir.path(), "*.log"));
    let (running, received) = follow(config.clone(), &pos);
    wait_until("the lines arrive", || count(&received) == 100).await;
    wait_until("they are committed", || {
        running.stats.committed_bytes() == complete
    })
    .await;
    running.stop().await;
    assert_eq!(messages(&received), expected("a", 0..100));
    assert_eq!(
        pos_offset_of(&pos, &log),
        Some(complete),
        "the partial line is not committed"
    );

    append(&log, "ial\n");
    append(&log, numbered("b", 0..50));
    let (running, received) = follow(config, &pos);
    wait_until("the new lines arrive", || count(&received) == 51).await;
    running.stop().await;
    let mut want = vec!["part-ial".to_owned()];
    want.extend(expected("b", 0..50));
    assert_eq!(messages(&received), want);
    assert_eq!(pos_offset_of(&pos, &log), Some(file_len(&log)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_survives_an_abrupt_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, numbered("a", 0..500));
    let len = file_len(&log);
    let config = fast_config(glob(dir.path(), "*.log"));
    let (running, received) = follow(config.clone(), &pos);
    wait_until("the checkpoint file holds the end", || {
        pos_offset_of(&pos, &log) == Some(len)
    })
    .await;
    // Like kill -9: the run is abandoned without its final checkpoint write.
    running.handle.abort();
    assert!(running.handle.await.unwrap_err().is_cancelled());
    assert_eq!(count(&received), 500);

    append(&log, numbered("b", 0..20));
    let (running, received) = follow(config, &pos);
    wait_until("the new lines arrive", || count(&received) == 20).await;
    running.stop().await;
    assert_eq!(messages(&received), expected("b", 0..20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_inode_is_detected_by_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, numbered("old", 0..200));
    let ino = std::fs::metadata(&log).unwrap().ino();
    let config = fast_config(glob(dir.path(), "*.log"));
    let (result, recs) = once(config.clone(), &pos, HashMap::new()).await;
    result.unwrap();
    assert_eq!(recs.len(), 200);

    // Another file now has the same device and inode (here: rewritten in place while the
    // source was stopped), longer than the old checkpoint offset.
    std::fs::write(&log, numbered("new content ", 0..300)).unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().ino(), ino);
    let mut config = config;
    config.read_from_head = false;
    let (result, recs) = once(config, &pos, HashMap::new()).await;
    result.unwrap();
    let got: Vec<String> = recs.iter().map(Rec::message).collect();
    assert_eq!(got, expected("new content ", 0..300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_file_identity_grows_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, "hi\n");
    let config = fast_config(glob(dir.path(), "*.log"));
    let (result, recs) = once(config.clone(), &pos, HashMap::new()).await;
    result.unwrap();
    assert_eq!(recs.len(), 1);
    let text = std::fs::read_to_string(&pos).unwrap();
    assert!(text.contains("\"fingerprint_len\": 3"), "{text}");

    append(&log, numbered("more", 0..200));
    let (result, recs) = once(config.clone(), &pos, HashMap::new()).await;
    result.unwrap();
    let got: Vec<String> = recs.iter().map(Rec::message).collect();
    assert_eq!(got, expected("more", 0..200));
    let text = std::fs::read_to_string(&pos).unwrap();
    assert!(text.contains("\"fingerprint_len\": 1024"), "{text}");

    append(&log, "last\n");
    let (result, recs) = once(config, &pos, HashMap::new()).await;
    result.unwrap();
    assert_eq!(recs.iter().map(Rec::message).collect::<Vec<_>>(), ["last"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_positions_win_over_an_older_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, numbered("a", 0..10));
    let config = fast_config(glob(dir.path(), "*.log"));
    let (result, recs) = once(config.clone(), &pos, HashMap::new()).await;
    result.unwrap();
    let stream = recs[0].stream.clone();
    assert!(stream.starts_with("test:"), "{stream}");

    // The buffer stored a15..a19's predecessors durably, but the checkpoint was not written.
    append(&log, numbered("a", 10..20));
    let stored = numbered("a", 0..15).len() as u64;
    let resume = HashMap::from([
        (stream.clone(), stored),
        ("test:1:2:3:0000000000000000".to_owned(), 999),
        ("other:1:2:3:0000000000000000".to_owned(), 5),
        ("garbage".to_owned(), 7),
    ]);
    let (result, recs) = once(config.clone(), &pos, resume).await;
    result.unwrap();
    assert_eq!(
        recs.iter().map(Rec::message).collect::<Vec<_>>(),
        expected("a", 15..20)
    );
    assert!(
        recs.iter().all(|r| r.stream == stream),
        "the stream id is stable"
    );

    // An older resume position loses against the checkpoint.
    append(&log, numbered("a", 20..25));
    let resume = HashMap::from([(stream, 5)]);
    let (result, recs) = once(config, &pos, resume).await;
    result.unwrap();
    assert_eq!(
        recs.iter().map(Rec::message).collect::<Vec<_>>(),
        expected("a", 20..25)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_mode_reads_three_files_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let pos = dir.path().join("pos");
    let (a, b, c) = (
        dir.path().join("a.log"),
        dir.path().join("b.log"),
        dir.path().join("c.log"),
    );
    append(&a, numbered("a", 0..1000));
    append(&b, numbered("b", 0..10));
    append(&b, "b-partial");
    append(&c, "c0\r\n");
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.batch_size = 100;
    let (result, recs) = once(config, &pos, HashMap::new()).await;
    let summary = result.unwrap();
    assert_eq!(summary.lines, 1012);
    assert_eq!(summary.files, 3);
    assert_eq!(summary.batches, summary.batches_delivered);
    assert_eq!(summary.batches_failed, 0);
    let of = |prefix: &str| -> Vec<String> {
        recs.iter()
            .map(Rec::message)
            .filter(|m| m.starts_with(prefix))
            .collect()
    };
    assert_eq!(of("a"), expected("a", 0..1000));
    let mut want_b = expected("b", 0..10);
    want_b.push("b-partial".into());
    assert_eq!(of("b"), want_b);
    assert_eq!(of("c"), ["c0"]);
    let mut offsets = pos_offsets(&pos);
    offsets.sort();
    let want: Vec<(String, u64)> = [&a, &b, &c]
        .iter()
        .map(|p| (p.to_string_lossy().into_owned(), file_len(p)))
        .collect();
    assert_eq!(offsets, want);
}
