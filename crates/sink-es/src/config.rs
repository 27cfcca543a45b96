//! `[outputs.X]` of `type = "elasticsearch"` and `type = "ndjson"`, and `[dead_letter]`.

use std::path::PathBuf;
use std::time::Duration;

use logferry_core::{ByteSize, ConfigDuration};
use serde::Deserialize;

use crate::EsError;
use crate::id::IdMode;
use crate::template::IndexTemplate;

/// One `[outputs.X]` table of the ingester, chosen by its `type`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputConfig {
    /// `type = "elasticsearch"` (or `"opensearch"`): bulk requests to a cluster.
    #[serde(alias = "opensearch")]
    Elasticsearch(Box<EsConfig>),
    /// `type = "ndjson"`: one document per line to stdout or a file.
    Ndjson(NdjsonConfig),
}

impl OutputConfig {
    /// Checks every value without doing any I/O.
    pub fn validate(&self) -> Result<(), EsError> {
        match self {
            OutputConfig::Elasticsearch(config) => config.validate(),
            OutputConfig::Ndjson(config) => config.validate(),
        }
    }
}

/// The bulk operation of every document (`op_type`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OpType {
    /// `create`: a document whose `_id` exists is answered 409 and counts as delivered, so a
    /// replay adds no duplicates. Required for data streams. The default.
    #[default]
    Create,
    /// `index`: overwrite a document with the same `_id`.
    Index,
}

impl OpType {
    /// The action name in a bulk body.
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Create => "create",
            OpType::Index => "index",
        }
    }
}

/// Compression of bulk request bodies (`compression`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip with `Content-Encoding: gzip` (the default).
    #[default]
    Gzip,
    /// Plain NDJSON.
    None,
}

/// `auth = { type = ... }`. Its `Debug` output hides passwords, keys and secrets (it is what
/// `check` prints).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// `Authorization: ApiKey <key>`; `key` is the `encoded` value Elasticsearch returns
    /// (base64 of `id:api_key`).
    ApiKey {
        /// The encoded API key.
        key: String,
    },
    /// AWS Signature Version 4, for Amazon OpenSearch Service and OpenSearch Serverless.
    AwsSigv4 {
        /// The region of the domain. Default: the AWS default chain (`AWS_REGION`, profile).
        #[serde(default)]
        region: Option<String>,
        /// `es` (OpenSearch Service domains, the default) or `aoss` (OpenSearch Serverless).
        #[serde(default = "default_sigv4_service")]
        service: String,
        /// Static access key id (with `aws_sec_key`). Default: the AWS default chain.
        #[serde(default)]
        aws_key_id: Option<String>,
        /// Static secret access key (with `aws_key_id`).
        #[serde(default)]
        aws_sec_key: Option<String>,
    },
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HIDDEN: &str = "(redacted)";
        match self {
            AuthConfig::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &HIDDEN)
                .finish(),
            AuthConfig::ApiKey { .. } => f.debug_struct("ApiKey").field("key", &HIDDEN).finish(),
            AuthConfig::AwsSigv4 {
                region,
                service,
                aws_key_id,
                aws_sec_key,
            } => f
                .debug_struct("AwsSigv4")
                .field("region", region)
                .field("service", service)
                .field("aws_key_id", aws_key_id)
                .field("aws_sec_key", &aws_sec_key.as_ref().map(|_| HIDDEN))
                .finish(),
        }
    }
}

/// Default SigV4 service name: `es`.
pub fn default_sigv4_service() -> String {
    "es".to_string()
}

/// `[outputs.X.tls]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of CA certificates trusted in addition to the system's. Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Verify the server's certificate and name. Default: true. `false` is for tests and
    /// self-signed clusters only: anyone on the path can then read and change the traffic.
    #[serde(default = "default_true")]
    pub verify_certificate: bool,
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig {
            ca_file: None,
            verify_certificate: true,
        }
    }
}

fn default_true() -> bool {
    true
}

/// The Elasticsearch/OpenSearch output: every key of an `[outputs.X]` table with
/// `type = "elasticsearch"` except `type`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EsConfig {
    /// Base URLs of the cluster's nodes (`https://search.example.com:9200`); requests rotate
    /// over them and move to the next one after a connection error.
    pub hosts: Vec<String>,
    /// Index name template (see [`IndexTemplate`]). Default: `logferry-%Y.%m.%d`.
    #[serde(default = "default_index")]
    pub index: String,
    /// Document ids: `position` (default), `content` or `none` (see [`IdMode`]).
    #[serde(default)]
    pub id: IdMode,
    /// `create` (default) or `index` (see [`OpType`]).
    #[serde(default)]
    pub op_type: OpType,
    /// Authentication. Default: none.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// TLS options for `https://` hosts.
    #[serde(default)]
    pub tls: TlsConfig,
    /// `gzip` (default) or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// gzip level, 1 (fastest, the default) to 9.
    #[serde(default = "default_compression_level")]
    pub compression_level: u32,
    /// Most documents in one bulk request. Default: 2000.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: usize,
    /// Most bytes of one bulk request before compression. Default: 2MiB.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: ByteSize,
    /// Longest time a document waits for its batch to fill. Default: 1s.
    #[serde(default = "default_batch_timeout")]
    pub batch_timeout: ConfigDuration,
    /// Bulk requests in flight at once. Default: 4.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Time allowed for one request and its answer. Default: 60s.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: ConfigDuration,
    /// First delay before a retry; doubles per attempt, with jitter. Default: 500ms.
    #[serde(default = "default_retry_initial_backoff")]
    pub retry_initial_backoff: ConfigDuration,
    /// Longest delay between retries. Default: 60s.
    #[serde(default = "default_retry_max_backoff")]
    pub retry_max_backoff: ConfigDuration,
    /// Retries of a document before it is given up (its acknowledgement then reports
    /// `Errored`, so the SQS message reappears later). Default: unlimited.
    #[serde(default)]
    pub retry_max_times: Option<u32>,
}

/// Default of `index`.
pub fn default_index() -> String {
    "logferry-%Y.%m.%d".to_string()
}

/// Default of `compression_level`: 1.
pub fn default_compression_level() -> u32 {
    1
}

/// Default of `batch_max_events`: 2000 (Filebeat sends 1600 per request).
pub fn default_batch_max_events() -> usize {
    2000
}

/// Default of `batch_max_bytes`: 2MiB. With `concurrency` 4 this keeps the output's memory
/// (documents waiting and in flight) around 12 MiB.
pub fn default_batch_max_bytes() -> ByteSize {
    ByteSize::new(2 * 1024 * 1024)
}

/// Default of `batch_timeout`: 1s.
pub fn default_batch_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(1)
}

/// Default of `concurrency`: 4.
pub fn default_concurrency() -> usize {
    4
}

/// Default of `request_timeout`: 60s.
pub fn default_request_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(60)
}

/// Default of `retry_initial_backoff`: 500ms.
pub fn default_retry_initial_backoff() -> ConfigDuration {
    ConfigDuration::new(Duration::from_millis(500))
}

/// Default of `retry_max_backoff`: 60s.
pub fn default_retry_max_backoff() -> ConfigDuration {
    ConfigDuration::from_secs(60)
}

/// Largest `batch_max_bytes`: Elasticsearch's default `http.max_content_length`.
const MAX_BATCH_BYTES: u64 = 100 * 1024 * 1024;

fn invalid(key: &'static str, reason: impl Into<String>) -> EsError {
    EsError::Config {
        key,
        reason: reason.into(),
    }
}

impl EsConfig {
    /// A configuration for `hosts` with every other option at its default.
    pub fn new(hosts: Vec<String>) -> EsConfig {
        EsConfig {
            hosts,
            index: default_index(),
            id: IdMode::default(),
            op_type: OpType::default(),
            auth: None,
            tls: TlsConfig::default(),
            compression: Compression::default(),
            compression_level: default_compression_level(),
            batch_max_events: default_batch_max_events(),
            batch_max_bytes: default_batch_max_bytes(),
            batch_timeout: default_batch_timeout(),
            concurrency: default_concurrency(),
            request_timeout: default_request_timeout(),
            retry_initial_backoff: default_retry_initial_backoff(),
            retry_max_backoff: default_retry_max_backoff(),
            retry_max_times: None,
        }
    }

    /// Reads the files the configuration names (`tls.ca_file`) as starting the output will,
    /// so that `check` and start-up validation catch an unusable one; the error names the key
    /// and the file. [`EsConfig::validate`] does no I/O.
    pub fn check_files(&self) -> Result<(), EsError> {
        if self.tls.ca_file.is_none() {
            return Ok(());
        }
        match crate::tls::client_config(&self.tls, false) {
            Ok(_) => Ok(()),
            Err(EsError::Tls { reason }) => Err(invalid("tls.ca_file", reason)),
            Err(other) => Err(other),
        }
    }

    /// Checks every value without doing any I/O; errors name the key.
    pub fn validate(&self) -> Result<(), EsError> {
        if self.hosts.is_empty() {
            return Err(invalid("hosts", "at least one host URL is required"));
        }
        for host in &self.hosts {
            check_host(host)?;
        }
        IndexTemplate::parse(&self.index)?;
        if self.batch_max_events == 0 {
            return Err(invalid("batch_max_events", "must be at least 1"));
        }
        let bytes = self.batch_max_bytes.bytes();
        if !(1024..=MAX_BATCH_BYTES).contains(&bytes) {
            return Err(invalid(
                "batch_max_bytes",
                "must be between 1KiB and 100MiB",
            ));
        }
        if self.batch_timeout.as_duration().is_zero() {
            return Err(invalid("batch_timeout", "must be more than 0s"));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err(invalid("concurrency", "must be between 1 and 256"));
        }
        if !(1..=9).contains(&self.compression_level) {
            return Err(invalid("compression_level", "must be between 1 and 9"));
        }
        if self.request_timeout.as_duration().is_zero() {
            return Err(invalid("request_timeout", "must be more than 0s"));
        }
        if self.retry_initial_backoff.as_duration().is_zero() {
            return Err(invalid("retry_initial_backoff", "must be more than 0s"));
        }
        if self.retry_max_backoff < self.retry_initial_backoff {
            return Err(invalid(
                "retry_max_backoff",
                "must not be shorter than retry_initial_backoff",
            ));
        }
        match &self.auth {
            Some(AuthConfig::Basic { user, .. }) if user.is_empty() => {
                Err(invalid("auth.user", "must not be empty"))
            }
            Some(AuthConfig::ApiKey { key }) if key.trim().is_empty() => {
                Err(invalid("auth.key", "must not be empty"))
            }
            Some(AuthConfig::AwsSigv4 {
                service,
                aws_key_id,
                aws_sec_key,
                region,
            }) => {
                if !matches!(service.as_str(), "es" | "aoss") {
                    return Err(invalid(
                        "auth.service",
                        format!("`{service}` is neither `es` nor `aoss`"),
                    ));
                }
                if aws_key_id.is_some() != aws_sec_key.is_some() {
                    return Err(invalid(
                        "auth.aws_key_id",
                        "aws_key_id and aws_sec_key go together",
                    ));
                }
                if region.as_deref().is_some_and(str::is_empty) {
                    return Err(invalid("auth.region", "must not be empty"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn check_host(host: &str) -> Result<(), EsError> {
    let uri: http::Uri = host
        .parse()
        .map_err(|e| invalid("hosts", format!("`{host}` is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(invalid(
                "hosts",
                format!("`{host}` is not an http:// or https:// URL"),
            ));
        }
    }
    if uri.authority().is_none() {
        return Err(invalid("hosts", format!("`{host}` has no host name")));
    }
    if uri.query().is_some() {
        return Err(invalid("hosts", format!("`{host}` must not have a query")));
    }
    Ok(())
}

/// `type = "ndjson"`: every document on its own line.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NdjsonConfig {
    /// `-` for standard output (the default), else a file appended to.
    #[serde(default = "default_ndjson_path")]
    pub path: String,
}

/// Default of an NDJSON output's `path`: `-` (stdout).
pub fn default_ndjson_path() -> String {
    "-".to_string()
}

impl NdjsonConfig {
    /// Checks the path is not empty.
    pub fn validate(&self) -> Result<(), EsError> {
        if self.path.is_empty() {
            return Err(invalid("path", "must be `-` (stdout) or a file path"));
        }
        Ok(())
    }
}

/// `[dead_letter]`: where rejected events go.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// The NDJSON file dead letters are appended to.
    pub path: PathBuf,
}

impl DeadLetterConfig {
    /// Checks the path is not empty.
    pub fn validate(&self) -> Result<(), EsError> {
        if self.path.as_os_str().is_empty() {
            return Err(invalid("dead_letter.path", "must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_table_with_defaults() {
        let config: OutputConfig = toml::from_str(
            r#"
            type = "elasticsearch"
            hosts = ["https://search.example.com:9200"]
            index = "alb-%Y.%m.%d"
            id = "position"
            op_type = "create"
            auth = { type = "basic", user = "elastic", password = "secret" }
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        let OutputConfig::Elasticsearch(es) = config else {
            panic!("not elasticsearch")
        };
        assert_eq!(es.batch_max_events, 2000);
        assert_eq!(es.batch_max_bytes.bytes(), 2 << 20);
        assert_eq!(es.compression, Compression::Gzip);
        assert_eq!(es.concurrency, 4);
        assert_eq!(es.retry_max_times, None);
        assert!(es.tls.verify_certificate);
        assert_eq!(
            es.auth,
            Some(AuthConfig::Basic {
                user: "elastic".into(),
                password: "secret".into()
            })
        );
        let ndjson: OutputConfig = toml::from_str("type = \"ndjson\"").unwrap();
        assert_eq!(
            ndjson,
            OutputConfig::Ndjson(NdjsonConfig { path: "-".into() })
        );
        let sigv4: OutputConfig = toml::from_str(
            "type = \"opensearch\"\nhosts = [\"https://x.es.amazonaws.com\"]\nauth = { type = \"aws_sigv4\", region = \"eu-west-1\" }",
        )
        .unwrap();
        sigv4.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(
            toml::from_str::<OutputConfig>("type = \"elasticsearch\"\nhosts = []\nbulk = 1")
                .is_err()
        );
        assert!(toml::from_str::<OutputConfig>("type = \"ndjson\"\nfile = \"x\"").is_err());
        assert!(toml::from_str::<OutputConfig>("type = \"kafka\"").is_err());
        assert!(toml::from_str::<EsConfig>("hosts = [\"http://a\"]\nauth = { type = \"basic\", user = \"u\", password = \"p\", x = 1 }").is_err());
        assert!(toml::from_str::<EsConfig>("hosts = [\"http://a\"]\nid = \"line\"").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let key = |config: &EsConfig| match config.validate() {
            Err(EsError::Config { key, .. }) => key,
            Err(EsError::Template { .. }) => "index",
            other => panic!("{other:?}"),
        };
        let base = EsConfig::new(vec!["http://127.0.0.1:9200".into()]);
        base.validate().unwrap();
        let mut c = base.clone();
        c.hosts.clear();
        assert_eq!(key(&c), "hosts");
        c.hosts = vec!["ftp://x".into()];
        assert_eq!(key(&c), "hosts");
        c.hosts = vec!["http://x:9200/?a=b".into()];
        assert_eq!(key(&c), "hosts");
        let mut c = base.clone();
        c.index = "x-%Q".into();
        assert_eq!(key(&c), "index");
        let mut c = base.clone();
        c.batch_max_events = 0;
        assert_eq!(key(&c), "batch_max_events");
        let mut c = base.clone();
        c.batch_max_bytes = ByteSize::new(10);
        assert_eq!(key(&c), "batch_max_bytes");
        let mut c = base.clone();
        c.concurrency = 0;
        assert_eq!(key(&c), "concurrency");
        let mut c = base.clone();
        c.compression_level = 10;
        assert_eq!(key(&c), "compression_level");
        let mut c = base.clone();
        c.retry_max_backoff = ConfigDuration::new(Duration::from_millis(1));
        assert_eq!(key(&c), "retry_max_backoff");
        let mut c = base.clone();
        c.auth = Some(AuthConfig::AwsSigv4 {
            region: None,
            service: "s3".into(),
            aws_key_id: None,
            aws_sec_key: None,
        });
        assert_eq!(key(&c), "auth.service");
        c.auth = Some(AuthConfig::AwsSigv4 {
            region: None,
            service: "aoss".into(),
            aws_key_id: Some("a".into()),
            aws_sec_key: None,
        });
        assert_eq!(key(&c), "auth.aws_key_id");
        c.auth = Some(AuthConfig::ApiKey { key: " ".into() });
        assert_eq!(key(&c), "auth.key");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let shown = [
            AuthConfig::Basic {
                user: "elastic".into(),
                password: "hunter2".into(),
            },
            AuthConfig::ApiKey {
                key: "c2VjcmV0".into(),
            },
            AuthConfig::AwsSigv4 {
                region: None,
                service: "es".into(),
                aws_key_id: Some("AKIA".into()),
                aws_sec_key: Some("wJalr".into()),
            },
        ]
        .map(|a| format!("{a:?}"));
        for (text, secret) in shown.iter().zip(["hunter2", "c2VjcmV0", "wJalr"]) {
            assert!(!text.contains(secret), "{text}");
            assert!(text.contains("(redacted)"), "{text}");
        }
        assert!(shown[0].contains("elastic"));
    }
}
