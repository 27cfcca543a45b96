//! An S3 client for a [`MotoServer`] and the few S3 calls tests need to check their results.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

use crate::{MotoServer, TestkitError};

/// The region every client of the kit uses.
pub const TEST_REGION: &str = "us-east-1";

/// The static access key id of [`MotoServer::s3_client`] (moto accepts any key while IAM is
/// not enforced).
pub const TEST_ACCESS_KEY_ID: &str = "testing";

/// The secret of [`TEST_ACCESS_KEY_ID`].
pub const TEST_SECRET_ACCESS_KEY: &str = "testing";

fn s3_err<E>(operation: &'static str) -> impl FnOnce(E) -> TestkitError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |source| TestkitError::S3 {
        operation,
        source: Box::new(source),
    }
}

impl MotoServer {
    /// An S3 client for this server: static test credentials, path-style, `us-east-1`.
    /// While IAM is enforced, use [`MotoServer::s3_client_with_keys`] with a user's keys.
    pub fn s3_client(&self) -> Client {
        self.s3_client_with_keys(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    }

    /// An S3 client for this server signing with the given access key.
    pub fn s3_client_with_keys(&self, access_key_id: &str, secret_access_key: &str) -> Client {
        s3_client_at(self.endpoint(), access_key_id, secret_access_key)
    }

    /// Creates a bucket (in `us-east-1`).
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), TestkitError> {
        self.s3_client()
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(s3_err("CreateBucket"))?;
        Ok(())
    }

    /// Every key of `bucket` that starts with `prefix`, sorted.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, TestkitError> {
        let client = self.s3_client();
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(s3_err("ListObjectsV2"))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// The bytes of an object, as stored (a `.gz` object is returned compressed).
    pub async fn get_object_bytes(&self, bucket: &str, key: &str) -> Result<Vec<u8>, TestkitError> {
        let object = self
            .s3_client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_err("GetObject"))?;
        let data = object
            .body
            .collect()
            .await
            .map_err(s3_err("GetObject body"))?;
        Ok(data.into_bytes().to_vec())
    }
}

/// A path-style S3 client for a local `endpoint` in [`TEST_REGION`], signing with the given key.
pub(crate) fn s3_client_at(
    endpoint: String,
    access_key_id: &str,
    secret_access_key: &str,
) -> Client {
    let credentials = Credentials::new(
        access_key_id,
        secret_access_key,
        None,
        None,
        "logferry-testkit",
    );
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(TEST_REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .build();
    Client::from_conf(config)
}
