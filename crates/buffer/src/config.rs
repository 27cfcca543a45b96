//! The `[outputs.X.buffer]` table: fluentd's `<buffer>` options.

use std::path::PathBuf;
use std::time::Duration;

use logferry_core::{ByteSize, ConfigDuration};
use serde::Deserialize;

use crate::BufferError;
use crate::retry::RetryPolicy;

/// Where chunks live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BufferType {
    /// Chunks are files under `path`; they survive restarts and crashes.
    #[default]
    File,
    /// Chunks are kept in memory and are lost when the process stops or crashes.
    Memory,
}

/// When written data is forced to stable storage (file buffers only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Chunk data and positions are fsynced once per `append` call before it returns; metadata
    /// files are fsynced before they replace the old ones. Survives `kill -9` and, on common
    /// Linux file systems (ext4, xfs), power loss.
    #[default]
    Batch,
    /// `batch`, plus the directory is fsynced after every file creation, rename and deletion,
    /// so that even the names of new files survive power loss on any POSIX file system.
    Always,
    /// Never fsync: rely on the OS. Survives `kill -9` (the data is in the page cache) but
    /// not power loss or an OS crash.
    Never,
}

/// Configuration of a buffer: the `[outputs.X.buffer]` table, with fluentd's option names.
///
/// Options whose default depends on `type` are `Option`s; the `effective_*` methods apply
/// the default.
///
/// ```
/// use logferry_buffer::{BufferConfig, BufferType};
///
/// let config: BufferConfig = toml::from_str(r#"
///     type = "file"
///     timekey = "60s"
///     timekey_wait = "60s"
///     timekey_use_utc = true
///     chunk_limit_size = "256MiB"
///     total_limit_size = "4GiB"
///     flush_interval = "60s"
/// "#).unwrap();
/// assert!(config.validate().is_ok());
/// assert_eq!(config.buffer_type, BufferType::File);
/// assert_eq!(config.effective_total_limit_size(), 4 << 30);
/// assert!(!config.effective_flush_at_shutdown());
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// `file` (the default) or `memory`.
    #[serde(rename = "type", default)]
    pub buffer_type: BufferType,
    /// Directory of the chunk files; the caller's default directory (under `data_dir`) when
    /// absent. Memory buffers keep only their small state file (chunk sequence numbers) there.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Length of a time slice (default `1h`): a record with time `t` goes to the chunk of slice
    /// `floor(t / timekey)`. Whole seconds, at least `1s`.
    #[serde(default = "default_timekey")]
    pub timekey: ConfigDuration,
    /// How long after the end of its slice a chunk is kept open for late records (default
    /// `10m`).
    #[serde(default = "default_timekey_wait")]
    pub timekey_wait: ConfigDuration,
    /// Whether slices are aligned to UTC (`true`) or to the local time zone (`false`, the
    /// default, as in fluentd: with `timekey = "1d"` a slice starts at local midnight).
    #[serde(default = "default_timekey_use_utc")]
    pub timekey_use_utc: bool,
    /// Largest chunk (default `64MiB` for file buffers, `8MiB` for memory buffers). A record
    /// that would make a chunk larger goes to a new chunk of the same slice. A single record
    /// larger than this gets a chunk of its own.
    #[serde(default)]
    pub chunk_limit_size: Option<ByteSize>,
    /// Most records per chunk (no limit by default).
    #[serde(default)]
    pub chunk_limit_records: Option<u64>,
    /// Most bytes buffered in all chunks together (default `64GiB` for file buffers, `512MiB`
    /// for memory buffers). When reached, `append` waits until uploads free space.
    #[serde(default)]
    pub total_limit_size: Option<ByteSize>,
    /// When set, a chunk is also sealed this long after it was created (its first record).
    #[serde(default)]
    pub flush_interval: Option<ConfigDuration>,
    /// Whether open chunks are sealed and uploaded when the process stops (default `false` for
    /// file buffers, whose chunks are kept for the next start, `true` for memory buffers).
    #[serde(default)]
    pub flush_at_shutdown: Option<bool>,
    /// Chunks uploaded at the same time (default `1`, as in fluentd). More hide the latency of
    /// a distant endpoint when many chunks are ready; each upload in flight may hold one
    /// encoded object of up to 8 MiB in memory.
    #[serde(default = "default_flush_thread_count")]
    pub flush_thread_count: usize,
    /// Delay before the first retry of a failed upload (default `1s`).
    #[serde(default = "default_retry_wait")]
    pub retry_wait: ConfigDuration,
    /// Each further retry waits this many times longer (default `2.0`).
    #[serde(default = "default_retry_exponential_backoff_base")]
    pub retry_exponential_backoff_base: f64,
    /// Longest delay between retries (default `5m`).
    #[serde(default = "default_retry_max_interval")]
    pub retry_max_interval: Option<ConfigDuration>,
    /// Whether each delay is varied by up to ±12.5% so that retries spread out (default
    /// `true`).
    #[serde(default = "default_retry_randomize")]
    pub retry_randomize: bool,
    /// Never give up on a chunk (default `true`).
    #[serde(default = "default_retry_forever")]
    pub retry_forever: bool,
    /// With `retry_forever = false`: retries after which a chunk is moved to the `failed/`
    /// subdirectory (never deleted).
    #[serde(default)]
    pub retry_max_times: Option<u32>,
    /// `batch` (default), `always` or `never`: see [`FsyncMode`].
    #[serde(default)]
    pub fsync: FsyncMode,
}

/// `1`, fluentd's default.
pub fn default_flush_thread_count() -> usize {
    1
}

/// `1h`, fluentd's default.
pub fn default_timekey() -> ConfigDuration {
    ConfigDuration::from_secs(3600)
}

/// `10m`, fluentd's default.
pub fn default_timekey_wait() -> ConfigDuration {
    ConfigDuration::from_secs(600)
}

/// `false`: slices follow local time, as in fluentd.
pub fn default_timekey_use_utc() -> bool {
    false
}

/// `1s`.
pub fn default_retry_wait() -> ConfigDuration {
    ConfigDuration::from_secs(1)
}

/// `2.0`.
pub fn default_retry_exponential_backoff_base() -> f64 {
    2.0
}

/// `5m`.
pub fn default_retry_max_interval() -> Option<ConfigDuration> {
    Some(ConfigDuration::from_secs(300))
}

/// `true`.
pub fn default_retry_randomize() -> bool {
    true
}

/// `true`: a chunk is retried until it is uploaded.
pub fn default_retry_forever() -> bool {
    true
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            buffer_type: BufferType::File,
            path: None,
            timekey: default_timekey(),
            timekey_wait: default_timekey_wait(),
            timekey_use_utc: default_timekey_use_utc(),
            chunk_limit_size: None,
            chunk_limit_records: None,
            total_limit_size: None,
            flush_interval: None,
            flush_at_shutdown: None,
            flush_thread_count: default_flush_thread_count(),
            retry_wait: default_retry_wait(),
            retry_exponential_backoff_base: default_retry_exponential_backoff_base(),
            retry_max_interval: default_retry_max_interval(),
            retry_randomize: default_retry_randomize(),
            retry_forever: default_retry_forever(),
            retry_max_times: None,
            fsync: FsyncMode::default(),
        }
    }
}

impl BufferConfig {
    /// A memory buffer with every other option at its default.
    pub fn memory() -> BufferConfig {
        BufferConfig {
            buffer_type: BufferType::Memory,
            ..BufferConfig::default()
        }
    }

    /// `chunk_limit_size` or its default for the buffer type, in bytes.
    pub fn effective_chunk_limit_size(&self) -> u64 {
        self.chunk_limit_size.map_or(
            match self.buffer_type {
                BufferType::File => 64 << 20,
                BufferType::Memory => 8 << 20,
            },
            |s| s.bytes(),
        )
    }

    /// `total_limit_size` or its default for the buffer type, in bytes.
    pub fn effective_total_limit_size(&self) -> u64 {
        self.total_limit_size.map_or(
            match self.buffer_type {
                BufferType::File => 64 << 30,
                BufferType::Memory => 512 << 20,
            },
            |s| s.bytes(),
        )
    }

    /// `flush_at_shutdown` or its default for the buffer type.
    pub fn effective_flush_at_shutdown(&self) -> bool {
        self.flush_at_shutdown
            .unwrap_or(self.buffer_type == BufferType::Memory)
    }

    /// The retry schedule these options describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::from_config(self)
    }

    /// Checks the options without touching the file system.
    pub fn validate(&self) -> Result<(), BufferError> {
        let err = |key: &'static str, message: &str| {
            Err(BufferError::Config {
                key,
                message: message.to_owned(),
            })
        };
        let timekey = self.timekey.as_duration();
        if timekey < Duration::from_secs(1) || timekey.subsec_nanos() != 0 {
            return err("timekey", "must be a whole number of seconds, at least 1s");
        }
        if self.effective_chunk_limit_size() == 0 {
            return err("chunk_limit_size", "must be more than 0 bytes");
        }
        if self.chunk_limit_records == Some(0) {
            return err("chunk_limit_records", "must be at least 1");
        }
        if self.effective_total_limit_size() < self.effective_chunk_limit_size() {
            return err("total_limit_size", "must be at least chunk_limit_size");
        }
        if self
            .flush_interval
            .is_some_and(|d| d.as_duration().is_zero())
        {
            return err("flush_interval", "must be more than 0s");
        }
        if !(1..=64).contains(&self.flush_thread_count) {
            return err("flush_thread_count", "must be between 1 and 64");
        }
        if self.retry_wait.as_duration().is_zero() {
            return err("retry_wait", "must be more than 0s");
        }
        let base = self.retry_exponential_backoff_base;
        if !base.is_finite() || !(1.0..=1000.0).contains(&base) {
            return err(
                "retry_exponential_backoff_base",
                "must be a number from 1 to 1000",
            );
        }
        if self
            .retry_max_interval
            .is_some_and(|d| d.as_duration().is_zero())
        {
            return err("retry_max_interval", "must be more than 0s");
        }
        match (self.retry_forever, self.retry_max_times) {
            (false, None) => {
                return err("retry_max_times", "must be set when retry_forever = false");
            }
            (true, Some(_)) => {
                return err(
                    "retry_max_times",
                    "has no effect while retry_forever = true (the default); \
                     set retry_forever = false",
                );
            }
            _ => {}
        }
        if self.buffer_type == BufferType::Memory && self.fsync != FsyncMode::Batch {
            return err("fsync", "applies to file buffers only");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BufferConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_follow_fluentd_per_type() {
        let file = parse("").unwrap();
        assert_eq!(file, BufferConfig::default());
        assert_eq!(file.effective_chunk_limit_size(), 64 << 20);
        assert_eq!(file.effective_total_limit_size(), 64 << 30);
        assert!(!file.effective_flush_at_shutdown());
        assert_eq!(file.timekey.as_duration().as_secs(), 3600);
        assert_eq!(file.timekey_wait.as_duration().as_secs(), 600);
        assert!(!file.timekey_use_utc);
        assert!(file.retry_forever);
        file.validate().unwrap();

        let memory = parse("type = \"memory\"").unwrap();
        assert_eq!(memory, BufferConfig::memory());
        assert_eq!(memory.effective_chunk_limit_size(), 8 << 20);
        assert_eq!(memory.effective_total_limit_size(), 512 << 20);
        assert!(memory.effective_flush_at_shutdown());
        memory.validate().unwrap();
    }

    #[test]
    fn reads_every_option() {
        let c = parse(
            r#"
            type = "file"
            path = "/var/log/logferry/buffer/s3"
            timekey = "60s"
            timekey_wait = "60s"
            timekey_use_utc = true
            chunk_limit_size = "1MiB"
            chunk_limit_records = 1000
            total_limit_size = "4GiB"
            flush_interval = "30s"
            flush_at_shutdown = true
            retry_wait = "2s"
            retry_exponential_backoff_base = 1.5
            retry_max_interval = "1m"
            retry_randomize = false
            retry_forever = false
            retry_max_times = 17
            fsync = "always"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.chunk_limit_records, Some(1000));
        assert_eq!(c.fsync, FsyncMode::Always);
        assert_eq!(c.retry_max_times, Some(17));
        assert!(c.effective_flush_at_shutdown());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(parse("flush_threads = 2").is_err());
        assert!(parse("type = \"redis\"").is_err());
        assert!(parse("fsync = \"sometimes\"").is_err());
        let key = |text: &str| match parse(text).unwrap().validate() {
            Err(BufferError::Config { key, .. }) => key,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(key("timekey = \"500ms\""), "timekey");
        assert_eq!(key("flush_thread_count = 0"), "flush_thread_count");
        assert_eq!(
            parse("flush_thread_count = 4").unwrap().flush_thread_count,
            4
        );
        assert_eq!(key("timekey = \"1.5s\""), "timekey");
        assert_eq!(key("chunk_limit_size = 0"), "chunk_limit_size");
        assert_eq!(key("chunk_limit_records = 0"), "chunk_limit_records");
        assert_eq!(
            key("chunk_limit_size = \"2GiB\"\ntotal_limit_size = \"1GiB\""),
            "total_limit_size"
        );
        assert_eq!(key("flush_interval = \"0s\""), "flush_interval");
        assert_eq!(key("retry_wait = \"0s\""), "retry_wait");
        assert_eq!(
            key("retry_exponential_backoff_base = 0.5"),
            "retry_exponential_backoff_base"
        );
        assert_eq!(key("retry_forever = false"), "retry_max_times");
        assert_eq!(key("retry_max_times = 3"), "retry_max_times");
        assert_eq!(key("type = \"memory\"\nfsync = \"never\""), "fsync");
    }
}
