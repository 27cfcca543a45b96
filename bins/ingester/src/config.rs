//! The ingester's configuration file (see `docs/configuration.md`): `[aws]`, `[inputs.ID]`,
//! `[outputs.ID]`, `[dead_letter]` and `[backfill]`, with `${NAME}` interpolation and errors
//! that name the file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use logferry_core::{ConfigDuration, ConfigError, interpolate_config, read_config, unknown_field};
use logferry_sink_es::{DeadLetterConfig, EsError, OutputConfig};
use logferry_source_sqs::{AwsConfig, BackfillConfig, SourceError, SqsInputConfig};
use serde::Deserialize;

/// The file as written (inputs still as tables: their `type` and `outputs` keys belong here).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngesterFile {
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default = "default_shutdown_timeout")]
    shutdown_timeout: ConfigDuration,
    #[serde(default)]
    aws: AwsConfig,
    #[serde(default)]
    inputs: BTreeMap<String, toml::Table>,
    #[serde(default)]
    outputs: BTreeMap<String, OutputConfig>,
    #[serde(default)]
    dead_letter: Option<DeadLetterConfig>,
    #[serde(default)]
    backfill: Option<toml::Table>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/logferry")
}

fn default_shutdown_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(30)
}

/// One `[inputs.ID]`: an SQS queue and the outputs its events go to.
#[derive(Clone, Debug)]
pub struct Input {
    /// The queue, formats and limits.
    pub sqs: SqsInputConfig,
    /// The outputs (by id) its events go to: every output unless the input lists some.
    pub outputs: Vec<String>,
}

/// A loaded, interpolated and validated configuration.
#[derive(Clone, Debug)]
pub struct IngesterConfig {
    /// Where state lives (backfill checkpoints by default).
    pub data_dir: PathBuf,
    /// How long in-flight work may take to finish after SIGTERM.
    pub shutdown_timeout: ConfigDuration,
    /// Settings of every AWS client.
    pub aws: AwsConfig,
    /// The SQS inputs by id.
    pub inputs: BTreeMap<String, Input>,
    /// The outputs by id.
    pub outputs: BTreeMap<String, OutputConfig>,
    /// Where lines and documents that cannot be indexed go.
    pub dead_letter: Option<DeadLetterConfig>,
    /// Defaults of `backfill` (the table as written; flags override its keys).
    pub backfill: Option<toml::Table>,
}

impl IngesterConfig {
    /// Reads, interpolates (`${NAME}` from the environment), parses and validates `path`.
    pub fn load(path: &Path) -> Result<IngesterConfig, ConfigError> {
        let text = read_config(path)?;
        Self::from_text(path, &text, &|name| std::env::var(name).ok())
    }

    /// As [`IngesterConfig::load`], from text and a variable lookup.
    pub fn from_text(
        path: &Path,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<IngesterConfig, ConfigError> {
        let text = interpolate_config(path, text, lookup)?;
        let file: IngesterFile =
            toml::from_str(&text).map_err(|e| ConfigError::parse(path, e.to_string()))?;
        let invalid = |table: &str, key: &str, message: String| {
            ConfigError::invalid(path, &text, table, key, message)
        };
        file.aws
            .validate()
            .map_err(|e| source_error(&invalid, "aws", e))?;
        for (id, output) in &file.outputs {
            output
                .validate()
                .and_then(|()| match output {
                    OutputConfig::Elasticsearch(es) => es.check_files(),
                    OutputConfig::Ndjson(_) => Ok(()),
                })
                .map_err(|e| es_error(&invalid, &format!("outputs.{id}"), e))?;
        }
        if let Some(dead_letter) = &file.dead_letter {
            dead_letter
                .validate()
                .map_err(|e| es_error(&invalid, "dead_letter", e))?;
        }
        let mut inputs = BTreeMap::new();
        for (id, table) in &file.inputs {
            let name = format!("inputs.{id}");
            let mut table = table.clone();
            match table.remove("type") {
                Some(toml::Value::String(t)) if t == "sqs" => {}
                Some(other) => {
                    return Err(invalid(
                        &name,
                        "type",
                        format!("unknown input type {other}: expected \"sqs\""),
                    ));
                }
                None => return Err(invalid(&name, "", "`type` is required (\"sqs\")".into())),
            }
            let outputs = match table.remove("outputs") {
                None => file.outputs.keys().cloned().collect(),
                Some(value) => {
                    let listed: Vec<String> = value.try_into().map_err(|_| {
                        invalid(&name, "outputs", "must be a list of output ids".into())
                    })?;
                    if listed.is_empty() {
                        return Err(invalid(
                            &name,
                            "outputs",
                            "must name at least one output (its events would be dropped)".into(),
                        ));
                    }
                    if let Some(unknown) = listed.iter().find(|o| !file.outputs.contains_key(*o)) {
                        return Err(invalid(
                            &name,
                            "outputs",
                            format!("no output `{unknown}` is configured"),
                        ));
                    }
                    listed
                }
            };
            let sqs: SqsInputConfig =
                toml::Value::Table(table)
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        let message = e.message().to_owned();
                        let key = unknown_field(&message).unwrap_or_default();
                        invalid(&name, &key, message)
                    })?;
            sqs.validate()
                .map_err(|e| source_error(&invalid, &name, e))?;
            inputs.insert(id.clone(), Input { sqs, outputs });
        }
        if let Some(backfill) = &file.backfill {
            // Checked as far as it goes without the command line (which may add the bucket).
            let mut probe = backfill.clone();
            probe
                .entry("bucket")
                .or_insert_with(|| toml::Value::String("file://.".into()));
            let config: BackfillConfig =
                toml::Value::Table(probe)
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        let message = e.message().to_owned();
                        let key = unknown_field(&message).unwrap_or_default();
                        invalid("backfill", &key, message)
                    })?;
            config
                .validate()
                .map_err(|e| source_error(&invalid, "backfill", e))?;
        }
        Ok(IngesterConfig {
            data_dir: file.data_dir,
            shutdown_timeout: file.shutdown_timeout,
            aws: file.aws,
            inputs,
            outputs: file.outputs,
            dead_letter: file.dead_letter,
            backfill: file.backfill,
        })
    }

    /// The resolved configuration as `check` prints it.
    pub fn describe(&self) -> String {
        format!(
            "data_dir = {:?}\nshutdown_timeout = {}\n\naws = {:#?}\n\ninputs = {:#?}\n\n\
             outputs = {:#?}\n\ndead_letter = {:#?}\n\nbackfill = {:#?}\n",
            self.data_dir,
            self.shutdown_timeout,
            redacted(&self.aws),
            self.inputs,
            self.outputs,
            self.dead_letter,
            self.backfill,
        )
    }
}

/// `aws` without its secret key.
fn redacted(aws: &AwsConfig) -> AwsConfig {
    let mut aws = aws.clone();
    if aws.aws_sec_key.is_some() {
        aws.aws_sec_key = Some("(redacted)".into());
    }
    aws
}

/// A [`SourceError::Config`] placed at its key in `table` (its key may repeat the table's
/// name: `aws.region`); other errors at the table.
fn source_error(
    invalid: &dyn Fn(&str, &str, String) -> ConfigError,
    table: &str,
    e: SourceError,
) -> ConfigError {
    match e {
        SourceError::Config { key, message } => {
            let key = key
                .strip_prefix(table)
                .and_then(|k| k.strip_prefix('.'))
                .unwrap_or(&key);
            invalid(table, key, message)
        }
        other => invalid(table, "", other.to_string()),
    }
}

/// An [`EsError::Config`] placed at its key inside `table`.
fn es_error(
    invalid: &dyn Fn(&str, &str, String) -> ConfigError,
    table: &str,
    e: EsError,
) -> ConfigError {
    match e {
        EsError::Config { key, reason } => match key.rsplit_once('.') {
            Some((sub, key)) => invalid(&format!("{table}.{sub}"), key, reason),
            None => invalid(table, key, reason),
        },
        other => invalid(table, "", other.to_string()),
    }
}
