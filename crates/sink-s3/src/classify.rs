//! Sorting AWS SDK errors into retryable and permanent [`StoreError`]s.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::{StoreError, StoreErrorKind};

/// The kind of an S3 error code, when the code alone decides it.
fn kind_of_code(code: &str) -> Option<StoreErrorKind> {
    Some(match code {
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "RequestThrottled"
        | "RequestLimitExceeded"
        | "TooManyRequests"
        | "TooManyRequestsException"
        | "ProvisionedThroughputExceededException"
        | "BandwidthLimitExceeded" => StoreErrorKind::Throttled,
        "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => StoreErrorKind::Server,
        "RequestTimeout" | "RequestTimeoutException" | "RequestTimeTooSkewed" => {
            StoreErrorKind::Timeout
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => StoreErrorKind::Credentials,
        "AccessDenied"
        | "AccessDeniedException"
        | "AllAccessDisabled"
        | "AccountProblem"
        | "InvalidAccessKeyId"
        | "InvalidClientTokenId"
        | "InvalidToken"
        | "SignatureDoesNotMatch"
        | "InvalidSecurity"
        | "UnauthorizedAccess"
        | "KMS.AccessDeniedException"
        | "KMS.DisabledException"
        | "KMS.KMSInvalidStateException"
        | "KMS.NotFoundException" => StoreErrorKind::AccessDenied,
        "NoSuchBucket" => StoreErrorKind::NoSuchBucket,
        "InvalidRequest"
        | "InvalidArgument"
        | "InvalidBucketName"
        | "KeyTooLongError"
        | "EntityTooLarge"
        | "EntityTooSmall"
        | "InvalidPart"
        | "InvalidPartOrder"
        | "NoSuchUpload"
        | "MalformedXML"
        | "InvalidStorageClass"
        | "InvalidEncryptionAlgorithmError"
        | "InvalidDigest"
        | "BadDigest"
        | "MissingContentLength"
        | "MethodNotAllowed"
        | "PermanentRedirect"
        | "AuthorizationHeaderMalformed"
        | "IncorrectEndpoint" => StoreErrorKind::InvalidRequest,
        _ => return None,
    })
}

/// The kind of an HTTP status with no known error code.
fn kind_of_status(status: u16) -> StoreErrorKind {
    match status {
        429 => StoreErrorKind::Throttled,
        408 => StoreErrorKind::Timeout,
        401 | 403 => StoreErrorKind::AccessDenied,
        s if s >= 500 => StoreErrorKind::Server,
        s if s >= 400 => StoreErrorKind::InvalidRequest,
        _ => StoreErrorKind::Connection,
    }
}

/// Whether a credentials provider error is somewhere in the chain of `err`.
fn credentials_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut next: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        next = current.source();
    }
    None
}

/// Classifies a failed SDK call of `operation` on `key`, keeping the SDK error as the source.
pub(crate) fn classify<E>(
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    operation: &'static str,
    location: &str,
    key: &str,
) -> StoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&err).to_string();
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string);
    let kind = if credentials_error(&err).is_some() {
        StoreErrorKind::Credentials
    } else {
        match &err {
            SdkError::ServiceError(_) => code
                .as_deref()
                .and_then(kind_of_code)
                .unwrap_or_else(|| status.map_or(StoreErrorKind::Connection, kind_of_status)),
            SdkError::TimeoutError(_) => StoreErrorKind::Timeout,
            SdkError::DispatchFailure(failure) if failure.is_timeout() => StoreErrorKind::Timeout,
            SdkError::DispatchFailure(failure) if failure.is_user() => {
                StoreErrorKind::InvalidRequest
            }
            SdkError::DispatchFailure(_) => StoreErrorKind::Connection,
            SdkError::ResponseError(_) => match status {
                Some(status) if (400..500).contains(&status) && status != 408 && status != 429 => {
                    StoreErrorKind::InvalidRequest
                }
                _ => StoreErrorKind::Connection,
            },
            SdkError::ConstructionFailure(_) => StoreErrorKind::InvalidRequest,
            _ => StoreErrorKind::Connection,
        }
    };
    StoreError::new(kind, operation, location, key, detail)
        .with_code(code.as_deref(), status)
        .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        assert_eq!(kind_of_code("SlowDown"), Some(StoreErrorKind::Throttled));
        assert_eq!(
            kind_of_code("AccessDenied"),
            Some(StoreErrorKind::AccessDenied)
        );
        assert_eq!(
            kind_of_code("NoSuchBucket"),
            Some(StoreErrorKind::NoSuchBucket)
        );
        assert_eq!(
            kind_of_code("InvalidRequest"),
            Some(StoreErrorKind::InvalidRequest)
        );
        assert_eq!(kind_of_code("Whatever"), None);
        assert!(kind_of_status(503).is_retryable());
        assert!(kind_of_status(500).is_retryable());
        assert!(kind_of_status(429).is_retryable());
        assert!(!kind_of_status(403).is_retryable());
        assert!(!kind_of_status(400).is_retryable());
    }
}
