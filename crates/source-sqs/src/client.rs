//! AWS SDK clients of an [`AwsConfig`]: region, endpoints, credentials (default chain, static
//! keys, or an STS assumed role on top of either).

use aws_config::meta::region::RegionProviderChain;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{Credentials, Region};

use crate::{AwsConfig, SourceError};

/// The region used when neither the configuration nor the AWS default chain names one.
const FALLBACK_REGION: &str = "us-east-1";

/// The S3 and SQS clients every input and backfill share. Nothing is sent when they are
/// built: credentials are resolved on the first request.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// S3 (GetObject, ListObjectsV2).
    pub s3: aws_sdk_s3::Client,
    /// SQS (ReceiveMessage, DeleteMessage, ChangeMessageVisibility, SendMessageBatch).
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Builds both clients from the `[aws]` table.
    pub async fn new(config: &AwsConfig) -> Result<AwsClients, SourceError> {
        config.validate()?;
        let sdk = sdk_config(config).await?;
        let mut s3 =
            aws_sdk_s3::config::Builder::from(&sdk).force_path_style(config.force_path_style);
        if let Some(url) = config.s3_endpoint.as_ref().or(config.endpoint.as_ref()) {
            s3 = s3.endpoint_url(url);
        }
        let mut sqs = aws_sdk_sqs::config::Builder::from(&sdk);
        if let Some(url) = config.sqs_endpoint.as_ref().or(config.endpoint.as_ref()) {
            sqs = sqs.endpoint_url(url);
        }
        Ok(AwsClients {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
        })
    }
}

async fn sdk_config(config: &AwsConfig) -> Result<SdkConfig, SourceError> {
    let region = match &config.region {
        Some(region) => Region::new(region.clone()),
        None => RegionProviderChain::default_provider()
            .or_else(FALLBACK_REGION)
            .region()
            .await
            .unwrap_or_else(|| Region::new(FALLBACK_REGION)),
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region.clone());
    if let (Some(id), Some(secret)) = (&config.aws_key_id, &config.aws_sec_key) {
        loader = loader.credentials_provider(Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "logferry-config",
        ));
    }
    let sdk = loader.load().await;
    let Some(role_arn) = &config.role_arn else {
        return Ok(sdk);
    };
    let base = sdk.credentials_provider().ok_or_else(|| {
        SourceError::config(
            "aws.role_arn",
            "no base credentials to assume the role with",
        )
    })?;
    let mut sts = sdk.to_builder();
    if let Some(url) = config.sts_endpoint.as_ref().or(config.endpoint.as_ref()) {
        sts.set_endpoint_url(Some(url.clone()));
    }
    let session_name = config
        .role_session_name
        .clone()
        .unwrap_or_else(default_session_name);
    let mut builder = AssumeRoleProvider::builder(role_arn.clone())
        .session_name(session_name)
        .region(region)
        .configure(&sts.build());
    if let Some(external_id) = &config.external_id {
        builder = builder.external_id(external_id.clone());
    }
    let provider = builder.build_from_provider(base).await;
    Ok(sdk
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build())
}

/// `logferry-<hostname>`, cut to STS's limit of 64 characters of `[\w+=,.@-]`.
fn default_session_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("logferry-{host}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid() {
        let name = default_session_name();
        assert!(name.starts_with("logferry-") && name.len() <= 64);
    }
}
