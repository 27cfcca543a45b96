//! The AWS SDK client of an [`S3Config`]: region, endpoint, and credentials (default chain,
//! static keys, or an STS assumed role on top of either).

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};

use crate::{S3Config, SinkError};

/// The region used when neither the configuration nor the AWS default chain names one
/// (fluent-plugin-s3's default).
const FALLBACK_REGION: &str = "us-east-1";

/// Builds the S3 client. Nothing is sent: credentials are resolved on the first request.
pub(crate) async fn s3_client(config: &S3Config) -> Result<aws_sdk_s3::Client, SinkError> {
    let region = match &config.region {
        Some(region) => Region::new(region.clone()),
        None => RegionProviderChain::default_provider()
            .or_else(FALLBACK_REGION)
            .region()
            .await
            .unwrap_or_else(|| Region::new(FALLBACK_REGION)),
    };
    let credentials = &config.credentials;
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region.clone());
    if let (Some(id), Some(secret)) = (&credentials.aws_key_id, &credentials.aws_sec_key) {
        loader = loader.credentials_provider(Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "logferry-config",
        ));
    }
    let sdk = loader.load().await;
    let mut s3 = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(config.force_path_style)
        // Checksums only where S3 requires them: S3-compatible stores (MinIO, Ceph, older
        // LocalStack) reject the streaming checksum trailers; TLS protects the bytes in transit.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    if let Some(endpoint) = &config.endpoint {
        s3 = s3.endpoint_url(endpoint);
    }
    if let Some(role_arn) = &credentials.role_arn {
        let base = sdk
            .credentials_provider()
            .ok_or_else(|| SinkError::Config {
                key: "credentials.role_arn",
                reason: "no base credentials to assume the role with".to_string(),
            })?;
        // The S3 `endpoint` is not STS's: STS gets its own, or the region's.
        let mut sts = sdk.to_builder();
        if let Some(url) = &credentials.sts_endpoint_url {
            sts.set_endpoint_url(Some(url.clone()));
        }
        let session_name = credentials
            .role_session_name
            .clone()
            .unwrap_or_else(default_session_name);
        let mut builder = AssumeRoleProvider::builder(role_arn.clone())
            .session_name(session_name)
            .region(region)
            .configure(&sts.build());
        if let Some(external_id) = &credentials.external_id {
            builder = builder.external_id(external_id.clone());
        }
        if let Some(seconds) = credentials.duration_seconds {
            builder = builder.session_length(Duration::from_secs(seconds));
        }
        s3 = s3.credentials_provider(builder.build_from_provider(base).await);
    }
    Ok(aws_sdk_s3::Client::from_conf(s3.build()))
}

/// `logferry-<hostname>`, cut to STS's limit of 64 characters of `[\w+=,.@-]`.
fn default_session_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let cleaned: String = format!("logferry-{host}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid() {
        let name = default_session_name();
        assert!(name.starts_with("logferry-"));
        assert!(name.len() <= 64);
    }
}
