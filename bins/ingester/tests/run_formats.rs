//! `logferry-ingester run` end to end, one object per log format: objects put into moto are
//! announced to SQS by real bucket notifications, read, parsed, and indexed into the bulk
//! server under the index of the template; the `s3:TestEvent`, an SNS-wrapped body and an
//! EventBridge body are handled; URL-encoded keys work; the queue ends empty; SIGTERM exits 0.

mod common;

use common::{Harness, Ingester, gzip, wait_for, workspace_file};
use serde_json::{Value, json};

const BUCKET: &str = "logs";
/// A bucket without notifications: its objects are announced by messages the test sends.
const MANUAL: &str = "manual";

/// One JSON-lines object as the shipper writes them (gzip, `time` member).
fn shipper_object() -> Vec<u8> {
    let mut text = String::new();
    for n in 0..10 {
        text.push_str(&format!(
            "{{\"time\":\"2024-05-02T10:00:{n:02}Z\",\"tag\":\"app.web\",\"message\":\"shipped {n}\",\"seq\":{n}}}\n"
        ));
    }
    gzip(text.as_bytes())
}

fn s3_record(bucket: &str, key_encoded: &str) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-05-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": key_encoded, "size": 1}
        }
    })
}

#[test]
fn every_format_is_indexed_from_bucket_notifications() {
    let h = Harness::new("run-formats");
    let queue = h.notifying_bucket(BUCKET, "formats");
    h.bucket(MANUAL);
    let config = h.config(
        "ingester.toml",
        &format!(
            "{}\n{}",
            h.sqs_toml(
                "logs",
                &queue,
                r#"log_format = "raw"
visibility_timeout = "30s"
key_regex_fields = '^(?P<kind>[a-z]+)/'
fields = { team = "platform" }
[[inputs.logs.format_by_key]]
regex = '^alb/'
log_format = "alb"
[[inputs.logs.format_by_key]]
regex = '^cloudtrail/'
log_format = "cloudtrail"
[[inputs.logs.format_by_key]]
regex = '^vpcflow/'
log_format = "vpcflow"
[[inputs.logs.format_by_key]]
regex = '^waf/'
log_format = "waf"
[[inputs.logs.format_by_key]]
regex = '^cloudwatch/'
log_format = "cloudwatch"
[[inputs.logs.format_by_key]]
regex = '^config/'
log_format = "config"
[[inputs.logs.format_by_key]]
regex = '^shipper/'
log_format = "json""#
            ),
            h.es_toml("es", "%{[kind]}-%Y.%m.%d", "")
        ),
    );

    let objects: Vec<(&str, Vec<u8>)> = vec![
        (
            "alb/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/05/01/app.log.gz",
            workspace_file("examples/samples/alb.log.gz"),
        ),
        (
            "cloudtrail/AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/trail.json.gz",
            workspace_file("examples/samples/cloudtrail.json.gz"),
        ),
        (
            "vpcflow/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/05/01/flow.log",
            workspace_file("examples/samples/vpcflow.log"),
        ),
        (
            "waf/2020/06/17/02/waf-firehose-1.gz",
            gzip(&workspace_file(
                "crates/parse/tests/fixtures/waf/rule-group.log",
            )),
        ),
        (
            "cloudwatch/2017/11/08/firehose-1",
            workspace_file("crates/parse/tests/fixtures/cloudwatch/firehose-concatenated.json"),
        ),
        (
            "config/AWSLogs/123456789012/Config/us-west-2/2014/3/7/ConfigSnapshot/snap.json.gz",
            gzip(&workspace_file(
                "crates/parse/tests/fixtures/config/snapshot.json",
            )),
        ),
        ("shipper/app.web/20240502_0.gz", shipper_object()),
        // A key S3 URL-encodes in its notification: spaces, `+`, `%`, unicode.
        ("shipper/dir with space/a+b %25 é ü.gz", shipper_object()),
    ];
    let ingester = Ingester::run(&config, "ingester.log");
    for (key, body) in &objects {
        h.put(BUCKET, key, body.clone());
    }
    // An SNS-wrapped S3 notification and an EventBridge event, for objects of a bucket that
    // sends none itself.
    h.put(MANUAL, "sns/one two.log", "via sns 1\nvia sns 2\n");
    h.put(MANUAL, "eventbridge/x.log", "via eventbridge\n");
    let inner = json!({"Records": [s3_record(MANUAL, "sns/one+two.log")]}).to_string();
    let sns = json!({
        "Type": "Notification",
        "MessageId": "5f7b1c2e-0000-0000-0000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:s3-events",
        "Subject": "Amazon S3 Notification",
        "Message": inner,
        "Timestamp": "2024-05-01T00:00:00.000Z",
        "SignatureVersion": "1",
    });
    h.send(&queue, &sns.to_string());
    let eventbridge = json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2024-05-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{MANUAL}")],
        "detail": {
            "version": "0",
            "bucket": {"name": MANUAL},
            "object": {"key": "eventbridge/x.log", "size": 16, "etag": "\"abc\""},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject"
        }
    });
    h.send(&queue, &eventbridge.to_string());

    // 200 ALB + 50 CloudTrail + 200 VPC + 1 WAF + 8 CloudWatch + 2 Config + 2 x 10 shipper
    // + 2 SNS + 1 EventBridge.
    let expected = 200 + 50 + 200 + 1 + 8 + 2 + 20 + 2 + 1;
    wait_for(
        "every event indexed and the queue empty",
        60,
        || h.bulk.total_count() >= expected && h.queue_total(&queue) == 0,
        || h.diag(&queue, &[&ingester]),
    );
    assert_eq!(
        h.bulk.total_count(),
        expected,
        "{}",
        h.diag(&queue, &[&ingester])
    );
    let docs = h.all_documents();
    let find = |index: &str, pred: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        docs.iter()
            .filter(|((i, _), d)| i == index && pred(d))
            .map(|(_, d)| d.clone())
            .collect()
    };
    let count = |prefix: &str| docs.keys().filter(|(i, _)| i.starts_with(prefix)).count();

    // ALB: every line, typed fields, key fields and static fields, origin.
    assert_eq!(count("alb-"), 200);
    assert_eq!(
        h.bulk.count("alb-2024.05.01"),
        200,
        "{:?}",
        h.bulk.indices()
    );
    let first = find("alb-2024.05.01", &|d| d["log_origin"]["line"] == 1);
    assert_eq!(first.len(), 1);
    let alb = &first[0];
    assert_eq!(alb["@timestamp"], "2024-05-01T01:00:00.312413Z");
    assert_eq!(alb["client_ip"], "138.166.90.10");
    assert_eq!(alb["elb_status_code"], 503);
    assert_eq!(alb["request_verb"], "DELETE");
    assert_eq!(alb["kind"], "alb");
    assert_eq!(alb["team"], "platform");
    assert_eq!(alb["log_origin"]["bucket"], BUCKET);
    assert_eq!(alb["log_origin"]["key"], objects[0].0);

    // CloudTrail: one document per record.
    assert_eq!(count("cloudtrail-"), 50);
    let trail = find("cloudtrail-2024.05.01", &|d| {
        d["eventTime"] == "2024-05-01T01:00:00Z"
    });
    assert_eq!(trail.len(), 1, "{:?}", h.bulk.indices());
    assert_eq!(trail[0]["eventName"], "AssumeRole");
    assert_eq!(trail[0]["userIdentity"]["type"], "AssumedRole");

    // VPC flow logs, plain text.
    assert_eq!(h.bulk.count("vpcflow-2024.05.01"), 200);
    let flow = find("vpcflow-2024.05.01", &|d| d["log_origin"]["line"] == 1);
    assert_eq!(flow[0]["srcaddr"], "129.47.108.22");
    assert_eq!(flow[0]["dstport"], 443);
    assert_eq!(flow[0]["action"], "REJECT");

    // WAF.
    let waf = h.bulk.documents("waf-2020.06.17");
    assert_eq!(waf.len(), 1, "{:?}", h.bulk.indices());
    let waf = waf.values().next().unwrap();
    assert_eq!(waf["action"], "BLOCK");
    assert_eq!(waf["terminatingRuleId"], "RG-Reference");

    // CloudWatch Logs via Firehose: log events, the control message skipped.
    assert_eq!(count("cloudwatch-"), 8);
    let cw = find("cloudwatch-2017.11.08", &|d| {
        d["message"] == "log message 1"
    });
    assert_eq!(cw.len(), 1, "{:?}", h.bulk.indices());
    assert_eq!(cw[0]["logGroup"], "log_group_name");
    assert_eq!(h.bulk.count("cloudwatch-2015.05.28"), 6);

    // Config snapshot: one document per configuration item.
    assert_eq!(count("config-"), 2);
    let volume = find("config-2014.03.07", &|d| d["resourceId"] == "vol-ce676ccc");
    assert_eq!(volume.len(), 1, "{:?}", h.bulk.indices());
    assert_eq!(volume[0]["resourceType"], "AWS::EC2::Volume");
    assert_eq!(volume[0]["configuration"]["volumeType"], "standard");

    // Shipper JSON lines, twice: under the plain key and the URL-encoded one.
    assert_eq!(h.bulk.count("shipper-2024.05.02"), 20);
    let encoded = find("shipper-2024.05.02", &|d| {
        d["log_origin"]["key"] == "shipper/dir with space/a+b %25 é ü.gz"
    });
    assert_eq!(encoded.len(), 10);
    let shipped = find("shipper-2024.05.02", &|d| d["seq"] == 3);
    assert_eq!(shipped.len(), 2);
    assert_eq!(shipped[0]["@timestamp"], "2024-05-02T10:00:03Z");
    assert_eq!(shipped[0]["message"], "shipped 3");

    // SNS and EventBridge bodies (raw format: timestamped when read).
    let sns_docs: Vec<_> = docs
        .iter()
        .filter(|((i, _), _)| i.starts_with("sns-"))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(sns_docs.len(), 2);
    assert!(
        sns_docs
            .iter()
            .all(|d| d["log_origin"]["key"] == "sns/one two.log")
    );
    let eb: Vec<_> = docs
        .iter()
        .filter(|((i, _), _)| i.starts_with("eventbridge-"))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(eb.len(), 1);
    assert_eq!(eb[0]["message"], "via eventbridge");

    // Ids are stable: a redelivered notification of the ALB object re-sends the same ids,
    // which the `create` op answers with 409s (delivered, nothing new).
    let items_before = h.bulk.items_received();
    let ids_before: Vec<String> = h.bulk.documents("alb-2024.05.01").into_keys().collect();
    let encoded_key = objects[0].0.replace('/', "%2F");
    h.send(
        &queue,
        &json!({"Records": [s3_record(BUCKET, &encoded_key)]}).to_string(),
    );
    wait_for(
        "the redelivered ALB object re-sent",
        30,
        || h.bulk.items_received() >= items_before + 200 && h.queue_total(&queue) == 0,
        || h.diag(&queue, &[&ingester]),
    );
    let ids_after: Vec<String> = h.bulk.documents("alb-2024.05.01").into_keys().collect();
    assert_eq!(ids_before, ids_after);
    assert_eq!(h.bulk.total_count(), expected);

    let (status, log) = ingester.terminate();
    assert!(status.success(), "exit {status:?}:\n{log}");
    // 8 objects announced by S3 (+ its TestEvent), SNS, EventBridge, the redelivery: all
    // received and deleted; nothing failed.
    let stopped = log
        .lines()
        .find(|l| l.contains("Input stopped."))
        .unwrap_or_else(|| panic!("no summary:\n{log}"));
    assert!(stopped.contains("received=12"), "{stopped}");
    assert!(stopped.contains("deleted=12"), "{stopped}");
    assert!(stopped.contains("failed=0"), "{stopped}");
    assert!(stopped.contains("parse_errors=0"), "{stopped}");
    assert_eq!(h.queue_total(&queue), 0);
}
