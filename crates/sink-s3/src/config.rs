//! `[outputs.X]` of `type = "s3"`: the S3 keys of the shipper's configuration.

use std::path::PathBuf;
use std::sync::Arc;

use logferry_core::ByteSize;
use serde::Deserialize;

use crate::encoding::{Encoding, StoreAs};
use crate::local::LocalStore;
use crate::s3::{MAX_PART_SIZE, MIN_PART_SIZE, S3Store, S3StoreOptions};
use crate::store::{ObjectStore, PutOptions};
use crate::template::{DEFAULT_KEY_FORMAT, DEFAULT_TIME_SLICE_FORMAT, KeyTemplate};
use crate::uploader::Uploader;
use crate::{SinkError, client};

/// The bucket prefix that selects the local-directory store.
pub const FILE_BUCKET_PREFIX: &str = "file://";

/// Known S3 storage classes.
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
    "FSX_OPENZFS",
];

/// The S3 output's options: every key of an `[outputs.X]` table with `type = "s3"` except
/// `type`, `match` and `buffer`. Names follow fluent-plugin-s3 (`docs/s3-output.md`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket name, or `file://DIR` for the local-directory store (relative to the
    /// working directory).
    pub bucket: String,
    /// AWS region. Default: the AWS default chain (`AWS_REGION`, profile), else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// `%{path}` of the key template, used verbatim. Default: empty.
    #[serde(default)]
    pub path: String,
    /// The object key template. Default: `%{path}%{time_slice}_%{index}.%{file_extension}`.
    #[serde(default = "default_s3_object_key_format")]
    pub s3_object_key_format: String,
    /// The `strftime` format of `%{time_slice}`. Default: `%Y%m%d%H`.
    #[serde(default = "default_time_slice_format")]
    pub time_slice_format: String,
    /// Object format: `gzip` (default), `zstd`, `json` or `text`.
    #[serde(default)]
    pub store_as: StoreAs,
    /// Render key times in UTC (true) or the local time zone (false). Default: false.
    #[serde(default)]
    pub utc: bool,
    /// S3 endpoint URL for MinIO, LocalStack, moto or a VPC endpoint. Default: AWS's.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Put the bucket in the URL path instead of the host name. Default: false.
    #[serde(default)]
    pub force_path_style: bool,
    /// Server-side encryption: `AES256`, `aws:kms` or `aws:kms:dsse`. Default: none.
    #[serde(default)]
    pub sse: Option<String>,
    /// KMS key id or ARN for `sse = "aws:kms"`. Default: the AWS managed key.
    #[serde(default)]
    pub ssekms_key_id: Option<String>,
    /// Storage class (`STANDARD_IA`, `INTELLIGENT_TIERING`, ...). Default: `STANDARD`.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// Credentials. Default: the AWS default chain.
    #[serde(default)]
    pub credentials: CredentialsConfig,
    /// Number of hex digits of `%{hex_random}`, 1 to 16. Default: 4.
    #[serde(default = "default_hex_random_length")]
    pub hex_random_length: usize,
    /// Format of `%{index}`: `%d`, `%x`, `%X`, zero-padded as `%04d`. Default: `%d`.
    #[serde(default = "default_index_format")]
    pub index_format: String,
    /// Compression level: gzip 1-9 (default 6), zstd 1-22 (default 3).
    #[serde(default)]
    pub compression_level: Option<i32>,
    /// Threads that compress one object (gzip in 1 MiB blocks, zstd with its workers); the
    /// object's bytes are the same for any number. Default: the number of CPUs, at most 4.
    #[serde(default)]
    pub compression_threads: Option<usize>,
    /// `Content-Encoding` to set on objects. Default: none (see `docs/s3-output.md`).
    #[serde(default)]
    pub content_encoding: Option<String>,
    /// Objects larger than this go up in a multipart upload. Default: 64MiB.
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold: ByteSize,
    /// Part size of multipart uploads, at least 5MiB. Default: 16MiB.
    #[serde(default = "default_multipart_chunk_size")]
    pub multipart_chunk_size: ByteSize,
}

/// `[outputs.X.credentials]`: static keys and/or a role to assume. All optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// Static access key id (with `aws_sec_key`). Default: the AWS default chain.
    #[serde(default)]
    pub aws_key_id: Option<String>,
    /// Static secret access key (with `aws_key_id`).
    #[serde(default)]
    pub aws_sec_key: Option<String>,
    /// Role to assume through STS with the static keys or the default chain.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Session name of the assumed role. Default: `logferry-<hostname>`.
    #[serde(default)]
    pub role_session_name: Option<String>,
    /// External id required by the role's trust policy.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Session length in seconds, 900 to 43200. Default: STS's (3600).
    #[serde(default)]
    pub duration_seconds: Option<u64>,
    /// STS endpoint URL for the assume-role call. Default: the region's STS endpoint.
    #[serde(default)]
    pub sts_endpoint_url: Option<String>,
}

/// Default of `s3_object_key_format`.
pub fn default_s3_object_key_format() -> String {
    DEFAULT_KEY_FORMAT.to_string()
}

/// Default of `time_slice_format`.
pub fn default_time_slice_format() -> String {
    DEFAULT_TIME_SLICE_FORMAT.to_string()
}

/// Default of `hex_random_length`.
pub fn default_hex_random_length() -> usize {
    4
}

/// Default of `index_format`.
pub fn default_index_format() -> String {
    "%d".to_string()
}

/// Default of `multipart_threshold`: 64MiB.
pub fn default_multipart_threshold() -> ByteSize {
    ByteSize::new(64 * 1024 * 1024)
}

/// Default of `multipart_chunk_size`: 16MiB.
pub fn default_multipart_chunk_size() -> ByteSize {
    ByteSize::new(16 * 1024 * 1024)
}

fn invalid(key: &'static str, reason: impl Into<String>) -> SinkError {
    SinkError::Config {
        key,
        reason: reason.into(),
    }
}

fn check_url(key: &'static str, url: &Option<String>) -> Result<(), SinkError> {
    match url {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => Err(invalid(
            key,
            format!("`{url}` is not an http:// or https:// URL"),
        )),
        _ => Ok(()),
    }
}

impl S3Config {
    /// A configuration with every option at its default.
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            region: None,
            path: String::new(),
            s3_object_key_format: default_s3_object_key_format(),
            time_slice_format: default_time_slice_format(),
            store_as: StoreAs::default(),
            utc: false,
            endpoint: None,
            force_path_style: false,
            sse: None,
            ssekms_key_id: None,
            storage_class: None,
            credentials: CredentialsConfig::default(),
            hex_random_length: default_hex_random_length(),
            index_format: default_index_format(),
            compression_level: None,
            compression_threads: None,
            content_encoding: None,
            multipart_threshold: default_multipart_threshold(),
            multipart_chunk_size: default_multipart_chunk_size(),
        }
    }

    /// The directory of a `file://DIR` bucket, `None` for an S3 bucket.
    pub fn local_dir(&self) -> Option<PathBuf> {
        self.bucket
            .strip_prefix(FILE_BUCKET_PREFIX)
            .map(PathBuf::from)
    }

    /// Checks every option without doing any I/O.
    pub fn validate(&self) -> Result<(), SinkError> {
        match self.local_dir() {
            Some(dir) if dir.as_os_str().is_empty() => {
                return Err(invalid(
                    "bucket",
                    "`file://` needs a directory: `file://DIR`",
                ));
            }
            Some(_) => {}
            None => {
                let b = &self.bucket;
                let ok_chars = b
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c));
                if b.len() < 3 || b.len() > 255 || !ok_chars {
                    return Err(invalid(
                        "bucket",
                        format!(
                            "`{b}` is not a bucket name (3-255 of a-z 0-9 . - _) nor file://DIR"
                        ),
                    ));
                }
            }
        }
        self.key_template()?;
        self.encoding()?;
        if self
            .compression_threads
            .is_some_and(|n| !(1..=64).contains(&n))
        {
            return Err(invalid("compression_threads", "must be between 1 and 64"));
        }
        check_url("endpoint", &self.endpoint)?;
        check_url(
            "credentials.sts_endpoint_url",
            &self.credentials.sts_endpoint_url,
        )?;
        if let Some(region) = &self.region
            && (region.is_empty()
                || !region
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        {
            return Err(invalid(
                "region",
                format!("`{region}` is not a region name"),
            ));
        }
        match self.sse.as_deref() {
            None | Some("AES256") => {
                if self.ssekms_key_id.is_some() {
                    return Err(invalid("ssekms_key_id", "needs `sse = \"aws:kms\"`"));
                }
            }
            Some("aws:kms" | "aws:kms:dsse") => {}
            Some(other) => {
                return Err(invalid(
                    "sse",
                    format!("`{other}` is not `AES256`, `aws:kms` or `aws:kms:dsse`"),
                ));
            }
        }
        if let Some(class) = &self.storage_class
            && !STORAGE_CLASSES.contains(&class.as_str())
        {
            return Err(invalid(
                "storage_class",
                format!("`{class}` is not one of {}", STORAGE_CLASSES.join(", ")),
            ));
        }
        let part = self.multipart_chunk_size.bytes();
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part) {
            return Err(invalid(
                "multipart_chunk_size",
                "must be between 5MiB and 5GiB",
            ));
        }
        if self.multipart_threshold.bytes() > MAX_PART_SIZE {
            return Err(invalid(
                "multipart_threshold",
                "must be at most 5GiB (S3's PutObject limit)",
            ));
        }
        self.credentials.validate()
    }

    /// The key template of this output.
    pub fn key_template(&self) -> Result<KeyTemplate, SinkError> {
        KeyTemplate::builder(self.s3_object_key_format.as_str())
            .path(self.path.as_str())
            .time_slice_format(self.time_slice_format.as_str())
            .index_format(self.index_format.as_str())
            .hex_random_length(self.hex_random_length)
            .utc(self.utc)
            .file_extension(self.store_as.file_extension())
            .build()
    }

    /// The encoding of this output.
    pub fn encoding(&self) -> Result<Encoding, SinkError> {
        Ok(Encoding::new(self.store_as, self.compression_level)?
            .with_threads(self.effective_compression_threads()))
    }

    /// `compression_threads`, or its default: the number of CPUs, at most 4.
    pub fn effective_compression_threads(&self) -> usize {
        self.compression_threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4)
        })
    }

    /// The per-object options of this output (content type and encoding).
    pub fn put_options(&self) -> PutOptions {
        let mut options = PutOptions::with_content_type(self.store_as.content_type());
        options.content_encoding = self.content_encoding.clone();
        options
    }

    /// The upload settings of an [`S3Store`] for this output.
    pub fn store_options(&self) -> S3StoreOptions {
        S3StoreOptions {
            sse: self.sse.clone(),
            ssekms_key_id: self.ssekms_key_id.clone(),
            storage_class: self.storage_class.clone(),
            multipart_threshold: self.multipart_threshold.bytes(),
            multipart_chunk_size: self.multipart_chunk_size.bytes(),
        }
    }

    /// Validates, then builds the object store: a [`LocalStore`] for `file://DIR`, else an
    /// [`S3Store`] with its AWS client (credentials are loaded lazily, on the first put).
    pub async fn build_store(&self) -> Result<Arc<dyn ObjectStore>, SinkError> {
        self.validate()?;
        if let Some(dir) = self.local_dir() {
            return Ok(Arc::new(LocalStore::new(dir)));
        }
        let client = client::s3_client(self).await?;
        Ok(Arc::new(S3Store::new(
            client,
            self.bucket.clone(),
            self.store_options(),
        )))
    }

    /// Builds the store, key template and encoding into an [`Uploader`].
    pub async fn build_uploader(&self) -> Result<Uploader, SinkError> {
        let store = self.build_store().await?;
        Ok(Uploader::new(store, self.key_template()?, self.encoding()?)
            .with_put_options(self.put_options()))
    }
}

impl CredentialsConfig {
    /// Checks the credentials options without doing any I/O.
    pub fn validate(&self) -> Result<(), SinkError> {
        match (&self.aws_key_id, &self.aws_sec_key) {
            (Some(_), None) => {
                return Err(invalid(
                    "credentials.aws_sec_key",
                    "is required with `aws_key_id`",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "credentials.aws_key_id",
                    "is required with `aws_sec_key`",
                ));
            }
            (Some(id), Some(secret)) if id.is_empty() || secret.is_empty() => {
                return Err(invalid("credentials.aws_key_id", "keys must not be empty"));
            }
            _ => {}
        }
        if self.role_arn.is_none() {
            let role_only = [
                (
                    "credentials.role_session_name",
                    self.role_session_name.is_some(),
                ),
                ("credentials.external_id", self.external_id.is_some()),
                (
                    "credentials.duration_seconds",
                    self.duration_seconds.is_some(),
                ),
                (
                    "credentials.sts_endpoint_url",
                    self.sts_endpoint_url.is_some(),
                ),
            ];
            if let Some((key, _)) = role_only.iter().find(|(_, set)| *set) {
                return Err(invalid(key, "is only used with `role_arn`"));
            }
        }
        if let Some(arn) = &self.role_arn
            && !(arn.starts_with("arn:") && arn.contains(":role/"))
        {
            return Err(invalid(
                "credentials.role_arn",
                format!("`{arn}` is not a role ARN"),
            ));
        }
        if let Some(name) = &self.role_session_name {
            let ok = (2..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"=,.@-_".contains(&c));
            if !ok {
                return Err(invalid(
                    "credentials.role_session_name",
                    format!("`{name}` is not 2-64 of [A-Za-z0-9=,.@_-]"),
                ));
            }
        }
        if let Some(seconds) = self.duration_seconds
            && !(900..=43_200).contains(&seconds)
        {
            return Err(invalid(
                "credentials.duration_seconds",
                "must be between 900 and 43200",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<S3Config, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn config_md_example_parses_and_validates() {
        let config = parse(
            r#"
            bucket = "20220117-logs"
            region = "us-east-1"
            path = "go-audit"
            s3_object_key_format = "%{path}/%Y/%m/%d/%H/%Y-%m-%d.%H/%{time_slice}_%{hms_slice}.%{file_extension}"
            time_slice_format = "%Y-%m-%d.%H.%M.%S"
            store_as = "gzip"
            utc = true
            endpoint = "http://127.0.0.1:9000"
            force_path_style = true
            sse = "aws:kms"
            ssekms_key_id = "alias/logs"
            storage_class = "STANDARD_IA"
            [credentials]
            aws_key_id = "AKIA"
            aws_sec_key = "secret"
            role_arn = "arn:aws:iam::123456789012:role/S3WriteSecurityData"
            role_session_name = "host-1"
            external_id = "x"
            duration_seconds = 3600
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.store_as, StoreAs::Gzip);
        assert_eq!(config.credentials.duration_seconds, Some(3600));
        assert_eq!(
            config.put_options().content_type.as_deref(),
            Some("application/x-gzip")
        );
    }

    #[test]
    fn defaults() {
        let config = parse(r#"bucket = "file://target/x""#).unwrap();
        assert_eq!(config, S3Config::new("file://target/x"));
        config.validate().unwrap();
        assert_eq!(config.local_dir(), Some(PathBuf::from("target/x")));
        assert_eq!(config.multipart_threshold.bytes(), 64 << 20);
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(parse("bucket = \"b\"\ns3_bucket = \"c\"").is_err());
        assert!(parse("bucket = \"b\"\n[credentials]\naws_key = \"c\"").is_err());
        assert!(parse("bucket = \"b\"\nstore_as = \"lzo\"").is_err());
    }

    #[test]
    fn invalid_values_name_their_key() {
        let key_of = |edit: &dyn Fn(&mut S3Config)| {
            let mut config = S3Config::new("logs-bucket");
            edit(&mut config);
            match config.validate() {
                Err(SinkError::Config { key, .. } | SinkError::Template { key, .. }) => key,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(key_of(&|c| c.bucket = "file://".into()), "bucket");
        assert_eq!(key_of(&|c| c.bucket = "a b".into()), "bucket");
        assert_eq!(
            key_of(&|c| c.s3_object_key_format = "%{nope}".into()),
            "s3_object_key_format"
        );
        assert_eq!(
            key_of(&|c| c.time_slice_format = "%Q".into()),
            "time_slice_format"
        );
        assert_eq!(key_of(&|c| c.index_format = "%s".into()), "index_format");
        assert_eq!(key_of(&|c| c.hex_random_length = 17), "hex_random_length");
        assert_eq!(
            key_of(&|c| c.compression_level = Some(12)),
            "compression_level"
        );
        assert_eq!(
            key_of(&|c| c.compression_threads = Some(0)),
            "compression_threads"
        );
        assert_eq!(
            key_of(&|c| c.endpoint = Some("localhost:9000".into())),
            "endpoint"
        );
        assert_eq!(key_of(&|c| c.sse = Some("aes".into())), "sse");
        assert_eq!(
            key_of(&|c| c.ssekms_key_id = Some("k".into())),
            "ssekms_key_id"
        );
        assert_eq!(
            key_of(&|c| c.storage_class = Some("CHEAP".into())),
            "storage_class"
        );
        assert_eq!(
            key_of(&|c| c.multipart_chunk_size = ByteSize::new(1024)),
            "multipart_chunk_size"
        );
        assert_eq!(key_of(&|c| c.region = Some("us east".into())), "region");
        assert_eq!(
            key_of(&|c| c.credentials.aws_key_id = Some("k".into())),
            "credentials.aws_sec_key"
        );
        assert_eq!(
            key_of(&|c| c.credentials.external_id = Some("x".into())),
            "credentials.external_id"
        );
        assert_eq!(
            key_of(&|c| c.credentials.role_arn = Some("role".into())),
            "credentials.role_arn"
        );
        assert_eq!(
            key_of(&|c| {
                c.credentials.role_arn = Some("arn:aws:iam::1:role/r".into());
                c.credentials.duration_seconds = Some(60);
            }),
            "credentials.duration_seconds"
        );
    }

    #[tokio::test]
    async fn file_buckets_build_a_local_store() {
        let store = S3Config::new("file://some/dir")
            .build_store()
            .await
            .unwrap();
        assert_eq!(store.location(), "file://some/dir");
    }
}
