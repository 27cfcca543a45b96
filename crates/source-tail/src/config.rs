//! The `[sources.X]` table of a `type = "tail"` source.

use std::path::PathBuf;

use logferry_core::{ByteSize, ConfigDuration};
use serde::Deserialize;

use crate::TailError;
use crate::glob::compile_glob;

/// How each line becomes a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParseMode {
    /// Every line becomes `{"message":"<line>"}`.
    #[default]
    None,
    /// A line that is a JSON object is passed through as is; any other line becomes
    /// `{"message":"<line>"}` and counts as a parse error.
    Json,
}

/// Configuration of a tail source: the `[sources.X]` table with `type = "tail"`, without the
/// `type` key (the caller consumes it).
///
/// ```
/// use logferry_source_tail::TailConfig;
///
/// let config: TailConfig = serde_json::from_str(r#"{
///     "paths": ["/var/log/go-audit/*.log"],
///     "parse": "json",
///     "tag": "s3.*"
/// }"#).unwrap();
/// assert!(config.validate().is_ok());
/// assert_eq!(config.refresh_interval.to_string(), "1m");
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailConfig {
    /// Glob patterns of the files to tail (`*`, `?`, `[a-z]`, `{a,b}`, `**`); `*` does not
    /// cross `/`. Re-scanned every `refresh_interval`.
    pub paths: Vec<String>,
    /// Glob patterns of files to leave alone even though `paths` match them (fluentd's name).
    #[serde(default)]
    pub exclude_path: Vec<String>,
    /// The checkpoint file; the caller's default (under `data_dir`) when absent.
    #[serde(default)]
    pub pos_file: Option<PathBuf>,
    /// Whether files found at startup without a checkpoint are read from their beginning
    /// (`true`) or from their current end (`false`, the default). Files that appear later are
    /// always read from the beginning.
    #[serde(default = "default_read_from_head")]
    pub read_from_head: bool,
    /// `none` (each line is a `message`) or `json` (lines are JSON objects).
    #[serde(default)]
    pub parse: ParseMode,
    /// The tag of the records; every `*` is replaced by the file's path with `/` turned into `.`
    /// (see [`crate::expand_tag`]).
    pub tag: String,
    /// How often the globs are re-scanned for new files (default `60s`). After a file being
    /// read disappears from its path, they are re-scanned at every poll for this long.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: ConfigDuration,
    /// How long a rotated file keeps being read after its replacement appeared at its path
    /// or after it was deleted (default `5s`); it is forgotten once this has passed and it is
    /// read and acknowledged to its end.
    #[serde(default = "default_rotate_wait")]
    pub rotate_wait: ConfigDuration,
    /// Longest line kept (default `1MiB`); a longer line is truncated to this size, the rest
    /// of it skipped and counted.
    #[serde(default = "default_max_line_size")]
    pub max_line_size: ByteSize,
    /// How long a last line without a newline is held for its completion before it is
    /// emitted as it is (default `5s`, counted from the file's last growth).
    #[serde(default = "default_partial_line_timeout")]
    pub partial_line_timeout: ConfigDuration,
    /// How often files are checked for new data, truncation and rotation (default `250ms`).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: ConfigDuration,
    /// Size of each read from a file (default `64KiB`).
    #[serde(default = "default_read_buffer_size")]
    pub read_buffer_size: ByteSize,
    /// Most records per emitted batch (default `1000`).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Most line bytes per emitted batch (default `1MiB`); a batch closes once it reaches this.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: ByteSize,
}

/// `false`: files present at startup without a checkpoint are read from their end.
pub fn default_read_from_head() -> bool {
    false
}

/// `60s`.
pub fn default_refresh_interval() -> ConfigDuration {
    ConfigDuration::from_secs(60)
}

/// `5s`.
pub fn default_rotate_wait() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}

/// `1MiB`.
pub fn default_max_line_size() -> ByteSize {
    ByteSize::new(1 << 20)
}

/// `5s`.
pub fn default_partial_line_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}

/// `250ms`.
pub fn default_poll_interval() -> ConfigDuration {
    ConfigDuration::new(std::time::Duration::from_millis(250))
}

/// `64KiB`.
pub fn default_read_buffer_size() -> ByteSize {
    ByteSize::new(64 << 10)
}

/// `1000`.
pub fn default_batch_size() -> usize {
    1000
}

/// `1MiB`.
pub fn default_batch_bytes() -> ByteSize {
    ByteSize::new(1 << 20)
}

/// Largest `max_line_size`, `read_buffer_size` and `batch_bytes` accepted (1 GiB): they bound
/// memory.
const MAX_SIZE: u64 = 1 << 30;

impl TailConfig {
    /// A configuration with the given globs and tag and every other key at its default.
    pub fn new(paths: Vec<String>, tag: impl Into<String>) -> TailConfig {
        TailConfig {
            paths,
            exclude_path: Vec::new(),
            pos_file: None,
            read_from_head: default_read_from_head(),
            parse: ParseMode::default(),
            tag: tag.into(),
            refresh_interval: default_refresh_interval(),
            rotate_wait: default_rotate_wait(),
            max_line_size: default_max_line_size(),
            partial_line_timeout: default_partial_line_timeout(),
            poll_interval: default_poll_interval(),
            read_buffer_size: default_read_buffer_size(),
            batch_size: default_batch_size(),
            batch_bytes: default_batch_bytes(),
        }
    }

    /// Checks the configuration without touching the file system. Errors name the key
    /// (`paths[1]`, `tag`, ...) relative to the source's table.
    pub fn validate(&self) -> Result<(), TailError> {
        let invalid = |key: &str, message: &str| TailError::Config {
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if self.paths.is_empty() {
            return Err(invalid("paths", "must list at least one glob"));
        }
        for (name, list) in [("paths", &self.paths), ("exclude_path", &self.exclude_path)] {
            for (i, pattern) in list.iter().enumerate() {
                let key = format!("{name}[{i}]");
                if pattern.trim().is_empty() {
                    return Err(invalid(&key, "must not be empty"));
                }
                compile_glob(&key, pattern)?;
            }
        }
        if self.tag.trim().is_empty() {
            return Err(invalid("tag", "must not be empty"));
        }
        if self.tag.chars().any(char::is_whitespace) {
            return Err(invalid("tag", "must not contain whitespace"));
        }
        if let Some(pos_file) = &self.pos_file
            && pos_file.file_name().is_none()
        {
            return Err(invalid("pos_file", "must name a file"));
        }
        for (key, d) in [
            ("refresh_interval", self.refresh_interval),
            ("poll_interval", self.poll_interval),
        ] {
            if d.as_duration().is_zero() {
                return Err(invalid(key, "must be greater than zero"));
            }
        }
        for (key, size) in [
            ("max_line_size", self.max_line_size),
            ("read_buffer_size", self.read_buffer_size),
            ("batch_bytes", self.batch_bytes),
        ] {
            if size.bytes() == 0 {
                return Err(invalid(key, "must be greater than zero"));
            }
            if size.bytes() > MAX_SIZE {
                return Err(invalid(key, "must be at most 1GiB"));
            }
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be greater than zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<TailConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults() {
        let c = config(r#"{"paths":["/x/*.log"],"tag":"t"}"#).unwrap();
        assert!(!c.read_from_head);
        assert_eq!(c.parse, ParseMode::None);
        assert_eq!(c.rotate_wait.as_duration().as_secs(), 5);
        assert_eq!(c.poll_interval.as_duration().as_millis(), 250);
        assert_eq!(c.max_line_size.bytes(), 1 << 20);
        assert_eq!(c.read_buffer_size.bytes(), 64 << 10);
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.batch_bytes.bytes(), 1 << 20);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(config(r#"{"paths":["a"],"tag":"t","type":"tail"}"#).is_err());
        assert!(config(r#"{"paths":["a"],"tag":"t","parse":"xml"}"#).is_err());
        assert!(config(r#"{"paths":["a"],"tag":"t","max_line_size":"lots"}"#).is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let key = |json: &str| match config(json).unwrap().validate() {
            Err(TailError::Config { key, .. }) | Err(TailError::InvalidGlob { key, .. }) => key,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(key(r#"{"paths":[],"tag":"t"}"#), "paths");
        assert_eq!(key(r#"{"paths":["a","b[","c"],"tag":"t"}"#), "paths[1]");
        assert_eq!(
            key(r#"{"paths":["a"],"exclude_path":["{x"],"tag":"t"}"#),
            "exclude_path[0]"
        );
        assert_eq!(key(r#"{"paths":["a"],"tag":" "}"#), "tag");
        assert_eq!(
            key(r#"{"paths":["a"],"tag":"t","batch_size":0}"#),
            "batch_size"
        );
        assert_eq!(
            key(r#"{"paths":["a"],"tag":"t","poll_interval":"0s"}"#),
            "poll_interval"
        );
        assert_eq!(
            key(r#"{"paths":["a"],"tag":"t","max_line_size":0}"#),
            "max_line_size"
        );
        assert_eq!(
            key(r#"{"paths":["a"],"tag":"t","batch_bytes":"2GiB"}"#),
            "batch_bytes"
        );
    }
}
