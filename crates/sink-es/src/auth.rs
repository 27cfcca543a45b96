//! Request authentication: a fixed `Authorization` header (basic, API key) or AWS SigV4.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use http::HeaderValue;

use crate::EsError;
use crate::config::AuthConfig;

/// Credentials are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How requests are authenticated.
#[derive(Debug)]
pub(crate) enum Auth {
    None,
    Header(HeaderValue),
    SigV4(SigV4),
}

/// Signs requests with credentials from the AWS default chain (or static keys), cached until
/// shortly before they expire.
#[derive(Debug)]
pub(crate) struct SigV4 {
    region: String,
    service: String,
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
}

impl Auth {
    pub(crate) async fn build(config: Option<&AuthConfig>) -> Result<Auth, EsError> {
        let secret = |text: String, key| {
            HeaderValue::from_str(&text)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| EsError::Config {
                    key,
                    reason: "contains characters not allowed in a header".into(),
                })
        };
        Ok(match config {
            None => Auth::None,
            Some(AuthConfig::Basic { user, password }) => {
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Auth::Header(secret(format!("Basic {encoded}"), "auth.password")?)
            }
            Some(AuthConfig::ApiKey { key }) => {
                Auth::Header(secret(format!("ApiKey {}", key.trim()), "auth.key")?)
            }
            Some(AuthConfig::AwsSigv4 {
                region,
                service,
                aws_key_id,
                aws_sec_key,
            }) => {
                let region = match region {
                    Some(region) => region.clone(),
                    None => RegionProviderChain::default_provider()
                        .region()
                        .await
                        .map(|r| r.to_string())
                        .ok_or_else(|| EsError::Config {
                            key: "auth.region",
                            reason: "no region configured and none found in the AWS default chain"
                                .into(),
                        })?,
                };
                let provider = match (aws_key_id, aws_sec_key) {
                    (Some(id), Some(secret)) => SharedCredentialsProvider::new(Credentials::new(
                        id.clone(),
                        secret.clone(),
                        None,
                        None,
                        "logferry-config",
                    )),
                    _ => {
                        let sdk = aws_config::defaults(BehaviorVersion::latest())
                            .region(aws_config::Region::new(region.clone()))
                            .load()
                            .await;
                        sdk.credentials_provider().ok_or_else(|| EsError::Config {
                            key: "auth",
                            reason: "the AWS default chain has no credentials provider".into(),
                        })?
                    }
                };
                Auth::SigV4(SigV4 {
                    region,
                    service: service.clone(),
                    provider,
                    cached: Mutex::new(None),
                })
            }
        })
    }

    /// Adds the authentication headers to a request whose body is `body`.
    pub(crate) async fn apply(
        &self,
        request: &mut http::Request<http_body_util::Full<bytes::Bytes>>,
        body: &[u8],
    ) -> Result<(), EsError> {
        match self {
            Auth::None => Ok(()),
            Auth::Header(value) => {
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value.clone());
                Ok(())
            }
            Auth::SigV4(signer) => signer.sign(request, body, SystemTime::now()).await,
        }
    }
}

impl SigV4 {
    async fn credentials(&self) -> Result<Credentials, EsError> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_MARGIN)
        };
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(cached) = cached.filter(fresh) {
            return Ok(cached);
        }
        let credentials =
            self.provider
                .provide_credentials()
                .await
                .map_err(|e| EsError::Credentials {
                    source: Box::new(e),
                })?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(credentials.clone());
        Ok(credentials)
    }

    pub(crate) async fn sign(
        &self,
        request: &mut http::Request<http_body_util::Full<bytes::Bytes>>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), EsError> {
        let identity: Identity = self.credentials().await?.into();
        sign_request(request, body, &identity, &self.region, &self.service, time)
    }
}

/// Signs `request` (its headers must already hold `host`) for `service` in `region` at `time`,
/// with an `x-amz-content-sha256` header as OpenSearch Serverless requires.
pub fn sign_request<B>(
    request: &mut http::Request<B>,
    body: &[u8],
    identity: &Identity,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), EsError> {
    let signing_error = |reason: String| EsError::Signing { reason };
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| signing_error(e.to_string()))?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| signing_error(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
