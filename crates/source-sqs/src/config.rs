//! Configuration: the `[aws]` table, `[inputs.X]` with `type = "sqs"`, and `[backfill]`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use logferry_core::{ByteSize, ConfigDuration, Timestamp};
use logferry_parse::{Format, FormatOptions};
use serde::Deserialize;

use crate::SourceError;

/// `[aws]`: settings shared by every AWS client (SQS, S3, STS). All optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region. Default: the AWS default chain (`AWS_REGION`, profile), else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL of every AWS service (moto, LocalStack, MinIO + ElasticMQ...).
    /// Default: AWS's.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Endpoint of S3 only (a VPC endpoint, say); overrides `endpoint` for S3.
    #[serde(default)]
    pub s3_endpoint: Option<String>,
    /// Endpoint of SQS only; overrides `endpoint` for SQS.
    #[serde(default)]
    pub sqs_endpoint: Option<String>,
    /// Endpoint of STS (for `role_arn`); overrides `endpoint` for STS.
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// Put the bucket in the URL path instead of the host name. Default: false.
    #[serde(default)]
    pub force_path_style: bool,
    /// Static access key id (with `aws_sec_key`), for tests. Default: the AWS default chain.
    #[serde(default)]
    pub aws_key_id: Option<String>,
    /// Static secret access key (with `aws_key_id`).
    #[serde(default)]
    pub aws_sec_key: Option<String>,
    /// Role to assume through STS on top of the static keys or the default chain.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Session name of the assumed role. Default: `logferry-<hostname>`.
    #[serde(default)]
    pub role_session_name: Option<String>,
    /// External id required by the role's trust policy.
    #[serde(default)]
    pub external_id: Option<String>,
}

impl AwsConfig {
    /// Checks the keys without any I/O.
    pub fn validate(&self) -> Result<(), SourceError> {
        if self.aws_key_id.is_some() != self.aws_sec_key.is_some() {
            return Err(SourceError::config(
                "aws.aws_key_id",
                "`aws_key_id` and `aws_sec_key` go together",
            ));
        }
        for (key, value) in [
            ("aws.endpoint", &self.endpoint),
            ("aws.s3_endpoint", &self.s3_endpoint),
            ("aws.sqs_endpoint", &self.sqs_endpoint),
            ("aws.sts_endpoint", &self.sts_endpoint),
        ] {
            if let Some(url) = value
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(SourceError::config(
                    key,
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
        }
        if self.external_id.is_some() && self.role_arn.is_none() {
            return Err(SourceError::config("aws.external_id", "needs `role_arn`"));
        }
        Ok(())
    }
}

/// `[[inputs.X.format_by_key]]`: a format for the objects whose key matches a regex.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FormatByKey {
    /// A regex searched in the key (`regex` crate syntax; anchor it with `^` if needed).
    pub regex: String,
    /// The format of the matching objects.
    pub log_format: String,
    /// Options of that format.
    #[serde(default)]
    pub format_options: BTreeMap<String, serde_json::Value>,
}

/// How objects are read and turned into events: shared by [`SqsInputConfig`] and
/// [`BackfillConfig`] (see their fields of the same names).
#[derive(Clone, Debug, PartialEq)]
pub struct ReaderConfig {
    /// Format of objects no `format_by_key` rule matches.
    pub log_format: Option<String>,
    /// Options of `log_format`.
    pub format_options: BTreeMap<String, serde_json::Value>,
    /// Per-key formats, first match wins.
    pub format_by_key: Vec<FormatByKey>,
    /// Regex over the key whose named captures become fields.
    pub key_regex_fields: Option<String>,
    /// Static fields.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Longest line (or document record) kept.
    pub max_line_size: ByteSize,
    /// Most decompressed bytes read from one object.
    pub max_object_size: ByteSize,
    /// Most events per batch.
    pub batch_size: usize,
    /// Member holding the event's origin; empty: none.
    pub origin_field: String,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            log_format: Some("raw".to_string()),
            format_options: BTreeMap::new(),
            format_by_key: Vec::new(),
            key_regex_fields: None,
            fields: BTreeMap::new(),
            max_line_size: default_max_line_size(),
            max_object_size: default_max_object_size(),
            batch_size: default_batch_size(),
            origin_field: default_origin_field(),
        }
    }
}

/// `[inputs.X]` with `type = "sqs"` (every key except `type` and `outputs`, which belong to
/// the ingester).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqsInputConfig {
    /// The queue's URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`).
    pub queue_url: String,
    /// A logferry-parse format name for objects no `format_by_key` rule matches. Required
    /// unless `format_by_key` is given.
    #[serde(default)]
    pub log_format: Option<String>,
    /// Options of `log_format` (values are strings, numbers or booleans).
    #[serde(default)]
    pub format_options: BTreeMap<String, serde_json::Value>,
    /// Formats chosen per object key, first match wins.
    #[serde(default)]
    pub format_by_key: Vec<FormatByKey>,
    /// Regex over the object key; its named captures are added to every event.
    #[serde(default)]
    pub key_regex_fields: Option<String>,
    /// Static fields added to every event, after `@timestamp`.
    #[serde(default)]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Messages whose objects are read at the same time. Default: 4.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Messages received and not yet deleted (read, or waiting for their acknowledgements).
    /// Default: 32.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Visibility timeout set on received messages and renewed while they are processed
    /// (every half of it). Default: 5m.
    #[serde(default = "default_visibility_timeout")]
    pub visibility_timeout: ConfigDuration,
    /// Long-polling wait of ReceiveMessage, at most 20s. Default: 20s.
    #[serde(default = "default_wait_time")]
    pub wait_time: ConfigDuration,
    /// Messages asked for per ReceiveMessage, 1 to 10. Default: 10.
    #[serde(default = "default_max_messages")]
    pub max_number_of_messages: usize,
    /// Longest line (or document record) kept; longer ones are dead-lettered. Default: 1MiB.
    #[serde(default = "default_max_line_size")]
    pub max_line_size: ByteSize,
    /// Most decompressed bytes read from one object. Default: 10GiB.
    #[serde(default = "default_max_object_size")]
    pub max_object_size: ByteSize,
    /// Most events per batch sent to the outputs. Default: 1000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Name of the member that holds each event's origin
    /// (`{"bucket","key","line","offset"}`); empty for none. Default: `log_origin`.
    #[serde(default = "default_origin_field")]
    pub origin_field: String,
}

/// `[backfill]`: defaults of `logferry-ingester backfill` (command-line flags override them).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackfillConfig {
    /// Bucket name, or `file://DIR` for the local-directory store.
    pub bucket: String,
    /// Only keys starting with this. Default: all.
    #[serde(default)]
    pub prefix: String,
    /// Only objects modified at or after this RFC 3339 time.
    #[serde(default)]
    pub since: Option<String>,
    /// Only objects modified before this RFC 3339 time.
    #[serde(default)]
    pub until: Option<String>,
    /// File holding the last fully processed key, to resume from. Default: none.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// Objects read at the same time. Default: 4.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Format of objects no `format_by_key` rule matches.
    #[serde(default)]
    pub log_format: Option<String>,
    /// Options of `log_format`.
    #[serde(default)]
    pub format_options: BTreeMap<String, serde_json::Value>,
    /// Formats chosen per object key.
    #[serde(default)]
    pub format_by_key: Vec<FormatByKey>,
    /// Regex over the key whose named captures become fields.
    #[serde(default)]
    pub key_regex_fields: Option<String>,
    /// Static fields.
    #[serde(default)]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Longest line kept. Default: 1MiB.
    #[serde(default = "default_max_line_size")]
    pub max_line_size: ByteSize,
    /// Most decompressed bytes per object. Default: 10GiB.
    #[serde(default = "default_max_object_size")]
    pub max_object_size: ByteSize,
    /// Most events per batch. Default: 1000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Origin member name; empty for none. Default: `log_origin`.
    #[serde(default = "default_origin_field")]
    pub origin_field: String,
}

/// Default of `workers`.
pub fn default_workers() -> usize {
    4
}
/// Default of `max_in_flight`.
pub fn default_max_in_flight() -> usize {
    32
}
/// Default of `visibility_timeout`.
pub fn default_visibility_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(300)
}
/// Default of `wait_time`.
pub fn default_wait_time() -> ConfigDuration {
    ConfigDuration::from_secs(20)
}
/// Default of `max_number_of_messages`.
pub fn default_max_messages() -> usize {
    10
}
/// Default of `max_line_size`.
pub fn default_max_line_size() -> ByteSize {
    ByteSize::new(1024 * 1024)
}
/// Default of `max_object_size`.
pub fn default_max_object_size() -> ByteSize {
    ByteSize::new(10 * 1024 * 1024 * 1024)
}
/// Default of `batch_size`.
pub fn default_batch_size() -> usize {
    1000
}
/// Default of `origin_field`.
pub fn default_origin_field() -> String {
    "log_origin".to_string()
}

impl SqsInputConfig {
    /// A configuration with every default and the given queue and format.
    pub fn new(queue_url: impl Into<String>, log_format: impl Into<String>) -> SqsInputConfig {
        SqsInputConfig {
            queue_url: queue_url.into(),
            log_format: Some(log_format.into()),
            format_options: BTreeMap::new(),
            format_by_key: Vec::new(),
            key_regex_fields: None,
            fields: BTreeMap::new(),
            workers: default_workers(),
            max_in_flight: default_max_in_flight(),
            visibility_timeout: default_visibility_timeout(),
            wait_time: default_wait_time(),
            max_number_of_messages: default_max_messages(),
            max_line_size: default_max_line_size(),
            max_object_size: default_max_object_size(),
            batch_size: default_batch_size(),
            origin_field: default_origin_field(),
        }
    }

    /// The object-reading part.
    pub fn reader_config(&self) -> ReaderConfig {
        ReaderConfig {
            log_format: self.log_format.clone(),
            format_options: self.format_options.clone(),
            format_by_key: self.format_by_key.clone(),
            key_regex_fields: self.key_regex_fields.clone(),
            fields: self.fields.clone(),
            max_line_size: self.max_line_size,
            max_object_size: self.max_object_size,
            batch_size: self.batch_size,
            origin_field: self.origin_field.clone(),
        }
    }

    /// Checks every key without any I/O (formats, regexes, ranges).
    pub fn validate(&self) -> Result<(), SourceError> {
        if !(self.queue_url.starts_with("http://") || self.queue_url.starts_with("https://")) {
            return Err(SourceError::config(
                "queue_url",
                format!("`{}` is not a queue URL", self.queue_url),
            ));
        }
        if self.workers == 0 {
            return Err(SourceError::config("workers", "must be at least 1"));
        }
        if self.max_in_flight < self.workers {
            return Err(SourceError::config(
                "max_in_flight",
                "must be at least `workers`",
            ));
        }
        let visibility = self.visibility_timeout.as_duration();
        if visibility < Duration::from_secs(2) || visibility > Duration::from_secs(12 * 3600) {
            return Err(SourceError::config(
                "visibility_timeout",
                "must be between 2s and 12h (SQS's maximum)",
            ));
        }
        if self.wait_time.as_duration() > Duration::from_secs(20) {
            return Err(SourceError::config("wait_time", "must be at most 20s"));
        }
        if !(1..=10).contains(&self.max_number_of_messages) {
            return Err(SourceError::config(
                "max_number_of_messages",
                "must be 1 to 10",
            ));
        }
        self.reader_config().validate()
    }
}

impl BackfillConfig {
    /// The object-reading part.
    pub fn reader_config(&self) -> ReaderConfig {
        ReaderConfig {
            log_format: self.log_format.clone(),
            format_options: self.format_options.clone(),
            format_by_key: self.format_by_key.clone(),
            key_regex_fields: self.key_regex_fields.clone(),
            fields: self.fields.clone(),
            max_line_size: self.max_line_size,
            max_object_size: self.max_object_size,
            batch_size: self.batch_size,
            origin_field: self.origin_field.clone(),
        }
    }

    /// `since` parsed.
    pub fn since(&self) -> Result<Option<Timestamp>, SourceError> {
        parse_time("backfill.since", self.since.as_deref())
    }

    /// `until` parsed.
    pub fn until(&self) -> Result<Option<Timestamp>, SourceError> {
        parse_time("backfill.until", self.until.as_deref())
    }

    /// Checks every key without any I/O.
    pub fn validate(&self) -> Result<(), SourceError> {
        if self.bucket.is_empty() {
            return Err(SourceError::config("backfill.bucket", "must not be empty"));
        }
        if self.workers == 0 {
            return Err(SourceError::config(
                "backfill.workers",
                "must be at least 1",
            ));
        }
        if let (Some(since), Some(until)) = (self.since()?, self.until()?)
            && since >= until
        {
            return Err(SourceError::config(
                "backfill.until",
                "must be after `since`",
            ));
        }
        self.reader_config().validate()
    }
}

fn parse_time(key: &str, value: Option<&str>) -> Result<Option<Timestamp>, SourceError> {
    value
        .map(|v| {
            Timestamp::parse_rfc3339(v)
                .ok_or_else(|| SourceError::config(key, format!("`{v}` is not an RFC 3339 time")))
        })
        .transpose()
}

/// Converts a `format_options` table (strings, numbers, booleans) to [`FormatOptions`].
pub(crate) fn format_options(
    key: &str,
    table: &BTreeMap<String, serde_json::Value>,
) -> Result<FormatOptions, SourceError> {
    let mut options = FormatOptions::new();
    for (name, value) in table {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(SourceError::config(
                    format!("{key}.{name}"),
                    "must be a string, a number or a boolean",
                ));
            }
        };
        options.set(name.clone(), text);
    }
    Ok(options)
}

impl ReaderConfig {
    /// Checks formats, options, regexes and limits.
    pub fn validate(&self) -> Result<(), SourceError> {
        if self.log_format.is_none() && self.format_by_key.is_empty() {
            return Err(SourceError::config(
                "log_format",
                "required unless `format_by_key` is given",
            ));
        }
        if let Some(name) = &self.log_format {
            let options = format_options("format_options", &self.format_options)?;
            Format::new(name, &options)
                .map_err(|e| SourceError::config("log_format", e.to_string()))?;
        } else if !self.format_options.is_empty() {
            return Err(SourceError::config("format_options", "needs `log_format`"));
        }
        for (i, rule) in self.format_by_key.iter().enumerate() {
            regex::Regex::new(&rule.regex).map_err(|e| {
                SourceError::config(format!("format_by_key[{i}].regex"), e.to_string())
            })?;
            let options = format_options(
                &format!("format_by_key[{i}].format_options"),
                &rule.format_options,
            )?;
            Format::new(&rule.log_format, &options).map_err(|e| {
                SourceError::config(format!("format_by_key[{i}].log_format"), e.to_string())
            })?;
        }
        if let Some(pattern) = &self.key_regex_fields {
            let regex = regex::Regex::new(pattern)
                .map_err(|e| SourceError::config("key_regex_fields", e.to_string()))?;
            if regex.capture_names().flatten().next().is_none() {
                return Err(SourceError::config(
                    "key_regex_fields",
                    "has no named capture group (`(?P<name>...)`)",
                ));
            }
        }
        for name in self.fields.keys() {
            if name.is_empty() || name == "@timestamp" {
                return Err(SourceError::config(
                    format!("fields.{name}"),
                    "is not a usable field name",
                ));
            }
        }
        if self.max_line_size.bytes() == 0 {
            return Err(SourceError::config(
                "max_line_size",
                "must be at least 1 byte",
            ));
        }
        if self.max_object_size.bytes() == 0 {
            return Err(SourceError::config(
                "max_object_size",
                "must be at least 1 byte",
            ));
        }
        if self.batch_size == 0 {
            return Err(SourceError::config("batch_size", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(extra: &str) -> Result<SqsInputConfig, toml::de::Error> {
        toml::from_str(&format!(
            "queue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n{extra}"
        ))
    }

    #[test]
    fn defaults_and_config_md_example() {
        let config = input(
            r#"
            log_format = "alb"
            format_options = {}
            key_regex_fields = '^(?P<environment>[^\-]+)-(?P<application>[^/\-]+)/'
            fields = { team = "web" }
            workers = 4
            visibility_timeout = "5m"
            [[format_by_key]]
            regex = 'AWSLogs/\d+/CloudTrail/'
            log_format = "cloudtrail"
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.max_in_flight, 32);
        assert_eq!(config.wait_time.as_duration(), Duration::from_secs(20));
        assert_eq!(config.max_line_size.bytes(), 1024 * 1024);
        assert_eq!(config.origin_field, "log_origin");
        assert_eq!(config.format_by_key[0].log_format, "cloudtrail");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(input("log_format = \"alb\"\nqueue = 1").is_err());
        assert!(input("[[format_by_key]]\nregex = 'x'\nlog_format = 'alb'\nextra = 1").is_err());
        assert!(toml::from_str::<AwsConfig>("regoin = 'x'").is_err());
    }

    #[test]
    fn validate_names_keys() {
        for (extra, key) in [
            ("", "log_format"),
            ("log_format = \"nope\"", "log_format"),
            (
                "log_format = \"json\"\nformat_options = { bogus = 1 }",
                "log_format",
            ),
            ("log_format = \"alb\"\nworkers = 0", "workers"),
            (
                "log_format = \"alb\"\nvisibility_timeout = \"1s\"",
                "visibility_timeout",
            ),
            ("log_format = \"alb\"\nwait_time = \"21s\"", "wait_time"),
            (
                "log_format = \"alb\"\nmax_number_of_messages = 11",
                "max_number_of_messages",
            ),
            (
                "log_format = \"alb\"\nkey_regex_fields = \"(\"",
                "key_regex_fields",
            ),
            (
                "log_format = \"alb\"\nkey_regex_fields = \"^a\"",
                "key_regex_fields",
            ),
            (
                "[[format_by_key]]\nregex = '('\nlog_format = 'alb'",
                "format_by_key[0].regex",
            ),
            (
                "[[format_by_key]]\nregex = 'x'\nlog_format = 'no'",
                "format_by_key[0].log_format",
            ),
            (
                "log_format = \"alb\"\nformat_options = { a = [1] }",
                "format_options.a",
            ),
        ] {
            let err = input(extra).unwrap().validate().unwrap_err();
            match err {
                SourceError::Config { key: k, .. } => assert_eq!(k, key, "{extra}"),
                other => panic!("{other}"),
            }
        }
        let bad_url: SqsInputConfig =
            toml::from_str("queue_url = \"q\"\nlog_format = \"alb\"").unwrap();
        assert!(
            bad_url
                .validate()
                .unwrap_err()
                .to_string()
                .contains("queue_url")
        );
    }

    #[test]
    fn aws_and_backfill() {
        let aws: AwsConfig = toml::from_str(
            "region = 'us-east-1'\nendpoint = 'http://127.0.0.1:5000'\nforce_path_style = true",
        )
        .unwrap();
        aws.validate().unwrap();
        let half: AwsConfig = toml::from_str("aws_key_id = 'a'").unwrap();
        assert!(
            half.validate()
                .unwrap_err()
                .to_string()
                .contains("aws.aws_key_id")
        );
        let backfill: BackfillConfig = toml::from_str(
            "bucket = 'file://b'\nlog_format = 'json'\nsince = '2024-01-01T00:00:00Z'\nuntil = '2023-01-01T00:00:00Z'",
        )
        .unwrap();
        assert!(
            backfill
                .validate()
                .unwrap_err()
                .to_string()
                .contains("backfill.until")
        );
    }
}
