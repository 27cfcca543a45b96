//! The running source: scans, per-file reading steps, batches, acknowledgements, checkpoints.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logferry_core::{AckToken, ShutdownSignal};
use tokio::sync::mpsc;

use crate::acks::AckQueue;
use crate::checkpoint::{self, PosEntry, stream_id};
use crate::discover::{Discovery, Opened, ResumeIndex, discover};
use crate::fingerprint::{DevIno, Fingerprint};
use crate::glob::PathMatcher;
use crate::reader::{Flush, Limits, Reader, StepOptions};
use crate::stats::Counters;
use crate::{RunMode, StreamPosition, TailBatch, TailError, expand_tag};

/// Least time between two writes of the checkpoint file while running.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// How often acknowledgements are looked at while only waiting for them.
const ACK_POLL: Duration = Duration::from_millis(10);
/// Least time between two warnings about the same file's read errors.
const READ_ERROR_WARN_INTERVAL: Duration = Duration::from_secs(60);
/// Longest pause before a file is read again after a batch was not delivered.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

/// Settings taken from the configuration.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    pub(crate) tag: String,
    pub(crate) read_from_head: bool,
    pub(crate) refresh_interval: Duration,
    pub(crate) rotate_wait: Duration,
    pub(crate) partial_line_timeout: Duration,
    pub(crate) poll_interval: Duration,
}

/// Everything a run starts from.
#[derive(Debug)]
pub(crate) struct RunInput {
    pub(crate) source: String,
    pub(crate) settings: Settings,
    pub(crate) pos_file: PathBuf,
    pub(crate) matcher: Arc<PathMatcher>,
    pub(crate) checkpoints: Vec<PosEntry>,
    pub(crate) resume: Arc<ResumeIndex>,
    pub(crate) counters: Arc<Counters>,
}

/// A file being read.
#[derive(Debug)]
struct Tracked {
    id: DevIno,
    /// Where it is now.
    path: PathBuf,
    /// Where it was found (carried by its batches).
    batch_path: Arc<Path>,
    tag: Arc<str>,
    /// `None` only while a step runs.
    reader: Option<Box<Reader>>,
    fingerprint: Fingerprint,
    stream: Option<String>,
    /// Every byte before this offset was delivered.
    committed: u64,
    acks: AckQueue,
    /// When it was noticed that its path no longer leads to it.
    detached_since: Option<Instant>,
    /// When its replacement appeared at its path or it was deleted: `rotate_wait` starts.
    rotated_since: Option<Instant>,
    last_growth: Instant,
    at_eof: bool,
    partial: bool,
    /// Check the whole fingerprint at the next step (set by scans).
    verify: bool,
    /// After a delivery failure: not read before this instant.
    paused_until: Option<Instant>,
    failures: u32,
    /// `RunMode::Once`: read to its end (or given up).
    done: bool,
    last_error_warning: Option<Instant>,
}

/// Whether a file's path still leads to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathState {
    Same,
    Gone,
    Replaced,
    Unknown,
}

fn path_state(path: &Path, id: DevIno) -> PathState {
    match std::fs::metadata(path) {
        Ok(meta) if DevIno::of(&meta) == id => PathState::Same,
        Ok(_) => PathState::Replaced,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => PathState::Gone,
        Err(_) => PathState::Unknown,
    }
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepResult {
    Progress,
    Idle,
    /// Shutdown was triggered while a batch waited for room in the channel.
    Stopped,
}

/// The state of a running source.
#[derive(Debug)]
pub(crate) struct Runner {
    source: String,
    settings: Settings,
    pos_file: PathBuf,
    matcher: Arc<PathMatcher>,
    resume: Arc<ResumeIndex>,
    /// Checkpoint entries of files not being read (yet): kept while their files exist.
    known: HashMap<DevIno, PosEntry>,
    /// Paths and identities in the checkpoint file at startup: a file found there is not
    /// new to this source, so it is read from the start when its checkpoint does not match.
    initial_paths: HashSet<PathBuf>,
    initial_ids: HashSet<DevIno>,
    files: Vec<Tracked>,
    counters: Arc<Counters>,
    out: mpsc::Sender<TailBatch>,
    shutdown: ShutdownSignal,
    mode: RunMode,
    dirty: bool,
    last_write: Option<Instant>,
    warned_paths: HashMap<PathBuf, Instant>,
    scanned: bool,
    /// `RunMode::Once`: the first batch that was not delivered.
    failure: Option<TailError>,
}

impl Runner {
    pub(crate) fn new(
        input: RunInput,
        out: mpsc::Sender<TailBatch>,
        shutdown: ShutdownSignal,
        mode: RunMode,
    ) -> Runner {
        let initial_paths = input
            .checkpoints
            .iter()
            .map(|e| PathBuf::from(&e.path))
            .collect();
        let initial_ids = input.checkpoints.iter().map(PosEntry::dev_ino).collect();
        let known = input
            .checkpoints
            .into_iter()
            .map(|e| (e.dev_ino(), e))
            .collect();
        Runner {
            source: input.source,
            settings: input.settings,
            pos_file: input.pos_file,
            matcher: input.matcher,
            resume: input.resume,
            known,
            initial_paths,
            initial_ids,
            files: Vec::new(),
            counters: input.counters,
            out,
            shutdown,
            mode,
            dirty: false,
            last_write: None,
            warned_paths: HashMap::new(),
            scanned: false,
            failure: None,
        }
    }

    /// Reads until shutdown (or, in `Once` mode, to the end), waits for acknowledgements and
    /// writes the checkpoint.
    pub(crate) async fn run(mut self, grace: Duration) -> Result<(), TailError> {
        let outcome = match self.mode {
            RunMode::Follow => self.follow().await,
            RunMode::Once => self.once().await,
        };
        let wait_for_all = self.mode == RunMode::Once && outcome.is_ok();
        self.drain_acks(wait_for_all, grace).await;
        self.write_checkpoint(true).await;
        let open = self.files.len() as u64;
        Counters::sub(&self.counters.open_files, open);
        outcome?;
        match self.failure.take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    async fn follow(&mut self) -> Result<(), TailError> {
        self.scan().await?;
        let mut next_scan = Instant::now() + self.settings.refresh_interval;
        loop {
            if self.shutdown.is_triggered() {
                return Ok(());
            }
            self.poll_acks();
            self.write_checkpoint(false).await;
            let now = Instant::now();
            let refresh = self.settings.refresh_interval;
            let recently_detached =
                |f: &Tracked| f.detached_since.is_some_and(|t| now - t < refresh);
            if now >= next_scan || self.files.iter().any(recently_detached) {
                self.scan().await?;
                next_scan = now + self.settings.refresh_interval;
            }
            let mut progressed = false;
            for i in 0..self.files.len() {
                match self.step_file(i).await? {
                    StepResult::Progress => progressed = true,
                    StepResult::Idle => {}
                    StepResult::Stopped => return Ok(()),
                }
            }
            self.forget_drained();
            if !progressed {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = self.shutdown.clone().wait() => return Ok(()),
                }
            }
        }
    }

    async fn once(&mut self) -> Result<(), TailError> {
        self.scan().await?;
        loop {
            if self.shutdown.is_triggered() {
                return Ok(());
            }
            self.poll_acks();
            self.write_checkpoint(false).await;
            let mut active = false;
            for i in 0..self.files.len() {
                if self.files[i].done {
                    continue;
                }
                active = true;
                if self.step_file(i).await? == StepResult::Stopped {
                    return Ok(());
                }
            }
            if !active {
                return Ok(());
            }
        }
    }

    /// Waits for outstanding acknowledgements: all of them (`wait_for_all`, until shutdown
    /// and then for `grace` more), or for at most `grace`.
    async fn drain_acks(&mut self, wait_for_all: bool, grace: Duration) {
        let mut deadline = (!wait_for_all).then(|| Instant::now() + grace);
        loop {
            self.poll_acks();
            if self.files.iter().all(|f| f.acks.is_empty()) {
                return;
            }
            self.write_checkpoint(false).await;
            let now = Instant::now();
            match deadline {
                Some(d) if now >= d => {
                    tracing::warn!(
                        source = %self.source,
                        "Stopping with batches not yet acknowledged; they will be read again."
                    );
                    return;
                }
                Some(d) => tokio::time::sleep(ACK_POLL.min(d - now)).await,
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep(ACK_POLL) => {}
                        _ = self.shutdown.clone().wait() => deadline = Some(now + grace),
                    }
                }
            }
        }
    }

    /// Expands the globs, starts reading new files and drops checkpoint entries of files
    /// that are gone.
    async fn scan(&mut self) -> Result<(), TailError> {
        let tracked: HashSet<DevIno> = self.files.iter().map(|f| f.id).collect();
        let known = self.known.clone();
        let matcher = Arc::clone(&self.matcher);
        let resume = Arc::clone(&self.resume);
        let found =
            tokio::task::spawn_blocking(move || discover(&matcher, tracked, &known, &resume))
                .await
                .map_err(|source| TailError::Task { source })?;
        let first = !self.scanned;
        self.scanned = true;
        let mut seen = HashSet::new();
        let mut failed_paths = HashSet::new();
        for discovery in found {
            match discovery {
                Discovery::Seen { path, id } => {
                    seen.insert(id);
                    if let Some(f) = self.files.iter_mut().find(|f| f.id == id)
                        && f.detached_since.is_some()
                        && f.path != path
                    {
                        tracing::info!(
                            from = %f.path.display(), to = %path.display(),
                            "Tailed file was renamed to a path that is also tailed."
                        );
                        f.path = path;
                        f.detached_since = None;
                        f.rotated_since = None;
                    }
                }
                Discovery::Opened(opened) => {
                    seen.insert(opened.id);
                    self.add_file(opened, first);
                }
                Discovery::Failed { path, id, error } => {
                    seen.extend(id);
                    Counters::add(&self.counters.file_errors, 1);
                    let now = Instant::now();
                    let due = self
                        .warned_paths
                        .get(&path)
                        .is_none_or(|t| now - *t >= self.settings.refresh_interval);
                    if due {
                        tracing::warn!(
                            path = %path.display(), %error,
                            "Cannot read a path matched by `paths`; retrying at the next scan."
                        );
                        self.warned_paths.insert(path.clone(), now);
                    }
                    failed_paths.insert(path);
                }
            }
        }
        self.warned_paths.retain(|p, _| failed_paths.contains(p));
        let before = self.known.len();
        self.known.retain(|id, _| seen.contains(id));
        if self.known.len() != before {
            self.dirty = true;
        }
        for f in &mut self.files {
            f.verify = true;
        }
        Counters::add(&self.counters.scans, 1);
        Ok(())
    }

    fn add_file(&mut self, opened: Opened, first_scan: bool) {
        let Opened {
            path,
            file,
            id,
            size,
            fingerprint,
            checkpoint,
            resume,
        } = opened;
        self.known.remove(&id);
        let mut offset = None;
        let mut stream = None;
        if let Some(entry) = checkpoint {
            offset = Some(entry.offset);
            stream = entry.stream;
        }
        if let Some((resumed, resumed_stream)) = resume {
            if offset.is_none_or(|o| resumed > o) {
                offset = Some(resumed);
            }
            stream.get_or_insert(resumed_stream);
        }
        let known = offset.is_some();
        // Only a file this source never saw honours `read_from_head`, and only at startup:
        // a file that appears later, or replaced a checkpointed one, is new and read whole.
        let unseen = !self.initial_ids.contains(&id) && !self.initial_paths.contains(&path);
        let from_end = first_scan && unseen && !self.settings.read_from_head;
        let mut offset = offset.unwrap_or(if from_end { size } else { 0 });
        if offset > size {
            tracing::warn!(
                path = %path.display(), offset, size,
                "File shrank below its checkpoint while stopped; reading it from the start."
            );
            Counters::add(&self.counters.truncations, 1);
            offset = 0;
            stream = None;
        }
        tracing::info!(path = %path.display(), offset, checkpoint = known, "Tailing file.");
        let batch_path: Arc<Path> = Arc::from(path.as_path());
        let tag: Arc<str> = Arc::from(expand_tag(&self.settings.tag, &path));
        let reader = Reader::new(file, Arc::clone(&batch_path), offset, fingerprint);
        self.files.push(Tracked {
            id,
            path,
            batch_path,
            tag,
            reader: Some(Box::new(reader)),
            fingerprint,
            stream,
            committed: offset,
            acks: AckQueue::default(),
            detached_since: None,
            rotated_since: None,
            last_growth: Instant::now(),
            at_eof: false,
            partial: false,
            verify: false,
            paused_until: None,
            failures: 0,
            done: false,
            last_error_warning: None,
        });
        Counters::add(&self.counters.files, 1);
        Counters::add(&self.counters.open_files, 1);
        self.dirty = true;
    }

    /// Reads one batch of file `i` (if it has one) and sends it.
    async fn step_file(&mut self, i: usize) -> Result<StepResult, TailError> {
        let now = Instant::now();
        let settings = &self.settings;
        let follow = self.mode == RunMode::Follow;
        let f = &mut self.files[i];
        if f.paused_until.is_some_and(|t| now < t) {
            return Ok(StepResult::Idle);
        }
        f.paused_until = None;
        let Some(mut reader) = f.reader.take() else {
            return Ok(StepResult::Idle);
        };
        let rotated_out = f
            .rotated_since
            .is_some_and(|t| now - t >= settings.rotate_wait);
        let flush = if !follow || rotated_out {
            Flush::Always
        } else if f.partial && now - f.last_growth >= settings.partial_line_timeout {
            Flush::IfIdle
        } else {
            Flush::Never
        };
        let options = StepOptions {
            flush,
            verify_fingerprint: std::mem::take(&mut f.verify),
        };
        let limits = settings.limits;
        let check = follow.then(|| (f.path.clone(), f.id));
        let (reader, step, path_state) = tokio::task::spawn_blocking(move || {
            let step = reader.step(&limits, options);
            let state = check.map(|(path, id)| path_state(&path, id));
            (reader, step, state)
        })
        .await
        .map_err(|source| TailError::Task { source })?;

        let now = Instant::now();
        let counters = &self.counters;
        Counters::add(&counters.lines, step.records.len() as u64);
        Counters::add(&counters.bytes, step.consumed);
        Counters::add(&counters.truncated_lines, step.truncated_lines);
        Counters::add(&counters.parse_errors, step.parse_errors);
        let f = &mut self.files[i];
        if step.read > 0 {
            f.last_growth = now;
        }
        f.at_eof = step.eof;
        f.partial = step.partial;
        if !step.replaced {
            f.fingerprint = reader.fingerprint;
        }
        let new_fingerprint = reader.fingerprint;
        f.reader = Some(reader);
        if let Some(error) = &step.error {
            Counters::add(&counters.file_errors, 1);
            if f.last_error_warning
                .is_none_or(|t| now - t >= READ_ERROR_WARN_INTERVAL)
            {
                tracing::warn!(path = %f.path.display(), %error, "Cannot read file; retrying.");
                f.last_error_warning = Some(now);
            }
            if !follow {
                f.done = true;
            }
        }
        if !follow && step.eof {
            f.done = true;
        }
        match path_state {
            Some(PathState::Same) => {
                f.detached_since = None;
                f.rotated_since = None;
            }
            Some(PathState::Gone | PathState::Replaced) if f.detached_since.is_none() => {
                tracing::info!(
                    path = %f.path.display(),
                    "Tailed file was renamed away or deleted; reading it to its end."
                );
                Counters::add(&counters.rotations, 1);
                f.detached_since = Some(now);
            }
            _ => {}
        }
        // A renamed file may still be written to until its writer reopens the path, which
        // creates the replacement; a deleted file (no links left) waits for nothing.
        let replaced = path_state == Some(PathState::Replaced);
        if f.detached_since.is_some() && (replaced || step.links == 0) && f.rotated_since.is_none()
        {
            f.rotated_since = Some(now);
        }
        let progressed = step.consumed > 0 || step.replaced;
        if !step.records.is_empty() {
            let stream = match &f.stream {
                Some(stream) => stream.clone(),
                None => {
                    let stream = stream_id(&self.source, f.id, f.fingerprint);
                    f.stream = Some(stream.clone());
                    self.dirty = true;
                    stream
                }
            };
            let (ack, receiver) = AckToken::new();
            let end_offset = step.end_offset;
            let batch = TailBatch {
                tag: Arc::clone(&f.tag),
                path: Arc::clone(&f.batch_path),
                records: step.records,
                ack,
                position: StreamPosition { stream, end_offset },
            };
            tokio::select! {
                biased;
                sent = self.out.send(batch) => {
                    if sent.is_err() {
                        return Err(TailError::OutputClosed);
                    }
                }
                _ = self.shutdown.clone().wait() => return Ok(StepResult::Stopped),
            }
            Counters::add(&self.counters.batches, 1);
            self.files[i].acks.push(end_offset, receiver);
        }
        if step.replaced {
            let f = &mut self.files[i];
            tracing::warn!(
                path = %f.path.display(), offset = step.end_offset,
                "Tailed file was truncated or rewritten; reading it again from the start."
            );
            Counters::add(&self.counters.truncations, 1);
            f.acks.clear();
            f.committed = 0;
            f.stream = None;
            f.fingerprint = new_fingerprint;
            f.at_eof = false;
            f.partial = false;
            self.dirty = true;
        }
        Ok(if progressed {
            StepResult::Progress
        } else {
            StepResult::Idle
        })
    }

    /// Commits delivered batches in order and handles delivery failures.
    fn poll_acks(&mut self) {
        let now = Instant::now();
        for f in &mut self.files {
            let progress = f.acks.poll();
            Counters::add(&self.counters.batches_delivered, progress.delivered);
            Counters::add(&self.counters.batches_failed, progress.not_delivered);
            if let Some(offset) = progress.committed {
                Counters::add(
                    &self.counters.committed_bytes,
                    offset.saturating_sub(f.committed),
                );
                f.committed = offset;
                f.failures = 0;
                self.dirty = true;
            }
            let Some((end_offset, status)) = progress.failed else {
                continue;
            };
            f.acks.clear();
            match self.mode {
                RunMode::Follow => {
                    f.failures = f.failures.saturating_add(1);
                    let backoff =
                        Duration::from_secs(1u64 << (f.failures - 1).min(6)).min(MAX_RETRY_BACKOFF);
                    tracing::warn!(
                        path = %f.path.display(), end_offset, committed = f.committed,
                        ?status, retry_in = ?backoff,
                        "Batch was not delivered; the file will be read again from its checkpoint."
                    );
                    if let Some(reader) = &mut f.reader {
                        reader.rewind(f.committed);
                    }
                    f.paused_until = Some(now + backoff);
                    f.at_eof = false;
                    f.partial = false;
                }
                RunMode::Once => {
                    tracing::warn!(
                        path = %f.path.display(), end_offset, committed = f.committed,
                        ?status, "Batch was not delivered; the file's checkpoint stays."
                    );
                    f.done = true;
                    self.failure.get_or_insert(TailError::Undelivered {
                        path: f.path.clone(),
                        end_offset,
                        committed_offset: f.committed,
                        status,
                    });
                }
            }
        }
    }

    /// Forgets files that were rotated away or deleted, once `rotate_wait` has passed and
    /// they are read and acknowledged to their end.
    fn forget_drained(&mut self) {
        let now = Instant::now();
        let rotate_wait = self.settings.rotate_wait;
        let before = self.files.len();
        self.files.retain(|f| {
            let forget = f.rotated_since.is_some_and(|t| now - t >= rotate_wait)
                && f.at_eof
                && !f.partial
                && f.acks.is_empty();
            if forget {
                tracing::info!(path = %f.path.display(), "Stopped tailing rotated or deleted file.");
            }
            !forget
        });
        let forgotten = (before - self.files.len()) as u64;
        if forgotten > 0 {
            Counters::sub(&self.counters.open_files, forgotten);
            self.dirty = true;
        }
    }

    /// Writes the checkpoint file if anything changed (and, unless `force`, the last write is
    /// at least [`CHECKPOINT_INTERVAL`] old). Failures are logged and retried.
    async fn write_checkpoint(&mut self, force: bool) {
        if !self.dirty {
            return;
        }
        if !force
            && self
                .last_write
                .is_some_and(|t| t.elapsed() < CHECKPOINT_INTERVAL)
        {
            return;
        }
        let mut entries: Vec<PosEntry> = self
            .files
            .iter()
            .map(|f| PosEntry {
                path: f.path.to_string_lossy().into_owned(),
                dev: f.id.dev,
                inode: f.id.ino,
                fingerprint: f.fingerprint.hash,
                fingerprint_len: f.fingerprint.len,
                offset: f.committed,
                stream: f.stream.clone(),
            })
            .chain(self.known.values().cloned())
            .collect();
        entries.sort_by(|a, b| (&a.path, a.dev, a.inode).cmp(&(&b.path, b.dev, b.inode)));
        let path = self.pos_file.clone();
        let source = self.source.clone();
        self.dirty = false;
        self.last_write = Some(Instant::now());
        let result = tokio::task::spawn_blocking(move || checkpoint::save(&path, &source, entries))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        match result {
            Ok(()) => Counters::add(&self.counters.checkpoint_writes, 1),
            Err(error) => {
                Counters::add(&self.counters.checkpoint_errors, 1);
                tracing::warn!(
                    path = %self.pos_file.display(), %error,
                    "Cannot write the tail checkpoint file; retrying."
                );
                self.dirty = true;
            }
        }
    }
}
