//! The shipper's configuration file: TOML with named sources and outputs (see
//! `docs/configuration.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use logferry_buffer::BufferConfig;
use logferry_core::ConfigDuration;
use logferry_sink_s3::S3Config;
use logferry_source_syslog::{SyslogConfig, SyslogError};
use logferry_source_tail::{TailConfig, TailError};
use serde::Deserialize;

use crate::matcher::TagPattern;
use logferry_core::{ConfigError, interpolate_config, read_config, unknown_field};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipperConfig {
    /// Home of checkpoints and buffers that are not given a path of their own.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How long a stop (SIGTERM, SIGINT) may take to flush before exiting.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: ConfigDuration,
    /// Sources by id.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Outputs by id.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputConfig>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/logferry")
}

fn default_shutdown_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(30)
}

/// A source: `type = "tail"` or `type = "syslog"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    /// Tails files (fluentd's in_tail).
    Tail(TailConfig),
    /// Receives syslog over UDP or TCP (fluentd's in_syslog).
    Syslog(SyslogConfig),
}

/// An output: `type = "s3"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OutputConfig {
    /// Uploads chunks to S3 or a `file://` directory.
    S3(S3OutputConfig),
}

/// How a record is written as a line of an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// The record's JSON object (fluentd's `json` formatter).
    #[default]
    Json,
    /// Only the value of `message_key`, as text (fluentd's `single_value`): plain lines ship
    /// byte for byte.
    SingleValue,
}

/// `[outputs.ID]` with `type = "s3"`: routing, line format, buffer and the S3 settings.
#[derive(Debug, Clone, Deserialize)]
pub struct S3OutputConfig {
    /// fluentd `<match>` pattern over tags (`s3.**`, `system.*`, `{a,b}.*`).
    #[serde(rename = "match")]
    pub pattern: String,
    /// Line format: `json` (default) or `single_value`.
    #[serde(default)]
    pub format: LineFormat,
    /// Member written by `single_value` (default `message`).
    #[serde(default = "default_message_key")]
    pub message_key: String,
    /// The `[outputs.ID.buffer]` table.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// Every other key: the S3 settings, checked by [`S3Config`].
    #[serde(flatten)]
    pub s3: toml::Table,
}

fn default_message_key() -> String {
    "message".into()
}

/// A loaded and validated configuration with each component's typed settings.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    /// The file as written (after `${NAME}` substitution).
    pub file: ShipperConfig,
    /// Outputs by id, with their S3 settings checked.
    pub outputs: BTreeMap<String, ResolvedOutput>,
}

/// One output, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedOutput {
    /// The compiled match pattern.
    pub pattern: TagPattern,
    /// Line format.
    pub format: LineFormat,
    /// Member written by `single_value`.
    pub message_key: String,
    /// Buffer settings.
    pub buffer: BufferConfig,
    /// S3 settings.
    pub s3: S3Config,
}

impl ResolvedConfig {
    /// Reads, interpolates (`${NAME}` from the environment), parses and validates `path`.
    pub fn load(path: &Path) -> Result<ResolvedConfig, ConfigError> {
        let text = read_config(path)?;
        Self::from_text(path, &text, &|name| std::env::var(name).ok())
    }

    /// As [`ResolvedConfig::load`], from text and a variable lookup (for tests and embedders).
    pub fn from_text(
        path: &Path,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResolvedConfig, ConfigError> {
        let text = interpolate_config(path, text, lookup)?;
        let file: ShipperConfig =
            toml::from_str(&text).map_err(|e| ConfigError::parse(path, e.to_string()))?;
        let invalid = |table: &str, key: &str, message: String| {
            ConfigError::invalid(path, &text, table, key, message)
        };
        if file.sources.is_empty() {
            return Err(invalid(
                "sources",
                "",
                "at least one source is required".into(),
            ));
        }
        if file.outputs.is_empty() {
            return Err(invalid(
                "outputs",
                "",
                "at least one output is required".into(),
            ));
        }
        for (id, source) in &file.sources {
            let table = format!("sources.{id}");
            match source {
                SourceConfig::Tail(tail) => tail.validate().map_err(|e| match e {
                    TailError::Config { key, message } => invalid(&table, &key, message),
                    other => invalid(&table, "", other.to_string()),
                })?,
                SourceConfig::Syslog(syslog) => syslog.validate().map_err(|e| match e {
                    // `tls.ca_path` is `ca_path` in the `[sources.X.tls]` table.
                    SyslogError::Config { key, message } => match key.rsplit_once('.') {
                        Some((sub, key)) => invalid(&format!("{table}.{sub}"), key, message),
                        None => invalid(&table, &key, message),
                    },
                    other => invalid(&table, "", other.to_string()),
                })?,
            }
        }
        let mut outputs = BTreeMap::new();
        for (id, output) in &file.outputs {
            let table = format!("outputs.{id}");
            let OutputConfig::S3(out) = output;
            let pattern = TagPattern::new(&out.pattern).map_err(|e| invalid(&table, "match", e))?;
            let s3: S3Config =
                toml::Value::Table(out.s3.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        let message = e.message().to_owned();
                        let key = unknown_field(&message).unwrap_or_default();
                        invalid(&table, &key, message)
                    })?;
            s3.validate()
                .map_err(|e| invalid(&table, "", e.to_string()))?;
            out.buffer
                .validate()
                .map_err(|e| invalid(&format!("{table}.buffer"), "", e.to_string()))?;
            outputs.insert(
                id.clone(),
                ResolvedOutput {
                    pattern,
                    format: out.format,
                    message_key: out.message_key.clone(),
                    buffer: out.buffer.clone(),
                    s3,
                },
            );
        }
        Ok(ResolvedConfig { file, outputs })
    }

    /// The configuration with every default applied, for people (`--check`).
    pub fn describe(&self) -> String {
        format!(
            "data_dir = {:?}\nshutdown_timeout = {}\n\nsources = {:#?}\n\noutputs = {:#?}\n",
            self.file.data_dir, self.file.shutdown_timeout, self.file.sources, self.outputs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
data_dir = "/tmp/lf"

[sources.app]
type = "tail"
paths = ["/var/log/app/*.log"]
tag = "s3.*"

[outputs.to_s3]
type = "s3"
match = "s3.**"
bucket = "${BUCKET}"
path = "app/"
"#;

    fn env(name: &str) -> Option<String> {
        (name == "BUCKET").then(|| "file://target/test-bucket".to_owned())
    }

    #[test]
    fn loads_and_interpolates() {
        let c = ResolvedConfig::from_text(Path::new("s.toml"), GOOD, &env).unwrap();
        assert_eq!(c.file.data_dir, PathBuf::from("/tmp/lf"));
        assert!(c.outputs["to_s3"].pattern.matches("s3.var.log.app.a.log"));
        let printed = c.describe();
        assert!(printed.contains("file://target/test-bucket"), "{printed}");
    }

    #[test]
    fn errors_name_key_and_line() {
        let bad = GOOD.replace("path = \"app/\"", "path = \"app/\"\nbuckt = \"x\"");
        let err = ResolvedConfig::from_text(Path::new("s.toml"), &bad, &env).unwrap_err();
        assert_eq!(
            err.to_string().split(": unknown").next().unwrap(),
            "s.toml:14: `outputs.to_s3.buckt`"
        );
        let bad = GOOD.replace("tag = \"s3.*\"", "tag = \"s3.*\"\nglob = 1");
        let err = ResolvedConfig::from_text(Path::new("s.toml"), &bad, &env).unwrap_err();
        assert!(err.to_string().contains("glob"), "{err}");
        let err = ResolvedConfig::from_text(Path::new("s.toml"), GOOD, &|_| None).unwrap_err();
        assert!(err.to_string().contains("${BUCKET}"), "{err}");
        let bad = GOOD.replace("match = \"s3.**\"", "match = \"s3.{\"");
        let err = ResolvedConfig::from_text(Path::new("s.toml"), &bad, &env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("s.toml:11: `outputs.to_s3.match`"),
            "{err}"
        );
    }

    #[test]
    fn source_validation_errors_name_the_key_and_its_line() {
        let bad = GOOD.replace("tag = \"s3.*\"", "tag = \"s3.*\"\nbatch_size = 0");
        let err = ResolvedConfig::from_text(Path::new("s.toml"), &bad, &env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("s.toml:8: `sources.app.batch_size`"),
            "{err}"
        );
        let syslog = GOOD.replace(
            "[outputs.to_s3]",
            "[sources.sys]\ntype = \"syslog\"\nprotocol = \"tcp\"\n\
             [sources.sys.tls]\ncert_path = \"c\"\nprivate_key_path = \"k\"\n\
             client_cert_auth = true\n\n[outputs.to_s3]",
        );
        let err = ResolvedConfig::from_text(Path::new("s.toml"), &syslog, &env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("s.toml:12: `sources.sys.tls.ca_path`: is required"),
            "{err}"
        );
    }
}
