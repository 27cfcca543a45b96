//! Listing and backfill against moto_server and against a local-directory store.

mod common;

use std::time::Duration;

use common::{clients, gzip};
use logferry_core::{AckStatus, Timestamp, shutdown_pair};
use logferry_source_sqs::{
    Backfill, BackfillConfig, Checkpoint, Lister, ObjectBatch, enqueue, parse_notification,
};
use logferry_testkit::MotoServer;
use tokio::sync::mpsc;

fn backfill_config(bucket: &str, checkpoint: &std::path::Path) -> BackfillConfig {
    toml::from_str(&format!(
        "bucket = {bucket:?}\nprefix = \"logs/\"\nlog_format = \"raw\"\ncheckpoint = {:?}\nworkers = 3",
        checkpoint.display().to_string()
    ))
    .unwrap()
}

/// Runs a backfill, delivering every batch except those of `fail_key` (Errored).
async fn run(
    backfill: Backfill,
    fail_key: Option<&str>,
) -> (logferry_source_sqs::BackfillReport, Vec<String>) {
    let (tx, mut rx) = mpsc::channel::<ObjectBatch>(2);
    let (_trigger, signal) = shutdown_pair();
    let fail_key = fail_key.map(str::to_string);
    let collector = tokio::spawn(async move {
        let mut messages = Vec::new();
        while let Some(batch) = rx.recv().await {
            if Some(&batch.object.key) == fail_key.as_ref()
                && let Some(ack) = &batch.events.ack
            {
                ack.update(AckStatus::Errored);
            }
            for e in &batch.events.events {
                let v: serde_json::Value = serde_json::from_str(e.json()).unwrap();
                messages.push(v["message"].as_str().unwrap().to_string());
            }
        }
        messages
    });
    let report = backfill.run(tx, signal).await.unwrap();
    let mut messages = collector.await.unwrap();
    messages.sort();
    (report, messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_listing_filters_checkpoint_and_enqueue() {
    let moto = MotoServer::start().expect("moto_server (scripts/install-test-deps)");
    moto.create_bucket("bkt").await.unwrap();
    let s3 = moto.s3_client();
    let before = Timestamp::now().offset_seconds(-5).unwrap();
    for i in 0..7 {
        s3.put_object()
            .bucket("bkt")
            .key(format!("logs/{i:02} x.gz"))
            .body(gzip(format!("event {i}\n").as_bytes()).into())
            .send()
            .await
            .unwrap();
    }
    s3.put_object()
        .bucket("bkt")
        .key("other/z")
        .body(b"z".to_vec().into())
        .send()
        .await
        .unwrap();
    let clients = clients(&moto).await;

    // Pages of 3 with start_after: flat state, every key once, in order.
    let mut lister = Lister::new(Some(clients.s3.clone()), "bkt", "logs/").page_size(3);
    let mut keys = Vec::new();
    let mut pages = 0;
    while let Some(page) = lister.next_page().await.unwrap() {
        pages += 1;
        keys.extend(page.into_iter().map(|o| o.object.key));
    }
    assert_eq!(pages, 3);
    assert_eq!(
        keys,
        (0..7)
            .map(|i| format!("logs/{i:02} x.gz"))
            .collect::<Vec<_>>()
    );
    let mut resumed = Lister::new(Some(clients.s3.clone()), "bkt", "logs/")
        .start_after(Some("logs/04 x.gz".into()));
    assert_eq!(resumed.next_page().await.unwrap().unwrap().len(), 2);
    let mut since = Lister::new(Some(clients.s3.clone()), "bkt", "logs/")
        .modified_between(Timestamp::now().offset_seconds(3600), None);
    assert!(since.next_page().await.unwrap().is_none());
    let mut until =
        Lister::new(Some(clients.s3.clone()), "bkt", "logs/").modified_between(None, Some(before));
    assert!(until.next_page().await.unwrap().is_none());
    let mut window = Lister::new(Some(clients.s3.clone()), "bkt", "logs/")
        .modified_between(Some(before), Timestamp::now().offset_seconds(3600));
    assert_eq!(window.next_page().await.unwrap().unwrap().len(), 7);

    // Backfill: the object "03" is not delivered, so the checkpoint stops before it.
    let dir = tempfile::tempdir().unwrap();
    let cp_path = dir.path().join("bkt.checkpoint");
    let backfill = Backfill::new(backfill_config("bkt", &cp_path), Some(&clients)).unwrap();
    let (report, messages) = run(backfill, Some("logs/03 x.gz")).await;
    assert_eq!(messages.len(), 7);
    assert_eq!(report.failed_objects, 1);
    assert_eq!(report.checkpoint.as_deref(), Some("logs/02 x.gz"));
    assert_eq!(report.summary.objects_listed, 7);
    let checkpoint = Checkpoint::new(&cp_path, "bkt", "logs/");
    assert_eq!(checkpoint.load().unwrap().as_deref(), Some("logs/02 x.gz"));
    // Resume: from "03" on, everything delivered, checkpoint at the end.
    let backfill = Backfill::new(backfill_config("bkt", &cp_path), Some(&clients)).unwrap();
    let (report, messages) = run(backfill, None).await;
    assert_eq!(
        messages,
        (3..7).map(|i| format!("event {i}")).collect::<Vec<_>>()
    );
    assert!(report.complete);
    assert_eq!(checkpoint.load().unwrap().as_deref(), Some("logs/06 x.gz"));

    // --enqueue: notification-shaped messages, readable by the SQS source.
    let queue = moto.create_queue("backfill").await.unwrap();
    let mut lister = Lister::new(Some(clients.s3.clone()), "bkt", "logs/");
    let page = lister.next_page().await.unwrap().unwrap();
    let objects: Vec<_> = page.into_iter().map(|o| o.object).collect();
    assert_eq!(enqueue(&clients.sqs, &queue, &objects).await.unwrap(), 7);
    let bodies = moto.drain_queue(&queue, 1).await.unwrap();
    let mut keys: Vec<String> = bodies
        .iter()
        .map(|b| parse_notification("m", b).unwrap().objects.remove(0).key)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_directory_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    for (key, body) in [
        ("logs/2024/01/a.gz", gzip(b"a1\na2\n")),
        (
            "logs/2024/01/b.zst",
            zstd::encode_all(&b"b1\n"[..], 3).unwrap(),
        ),
        ("logs/2024/02/c.txt", b"c1\n".to_vec()),
        ("logs/.logferry-tmp-123", b"partial".to_vec()),
        ("elsewhere/d.txt", b"d1\n".to_vec()),
    ] {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let bucket = format!("file://{}", root.display());
    let cp_path = dir.path().join("local.checkpoint");
    let backfill = Backfill::new(backfill_config(&bucket, &cp_path), None).unwrap();
    let stats = backfill.stats();
    let (report, messages) = run(backfill, None).await;
    assert_eq!(messages, ["a1", "a2", "b1", "c1"]);
    assert_eq!(report.checkpoint.as_deref(), Some("logs/2024/02/c.txt"));
    assert_eq!(stats.objects(), 3);
    assert_eq!(stats.events(), 4);
    // Resumed after a full run: nothing left.
    let backfill = Backfill::new(backfill_config(&bucket, &cp_path), None).unwrap();
    let (report, messages) = tokio::time::timeout(Duration::from_secs(30), run(backfill, None))
        .await
        .unwrap();
    assert!(messages.is_empty());
    assert!(report.complete);
}

/// An output that acknowledges only once it holds events of many objects (as the
/// Elasticsearch output does when a bulk request fills from small objects) must not stall the
/// backfill: workers go on reading while earlier objects wait for their acknowledgements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_are_read_while_earlier_ones_wait_for_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    for i in 0..40 {
        std::fs::write(
            root.join(format!("logs/{i:03}.gz")),
            gzip(format!("m{i}\n").as_bytes()),
        )
        .unwrap();
    }
    let bucket = format!("file://{}", root.display());
    let backfill = Backfill::new(backfill_config(&bucket, &dir.path().join("cp")), None).unwrap();
    let (tx, mut rx) = mpsc::channel::<ObjectBatch>(2);
    let (_trigger, signal) = shutdown_pair();
    let collector = tokio::spawn(async move {
        // Holds every batch (and so its acknowledgement) until 20 objects are held.
        let mut held = Vec::new();
        let mut delivered = 0;
        while let Some(batch) = rx.recv().await {
            held.push(batch);
            if held.len() >= 20 {
                delivered += held.len();
                held.clear();
            }
        }
        delivered + held.len()
    });
    let report = tokio::time::timeout(Duration::from_secs(30), backfill.run(tx, signal))
        .await
        .expect("the backfill does not wait for each object's acknowledgement before the next")
        .unwrap();
    assert_eq!(collector.await.unwrap(), 40);
    assert!(report.complete);
    assert_eq!(report.failed_objects, 0);
    assert_eq!(report.checkpoint.as_deref(), Some("logs/039.gz"));
}
