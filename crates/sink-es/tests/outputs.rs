//! The NDJSON output, and SigV4-signed requests (recomputed with aws-sigv4) against the testkit
//! bulk server.

mod common;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use common::{acked, events};
use logferry_core::{AckStatus, Timestamp};
use logferry_sink_es::{AuthConfig, EsConfig, NdjsonConfig, OutputConfig, sign_request};
use logferry_testkit::BulkServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_file_output_writes_each_document_once_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/events.ndjson");
    let config: OutputConfig =
        toml::from_str(&format!("type = \"ndjson\"\npath = \"{}\"", path.display())).unwrap();
    let OutputConfig::Ndjson(config) = config else {
        panic!("ndjson expected")
    };
    let sink = config.build("file", None).unwrap();
    let (mut batch, ack) = events("n", 0, 100);
    batch[3].json = "{\"multi\":\n\"line\"}".into();
    let expected: Vec<String> = batch.iter().map(|e| e.json.replace('\n', " ")).collect();
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    let stats = sink.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.delivered, 100);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    // Appends on restart.
    let sink = NdjsonConfig {
        path: path.display().to_string(),
    }
    .build("file", None)
    .unwrap();
    let (batch, ack) = events("n", 100, 1);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    sink.shutdown(Duration::from_secs(5)).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 101);
}

fn parse_amz_date(text: &str) -> SystemTime {
    let n = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap();
    let ts = Timestamp::from_civil(
        i64::from(n(0..4)),
        n(4..6),
        n(6..8),
        n(9..11),
        n(11..13),
        n(13..15),
        0,
    )
    .unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(ts.unix_seconds() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_requests_carry_a_verifiable_signature() {
    let server = BulkServer::start().unwrap();
    let mut config = EsConfig::new(vec![server.url()]);
    config.index = "signed".into();
    config.auth = Some(AuthConfig::AwsSigv4 {
        region: Some("eu-west-1".into()),
        service: "es".into(),
        aws_key_id: Some("AKIDEXAMPLE".into()),
        aws_sec_key: Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
    });
    let sink = config.build("es", None).await.unwrap();
    let (batch, ack) = events("sig", 0, 10);
    sink.send(batch).await.unwrap();
    assert_eq!(acked(ack).await, AckStatus::Delivered);
    sink.shutdown(Duration::from_secs(5)).await;
    let request = server.requests().into_iter().find(|r| r.is_bulk()).unwrap();
    let authorization = request.header("authorization").unwrap().to_string();
    let date = request.header("x-amz-date").unwrap().to_string();
    assert_eq!(date.len(), 16);
    assert!(date.ends_with('Z') && date.as_bytes()[8] == b'T');
    let scope = format!(
        "Credential=AKIDEXAMPLE/{}/eu-west-1/es/aws4_request",
        &date[..8]
    );
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 "),
        "{authorization}"
    );
    assert!(authorization.contains(&scope), "{authorization}");
    assert!(
        authorization.contains(
            "SignedHeaders=content-encoding;content-type;host;x-amz-content-sha256;x-amz-date"
        ),
        "{authorization}"
    );
    let content_sha = request.header("x-amz-content-sha256").unwrap();
    assert_eq!(content_sha.len(), 64);

    // Recompute the signature of the request as received: same method, URI, signed headers,
    // body and time.
    let mut replay = http::Request::post(format!("{}{}", server.url(), request.path))
        .body(())
        .unwrap();
    for name in ["host", "content-type", "content-encoding"] {
        replay
            .headers_mut()
            .insert(name, request.header(name).unwrap().parse().unwrap());
    }
    let identity: Identity = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "test",
    )
    .into();
    sign_request(
        &mut replay,
        &request.body,
        &identity,
        "eu-west-1",
        "es",
        parse_amz_date(&date),
    )
    .unwrap();
    assert_eq!(
        replay.headers()["authorization"].to_str().unwrap(),
        authorization
    );
    assert_eq!(
        replay.headers()["x-amz-content-sha256"].to_str().unwrap(),
        content_sha
    );
}
