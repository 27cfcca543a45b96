//! Acknowledgements: in-order commits, failures, backpressure.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use logferry_core::{AckStatus, ShutdownSignal};
use logferry_source_tail::{RunMode, TailBatch, TailError, TailSource};
use tokio::sync::mpsc;

async fn recv(rx: &mut mpsc::Receiver<TailBatch>) -> TailBatch {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a batch within the deadline")
        .expect("the source is running")
}

fn message(batch: &TailBatch) -> String {
    let v: serde_json::Value = serde_json::from_str(&batch.records[0].json).unwrap();
    v["message"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_out_of_order_commit_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, "l1\nl2\nl3\n");
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.batch_size = 1;
    let (tx, mut rx) = mpsc::channel(16);
    let running = start(config, &pos, HashMap::new(), RunMode::Follow, tx);
    let (b1, b2, b3) = (
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
    );
    assert_eq!(
        [message(&b1), message(&b2), message(&b3)],
        ["l1", "l2", "l3"]
    );
    assert_eq!(
        [
            b1.position.end_offset,
            b2.position.end_offset,
            b3.position.end_offset
        ],
        [3, 6, 9]
    );
    let stats = running.stats.clone();

    b3.ack.finish(AckStatus::Delivered);
    wait_until("the third ack is seen", || stats.batches_delivered() == 1).await;
    assert_eq!(
        stats.committed_bytes(),
        0,
        "a later batch does not commit before earlier ones"
    );
    b1.ack.finish(AckStatus::Delivered);
    wait_until("the first batch commits", || stats.committed_bytes() == 3).await;
    b2.ack.finish(AckStatus::Delivered);
    wait_until("everything commits", || stats.committed_bytes() == 9).await;
    running.stop().await;
    assert_eq!(pos_offset_of(&pos, &log), Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errored_ack_does_not_advance_and_the_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, "l1\nl2\nl3\n");
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.batch_size = 1;
    let (tx, mut rx) = mpsc::channel(16);
    let running = start(config, &pos, HashMap::new(), RunMode::Follow, tx);
    let stats = running.stats.clone();
    let (b1, b2, b3) = (
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
    );
    b1.ack.finish(AckStatus::Delivered);
    b2.ack.finish(AckStatus::Errored);
    b3.ack.finish(AckStatus::Delivered);
    wait_until("the failure is seen", || stats.batches_failed() == 1).await;
    assert_eq!(stats.committed_bytes(), 3);

    // The file is read again from the last committed offset.
    let again = recv(&mut rx).await;
    assert_eq!(message(&again), "l2");
    assert!(pos_offset_of(&pos, &log).is_none_or(|o| o <= 3));
    again.ack.finish(AckStatus::Delivered);
    let last = recv(&mut rx).await;
    assert_eq!(message(&last), "l3");
    last.ack.finish(AckStatus::Delivered);
    wait_until("everything commits", || stats.committed_bytes() == 9).await;
    running.stop().await;
    assert_eq!(pos_offset_of(&pos, &log), Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_mode_reports_an_undelivered_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, "l1\nl2\nl3\n");
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.batch_size = 1;
    let (tx, mut rx) = mpsc::channel::<TailBatch>(16);
    let source = TailSource::new("test", config, pos.clone(), HashMap::new()).unwrap();
    let consumer = tokio::spawn(async move {
        let mut n = 0;
        while let Some(batch) = rx.recv().await {
            n += 1;
            let status = if n == 2 {
                AckStatus::Rejected
            } else {
                AckStatus::Delivered
            };
            batch.ack.finish(status);
        }
    });
    let result = source
        .run(
            tx,
            ShutdownSignal::never(),
            RunMode::Once,
            Duration::from_secs(5),
        )
        .await;
    consumer.await.unwrap();
    match result {
        Err(TailError::Undelivered {
            path,
            end_offset,
            committed_offset,
            status,
        }) => {
            assert_eq!(path, log);
            assert_eq!((end_offset, committed_offset), (6, 3));
            assert_eq!(status, AckStatus::Rejected);
        }
        other => panic!("expected Undelivered, got {other:?}"),
    }
    assert_eq!(pos_offset_of(&pos, &log), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_receiver_gets_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, numbered("line", 0..3000));
    let mut config = fast_config(glob(dir.path(), "*.log"));
    config.batch_size = 10;
    let (tx, rx) = mpsc::channel(1);
    let source = TailSource::new("test", config, pos.clone(), HashMap::new()).unwrap();
    let stats = source.stats();
    let (received, consumer) = consume(rx, Duration::from_millis(1));
    let run = tokio::spawn(source.run(
        tx,
        ShutdownSignal::never(),
        RunMode::Once,
        Duration::from_secs(5),
    ));
    // The source cannot run far ahead of the receiver: at most the channel's one slot, the
    // batch being sent and the batch being consumed.
    wait_until("half is received", || count(&received) >= 1500).await;
    assert!(
        stats.lines() <= count(&received) as u64 + 30,
        "reading is held back"
    );
    let summary = run.await.unwrap().unwrap();
    consumer.await.unwrap();
    assert_eq!(summary.lines, 3000);
    assert_eq!(messages(&received), expected("line", 0..3000));
    assert_eq!(pos_offset_of(&pos, &log), Some(file_len(&log)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_acks_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let (log, pos) = (dir.path().join("a.log"), dir.path().join("pos"));
    append(&log, "l1\nl2\n");
    let config = fast_config(glob(dir.path(), "*.log"));
    let (tx, mut rx) = mpsc::channel(16);
    let running = start(config, &pos, HashMap::new(), RunMode::Follow, tx);
    let batch = recv(&mut rx).await;
    running.trigger.trigger();
    // The source is waiting for the ack: deliver it now; the checkpoint then covers it.
    batch.ack.finish(AckStatus::Delivered);
    let summary = running.handle.await.unwrap().unwrap();
    assert_eq!(summary.batches_delivered, 1);
    assert_eq!(pos_offset_of(&pos, &log), Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_receiver_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), "l1\n");
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let source = TailSource::new(
        "test",
        fast_config(glob(dir.path(), "*.log")),
        dir.path().join("pos"),
        HashMap::new(),
    )
    .unwrap();
    let result = source
        .run(tx, ShutdownSignal::never(), RunMode::Once, Duration::ZERO)
        .await;
    assert!(matches!(result, Err(TailError::OutputClosed)), "{result:?}");
}

#[test]
fn run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let source = TailSource::new(
        "test",
        fast_config(glob(dir.path(), "*.log")),
        dir.path().join("pos"),
        HashMap::new(),
    )
    .unwrap();
    let (tx, _rx) = mpsc::channel(1);
    let fut = source.run(tx, ShutdownSignal::never(), RunMode::Once, Duration::ZERO);
    assert_send(&fut);
}
