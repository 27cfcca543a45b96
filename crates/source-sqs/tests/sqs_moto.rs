//! The SQS source against moto_server: real S3 -> SQS notifications, GetObject, deletes,
//! visibility timeouts.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{clients, gzip};
use logferry_core::{AckStatus, ShutdownTrigger, shutdown_pair};
use logferry_source_sqs::{
    FormatByKey, ObjectBatch, SourceError, SqsInputConfig, SqsSource, SqsStats, SqsSummary,
};
use logferry_testkit::{MotoServer, wait_until_async};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const ALB: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90"#;

const DEADLINE: Duration = Duration::from_secs(60);

/// Lines of the object that is streamed rather than downloaded whole.
const BIG_LINES: u64 = 20_000;

fn input(queue_url: &str, visibility: &str) -> SqsInputConfig {
    let mut config = SqsInputConfig::new(queue_url, "alb");
    config.visibility_timeout = visibility.parse().unwrap();
    config.wait_time = "1s".parse().unwrap();
    config.workers = 2;
    config.key_regex_fields = Some(r"^(?P<environment>[^\-/]+)-(?P<application>[^/]+)/".into());
    config
        .fields
        .insert("team".into(), serde_json::json!("web"));
    config.format_by_key = vec![
        FormatByKey {
            regex: r"AWSLogs/\d+/CloudTrail/".into(),
            log_format: "cloudtrail".into(),
            format_options: Default::default(),
        },
        FormatByKey {
            regex: r"^plain/".into(),
            log_format: "raw".into(),
            format_options: Default::default(),
        },
    ];
    config
}

/// A running source whose batches are collected; each batch is handed to `policy`, which
/// decides what to do with its acknowledgement.
struct Running {
    trigger: ShutdownTrigger,
    stats: SqsStats,
    source: JoinHandle<Result<SqsSummary, SourceError>>,
    collector: JoinHandle<()>,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
    failures: Arc<Mutex<Vec<String>>>,
}

type Policy = Box<dyn FnMut(ObjectBatch) + Send>;

fn start(source: SqsSource, mut policy: Policy) -> Running {
    let (trigger, signal) = shutdown_pair();
    let stats = source.stats();
    let (tx, mut rx) = mpsc::channel::<ObjectBatch>(4);
    let events = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let (ev, fl) = (Arc::clone(&events), Arc::clone(&failures));
    let collector = tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            for (event, origin) in batch.events.events.iter().zip(&batch.origins) {
                let mut value: serde_json::Value = serde_json::from_str(event.json()).unwrap();
                assert_eq!(value["log_origin"]["line"], origin.line);
                value["etag_seen"] = batch.object.etag.clone().into();
                ev.lock().unwrap().push(value);
            }
            for failure in &batch.failures {
                fl.lock()
                    .unwrap()
                    .push(failure.to_dead_letter_json(&batch.object));
            }
            policy(batch);
        }
    });
    let source = tokio::spawn(source.run(tx, signal));
    Running {
        trigger,
        stats,
        source,
        collector,
        events,
        failures,
    }
}

impl Running {
    async fn wait_for(&self, what: &str, cond: impl Fn(&SqsSummary) -> bool) {
        let stats = self.stats.clone();
        let ok = wait_until_async(Instant::now() + DEADLINE, || {
            let s = stats.summary();
            let r = cond(&s);
            async move { r }
        })
        .await;
        assert!(
            ok,
            "timed out waiting for {what}: {:?}",
            self.stats.summary()
        );
    }

    async fn stop(self) -> SqsSummary {
        self.trigger.trigger();
        let summary = self.source.await.unwrap().unwrap();
        self.collector.await.unwrap();
        summary
    }
}

fn deliver() -> Policy {
    Box::new(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_notifications_are_read_parsed_and_deleted() {
    let moto = MotoServer::start().expect("moto_server (scripts/install-test-deps)");
    moto.create_bucket("logs").await.unwrap();
    let queue = moto.create_queue("alb-logs").await.unwrap();
    moto.notify_queue_on_create("logs", &queue).await.unwrap();
    let s3 = moto.s3_client();
    let alb_key = "prod-shop/2024/01/17/alb log+1 (%).log.gz";
    let alb = gzip(format!("{ALB}\nbroken line\n{ALB}\n").as_bytes());
    let trail = br#"{"Records":[{"eventTime":"2014-03-06T21:22:54Z","eventName":"CreateUser"},{"eventTime":"2014-03-06T21:22:55Z","eventName":"DeleteUser"}]}"#;
    let mut corrupt = gzip(&b"ok line\n".repeat(50_000));
    let cut = corrupt.len() / 2;
    corrupt.truncate(cut);
    corrupt.extend_from_slice(&[0xde; 32]);
    // Objects up to 256 KiB are downloaded whole, larger ones stream: a big one goes the
    // streaming way (about 1.1 MiB, plain, so its Content-Length is that).
    let big: String = (1..=BIG_LINES)
        .map(|n| format!("line {n} of a plain object large enough to be streamed\n"))
        .collect();
    assert!(big.len() > 1024 * 1024);
    for (key, body) in [
        (alb_key, alb),
        (
            "AWSLogs/123456789012/CloudTrail/us-east-1/t.json.gz",
            gzip(trail),
        ),
        ("plain/app é.log", b"first\nsecond\n".to_vec()),
        ("plain/corrupt.gz", corrupt),
        ("plain/big.log", big.into_bytes()),
    ] {
        s3.put_object()
            .bucket("logs")
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    let clients = clients(&moto).await;
    let source = SqsSource::new("alb", input(&queue, "30s"), &clients).unwrap();
    assert!(source.check().await.is_ok());
    let running = start(source, deliver());
    running
        .wait_for("5 objects deleted + test event", |s| {
            s.messages_deleted == 6 && s.test_events == 1
        })
        .await;
    let counts = moto.queue_counts(&queue).await.unwrap();
    assert_eq!(counts.total(), 0, "{counts:?}");
    let events = running.events.lock().unwrap().clone();
    let failures = running.failures.lock().unwrap().clone();
    let summary = running.stop().await;
    assert_eq!(summary.objects, 4);
    assert_eq!(summary.object_errors, 1);
    assert_eq!(summary.parse_errors, 1);
    assert_eq!(summary.messages_failed, 0);

    let alb: Vec<_> = events
        .iter()
        .filter(|e| e["log_origin"]["key"] == alb_key)
        .collect();
    assert_eq!(alb.len(), 2);
    assert_eq!(alb[0]["environment"], "prod");
    assert_eq!(alb[0]["application"], "shop");
    assert_eq!(alb[0]["team"], "web");
    assert_eq!(alb[0]["elb_status_code"], 200);
    assert_eq!(alb[0]["log_origin"]["bucket"], "logs");
    assert_eq!(alb[1]["log_origin"]["line"], 3);
    assert_eq!(alb[1]["log_origin"]["offset"], ALB.len() + 1 + 12);
    assert!(
        alb[0]["etag_seen"]
            .as_str()
            .is_some_and(|e| !e.is_empty() && !e.contains('"'))
    );
    let trail: Vec<_> = events
        .iter()
        .filter(|e| e["eventName"].is_string())
        .collect();
    assert_eq!(trail.len(), 2);
    assert_eq!(trail[0]["@timestamp"], "2014-03-06T21:22:54Z");
    let plain: Vec<_> = events
        .iter()
        .filter(|e| e["log_origin"]["key"] == "plain/app é.log")
        .collect();
    assert_eq!(plain.len(), 2);
    assert_eq!(plain[1]["message"], "second");
    let big: Vec<_> = events
        .iter()
        .filter(|e| e["log_origin"]["key"] == "plain/big.log")
        .collect();
    assert_eq!(big.len() as u64, BIG_LINES);
    for (i, event) in big.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(event["log_origin"]["line"], n);
        assert_eq!(
            event["message"],
            format!("line {n} of a plain object large enough to be streamed")
        );
    }
    let corrupt_events = events
        .iter()
        .filter(|e| e["log_origin"]["key"] == "plain/corrupt.gz")
        .count();
    assert!(
        corrupt_events < 50_000,
        "the corrupt object cannot be read whole"
    );
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures
            .iter()
            .any(|f| f.contains(r#""raw":"broken line""#) && f.contains(r#""line":2"#))
    );
    assert!(
        failures
            .iter()
            .any(|f| f.contains("plain/corrupt.gz") && f.contains("corrupt"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_eventbridge_malformed_and_non_create_bodies() {
    let moto = MotoServer::start().expect("moto_server (scripts/install-test-deps)");
    moto.create_bucket("logs").await.unwrap();
    let queue = moto.create_queue("mixed").await.unwrap();
    let s3 = moto.s3_client();
    for key in ["plain/sns obj.log", "plain/eb+obj.log"] {
        s3.put_object()
            .bucket("logs")
            .key(key)
            .body(format!("{key}\n").into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let s3_event = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"logs"},"object":{"key":"plain/sns+obj.log"}}}]}"#;
    let sns = serde_json::json!({"Type": "Notification", "MessageId": "1", "Message": s3_event})
        .to_string();
    moto.send_message(&queue, &sns).await.unwrap();
    let eb = r#"{"version":"0","detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"logs"},"object":{"key":"plain/eb%2Bobj.log","size":17}}}"#;
    moto.send_message(&queue, eb).await.unwrap();
    moto.send_message(&queue, &eb.replace("Object Created", "Object Deleted"))
        .await
        .unwrap();
    let removed = r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"logs"},"object":{"key":"x"}}}]}"#;
    moto.send_message(&queue, removed).await.unwrap();
    let malformed = moto.send_message(&queue, "this is not json").await.unwrap();
    assert!(!malformed.is_empty());
    let clients = clients(&moto).await;
    let running = start(
        SqsSource::new("mixed", input(&queue, "30s"), &clients).unwrap(),
        deliver(),
    );
    running
        .wait_for("deletes", |s| {
            s.messages_deleted == 4 && s.malformed_messages == 1
        })
        .await;
    let messages: Vec<String> = running
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    let summary = running.stop().await;
    assert_eq!(summary.non_create_events, 2);
    let mut messages = messages;
    messages.sort();
    assert_eq!(messages, ["plain/eb+obj.log", "plain/sns obj.log"]);
    // The malformed message stays for the queue's redrive policy.
    assert_eq!(moto.queue_counts(&queue).await.unwrap().total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_deleted_only_once_acknowledged() {
    let moto = MotoServer::start().expect("moto_server (scripts/install-test-deps)");
    moto.create_bucket("logs").await.unwrap();
    let queue = moto.create_queue("acks").await.unwrap();
    moto.s3_client()
        .put_object()
        .bucket("logs")
        .key("plain/a.log")
        .body(b"one\ntwo\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"logs"},"object":{"key":"plain/a.log"}}}]}"#;
    moto.send_message(&queue, body).await.unwrap();
    let clients = clients(&moto).await;
    // First delivery: the output fails. Second: delivered.
    let mut attempt = 0;
    let policy: Policy = Box::new(move |batch: ObjectBatch| {
        attempt += 1;
        if attempt == 1
            && let Some(ack) = &batch.events.ack
        {
            ack.update(AckStatus::Errored);
        }
    });
    let running = start(
        SqsSource::new("acks", input(&queue, "2s"), &clients).unwrap(),
        policy,
    );
    running
        .wait_for("a failed message", |s| s.messages_failed == 1)
        .await;
    assert_eq!(running.stats.messages_deleted(), 0);
    assert_eq!(moto.queue_counts(&queue).await.unwrap().total(), 1);
    running
        .wait_for(
            "redelivery after the visibility timeout, then delete",
            |s| s.messages_received == 2 && s.messages_deleted == 1,
        )
        .await;
    assert_eq!(moto.queue_counts(&queue).await.unwrap().total(), 0);
    assert_eq!(
        running.events.lock().unwrap().len(),
        4,
        "two deliveries of two events"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_is_extended_while_the_output_holds_events() {
    let moto = MotoServer::start().expect("moto_server (scripts/install-test-deps)");
    moto.create_bucket("logs").await.unwrap();
    let queue = moto.create_queue("slow").await.unwrap();
    moto.s3_client()
        .put_object()
        .bucket("logs")
        .key("plain/slow.log")
        .body(b"x\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"logs"},"object":{"key":"plain/slow.log"}}}]}"#;
    moto.send_message(&queue, body).await.unwrap();
    let held: Arc<Mutex<Vec<ObjectBatch>>> = Arc::default();
    let keep = Arc::clone(&held);
    let policy: Policy = Box::new(move |batch| keep.lock().unwrap().push(batch));
    let clients = clients(&moto).await;
    let running = start(
        SqsSource::new("slow", input(&queue, "2s"), &clients).unwrap(),
        policy,
    );
    // Held for three visibility timeouts: extended every second, never redelivered.
    running
        .wait_for("visibility extensions", |s| s.visibility_extensions >= 6)
        .await;
    assert_eq!(running.stats.messages_received(), 1);
    assert_eq!(running.stats.messages_deleted(), 0);
    held.lock().unwrap().clear();
    running
        .wait_for("delete after the ack", |s| s.messages_deleted == 1)
        .await;
    assert_eq!(moto.queue_counts(&queue).await.unwrap().total(), 0);
    assert_eq!(running.stop().await.messages_received, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_unfinished_messages_in_the_queue() {
    let moto = MotoServer::start().expect("moto_server (scripts/install-test-deps)");
    moto.create_bucket("logs").await.unwrap();
    let queue = moto.create_queue("stop").await.unwrap();
    moto.s3_client()
        .put_object()
        .bucket("logs")
        .key("plain/s.log")
        .body(b"x\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"logs"},"object":{"key":"plain/s.log"}}}]}"#;
    moto.send_message(&queue, body).await.unwrap();
    let held: Arc<Mutex<Vec<ObjectBatch>>> = Arc::default();
    let keep = Arc::clone(&held);
    let policy: Policy = Box::new(move |batch| keep.lock().unwrap().push(batch));
    let clients = clients(&moto).await;
    let source = SqsSource::new("stop", input(&queue, "30s"), &clients)
        .unwrap()
        .shutdown_timeout(Duration::from_millis(500));
    let running = start(source, policy);
    running.wait_for("the batch", |s| s.events == 1).await;
    let started = Instant::now();
    let summary = running.stop().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(summary.messages_deleted, 0);
    assert_eq!(moto.queue_counts(&queue).await.unwrap().total(), 1);
    drop(held);
}
