//! The public face of the tail source.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use logferry_core::ShutdownSignal;
use tokio::sync::mpsc;

use crate::checkpoint::{self, PosEntry};
use crate::discover::{ResumeIndex, resume_index};
use crate::glob::PathMatcher;
use crate::reader::Limits;
use crate::run::{RunInput, Runner, Settings};
use crate::{RunMode, TailBatch, TailConfig, TailError, TailStats, TailSummary};

/// A file-tailing source: fluentd's `in_tail`, Filebeat's `filestream`.
///
/// Build it with [`TailSource::new`] (validates the configuration, compiles the globs and
/// reads the checkpoint file), then [`TailSource::run`] it.
#[derive(Debug)]
pub struct TailSource {
    id: String,
    settings: Settings,
    pos_file: PathBuf,
    matcher: Arc<PathMatcher>,
    checkpoints: Vec<PosEntry>,
    resume: Arc<ResumeIndex>,
    stats: TailStats,
}

impl TailSource {
    /// Builds the source `id` (the component's name in the configuration).
    ///
    /// `default_pos_file` is used when the configuration has no `pos_file`; its directory is
    /// created. `resume` maps stream ids ([`crate::StreamPosition::stream`]) to offsets that are
    /// durably stored downstream (e.g. by a disk buffer): a file starts at the larger of its
    /// checkpoint and its resume offset, so a crash between storing a batch and writing the
    /// checkpoint duplicates nothing. Ids of other sources are ignored.
    pub fn new(
        id: &str,
        config: TailConfig,
        default_pos_file: PathBuf,
        resume: HashMap<String, u64>,
    ) -> Result<TailSource, TailError> {
        config.validate()?;
        let matcher = PathMatcher::new(&config.paths, &config.exclude_path)?;
        let pos_file = config.pos_file.clone().unwrap_or(default_pos_file);
        if let Some(dir) = pos_file.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| TailError::PosFileDir {
                path: pos_file.clone(),
                source,
            })?;
        }
        let checkpoints = checkpoint::load(&pos_file)?;
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let settings = Settings {
            limits: Limits {
                max_line: to_usize(config.max_line_size.bytes()),
                read_size: to_usize(config.read_buffer_size.bytes()),
                batch_records: config.batch_size,
                batch_bytes: to_usize(config.batch_bytes.bytes()),
                parse: config.parse,
            },
            tag: config.tag,
            read_from_head: config.read_from_head,
            refresh_interval: config.refresh_interval.as_duration(),
            rotate_wait: config.rotate_wait.as_duration(),
            partial_line_timeout: config.partial_line_timeout.as_duration(),
            poll_interval: config.poll_interval.as_duration(),
        };
        Ok(TailSource {
            id: id.to_owned(),
            settings,
            pos_file,
            matcher: Arc::new(matcher),
            checkpoints,
            resume: Arc::new(resume_index(id, &resume)),
            stats: TailStats::default(),
        })
    }

    /// A handle on the source's counters, valid before, during and after [`TailSource::run`].
    pub fn stats(&self) -> TailStats {
        self.stats.clone()
    }

    /// Runs the source, sending batches on `out` (a full channel stops reading).
    ///
    /// - [`RunMode::Follow`]: follows the files until `shutdown` fires, then stops reading,
    ///   waits at most `grace` for outstanding acknowledgements, writes the checkpoint and
    ///   returns.
    /// - [`RunMode::Once`]: reads every matching file to its end (unfinished last lines
    ///   included), waits for every acknowledgement (for at most `grace` once `shutdown` fires),
    ///   writes the checkpoint and returns; [`TailError::Undelivered`] if a batch was not
    ///   delivered.
    ///
    /// Dropping the future stops the source without writing the checkpoint (what was
    /// acknowledged is then read again at the next start).
    ///
    /// Needs a tokio runtime with timers enabled (`enable_time` or `enable_all`); file-system
    /// work runs on its blocking pool.
    pub async fn run(
        self,
        out: mpsc::Sender<TailBatch>,
        shutdown: ShutdownSignal,
        mode: RunMode,
        grace: Duration,
    ) -> Result<TailSummary, TailError> {
        let stats = self.stats.clone();
        let input = RunInput {
            source: self.id,
            settings: self.settings,
            pos_file: self.pos_file,
            matcher: self.matcher,
            checkpoints: self.checkpoints,
            resume: self.resume,
            counters: Arc::clone(&stats.counters),
        };
        Runner::new(input, out, shutdown, mode).run(grace).await?;
        Ok(stats.summary())
    }
}
