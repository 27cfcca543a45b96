//! Helpers shared by the SQS source's integration tests.
#![allow(dead_code)] // each test binary uses a part

use std::io::Write;

use logferry_source_sqs::{AwsClients, AwsConfig};
use logferry_testkit::{MotoServer, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};

/// `data` gzip-compressed.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// S3 and SQS clients for `moto` with the test credentials.
pub(crate) async fn clients(moto: &MotoServer) -> AwsClients {
    clients_at(moto.endpoint()).await
}

/// S3 and SQS clients for a local endpoint with the test credentials, built the way the
/// ingester builds them.
pub(crate) async fn clients_at(endpoint: String) -> AwsClients {
    AwsClients::new(&AwsConfig {
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        force_path_style: true,
        aws_key_id: Some(TEST_ACCESS_KEY_ID.into()),
        aws_sec_key: Some(TEST_SECRET_ACCESS_KEY.into()),
        ..AwsConfig::default()
    })
    .await
    .unwrap()
}
