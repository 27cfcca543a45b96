//! The public [`Buffer`] handle.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use logferry_core::{AckReceiver, AckToken, Timestamp};
use tokio::sync::Notify;

use crate::chunk::Chunk;
use crate::clock::{Clock, Slicer, SystemClock};
use crate::inner::{Inner, Prepared, State};
use crate::recover::recover;
use crate::retry::RetryPolicy;
use crate::state::{STATE_FILE, load_state};
use crate::{BufferConfig, BufferError, BufferType, FsyncMode};

/// Longest sleep of [`Buffer::next_ready`] between looks at the clock (which may be a test
/// clock that moves without notice).
const MAX_POLL: Duration = Duration::from_millis(250);

/// Name of the lock file in the buffer directory.
const LOCK_FILE: &str = "lock";

/// One record to append: its time (which picks the time slice) and its line, without the
/// trailing newline.
#[derive(Clone, Copy, Debug)]
pub struct BufferRecord<'a> {
    /// The record's event time.
    pub time: Timestamp,
    /// The formatted record; a `\n` inside it is replaced by a space.
    pub line: &'a [u8],
}

/// "After this append, `stream` is durably stored up to `offset`" (for the tail source's
/// exactly-once restart).
#[derive(Clone, Copy, Debug)]
pub struct SourcePosition<'a> {
    /// The stream, e.g. a file's path or identity.
    pub stream: &'a str,
    /// The offset up to which the stream's records are in the buffer.
    pub offset: u64,
}

/// Counts of what a buffer holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BufferStats {
    /// Chunks still taking records.
    pub open_chunks: usize,
    /// Sealed chunks, waiting, retrying or in flight.
    pub sealed_chunks: usize,
    /// Sealed chunks handed out and not yet given back.
    pub in_flight_chunks: usize,
    /// Sealed chunks waiting for a retry after a failed upload.
    pub retrying_chunks: usize,
    /// Chunks given up (moved to `failed/`) since the buffer was opened.
    pub failed_chunks: u64,
    /// Records in all chunks.
    pub records: u64,
    /// Bytes in all chunks (compared with `total_limit_size`).
    pub bytes: u64,
}

/// The options of a buffer, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) kind: BufferType,
    pub(crate) dir: PathBuf,
    pub(crate) slicer: Slicer,
    pub(crate) timekey_wait: Duration,
    pub(crate) chunk_limit_size: u64,
    pub(crate) chunk_limit_records: Option<u64>,
    pub(crate) total_limit_size: u64,
    pub(crate) flush_interval: Option<Duration>,
    pub(crate) fsync: FsyncMode,
    pub(crate) retry: RetryPolicy,
}

#[derive(Debug)]
pub(crate) struct Shared {
    settings: Settings,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    /// Signalled when bytes are freed.
    space: Notify,
    /// Signalled when a chunk may have become ready.
    ready: Notify,
    _lock: File,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a chunk that was handed out and dropped back in line.
    pub(crate) fn requeue(&self, id: [u8; 16]) {
        self.lock().requeue(id, self.clock.now());
        self.ready.notify_waiters();
    }

    /// Writes one append and fsyncs it.
    fn write(&self, batch: Prepared) -> Result<(), BufferError> {
        let (syncs, sealed) = {
            let mut inner = self.lock();
            let before = inner.ready_len();
            let syncs = inner.append(&self.settings, self.clock.now(), batch);
            (syncs, inner.ready_len() > before)
        };
        if sealed {
            self.ready.notify_waiters();
        }
        for (file, path) in syncs? {
            file.sync_data()
                .map_err(|e| BufferError::io("fsync", path, e))?;
        }
        Ok(())
    }
}

/// A buffer of time-keyed chunks: durable files (`type = "file"`) or memory.
///
/// Cheap to clone; clones share the buffer. See the crate documentation for the life of a
/// chunk and the guarantees.
#[derive(Clone)]
pub struct Buffer {
    shared: Arc<Shared>,
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("type", &self.shared.settings.kind)
            .field("path", &self.shared.settings.dir)
            .finish_non_exhaustive()
    }
}

impl Buffer {
    /// Opens (creating it if needed) the buffer in `config.path`, or in `default_dir` when
    /// that is unset, with the system clock.
    ///
    /// A file buffer loads the chunks a previous run left: open ones are sealed (a partly
    /// written last line is cut away first) and every chunk is offered for upload again.
    /// The directory is locked: a second buffer on it fails with [`BufferError::Locked`].
    pub fn open(config: &BufferConfig, default_dir: &Path) -> Result<Buffer, BufferError> {
        Self::open_with_clock(config, default_dir, Arc::new(SystemClock))
    }

    /// [`Buffer::open`] with another clock (for tests: [`crate::ManualClock`]).
    pub fn open_with_clock(
        config: &BufferConfig,
        default_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Buffer, BufferError> {
        config.validate()?;
        let dir = config
            .path
            .clone()
            .unwrap_or_else(|| default_dir.to_owned());
        fs::create_dir_all(&dir).map_err(|e| BufferError::io("create", &dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| BufferError::io("open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(BufferError::Locked { path: dir }),
            Err(TryLockError::Error(e)) => return Err(BufferError::io("lock", &lock_path, e)),
        }
        let settings = Settings {
            kind: config.buffer_type,
            dir,
            slicer: Slicer::new(config.timekey.as_duration(), config.timekey_use_utc),
            timekey_wait: config.timekey_wait.as_duration(),
            chunk_limit_size: config.effective_chunk_limit_size(),
            chunk_limit_records: config.chunk_limit_records,
            total_limit_size: config.effective_total_limit_size(),
            flush_interval: config.flush_interval.map(|d| d.as_duration()),
            fsync: config.fsync,
            retry: config.retry_policy(),
        };
        let (positions, seqs) = load_state(&settings.dir.join(STATE_FILE))?;
        let mut inner = Inner::default();
        inner.seqs = seqs;
        if settings.kind == BufferType::File {
            inner.positions = positions;
            recover(&settings, &mut inner, clock.now())?;
        }
        let shared = Shared {
            settings,
            clock,
            inner: Mutex::new(inner),
            space: Notify::new(),
            ready: Notify::new(),
            _lock: lock,
        };
        Ok(Buffer {
            shared: Arc::new(shared),
        })
    }

    /// The buffer's directory.
    pub fn path(&self) -> &Path {
        &self.shared.settings.dir
    }

    /// Appends records of one tag; `position` (if any) is stored with them.
    ///
    /// Each record goes to the open chunk of `(tag, its time slice)`; a chunk that would grow
    /// past `chunk_limit_size` / `chunk_limit_records` is sealed and a new one started. A file
    /// buffer has written (and, unless `fsync = "never"`, fsynced) the records and the position
    /// when this returns; its receiver is already `Delivered`. A memory buffer's receiver
    /// resolves `Delivered` once every chunk holding these records was
    /// [completed](Buffer::complete) (`Errored` or `Rejected` if they were lost or given up).
    ///
    /// While the buffer holds `total_limit_size` bytes or more, this waits (sealing the open
    /// chunks so that they can be uploaded) until [`Buffer::complete`] frees space. It is
    /// cancel-safe: cancelled while waiting, nothing was written; cancelled later, the write
    /// finishes in the background and its records are delivered (at least once).
    ///
    /// On error, records of this call may already be in chunks (and will be delivered); the
    /// caller should treat the call as not acknowledged and may send the records again.
    pub async fn append(
        &self,
        tag: &str,
        records: &[BufferRecord<'_>],
        position: Option<SourcePosition<'_>>,
    ) -> Result<AckReceiver, BufferError> {
        self.wait_for_space().await;
        let s = &self.shared.settings;
        let (token, receiver) = AckToken::new();
        let ack = (s.kind == BufferType::Memory).then_some(token);
        let batch = prepare(s, tag, records, position, ack);
        match s.kind {
            BufferType::Memory => self.shared.write(batch)?,
            BufferType::File => {
                let shared = self.shared.clone();
                tokio::task::spawn_blocking(move || shared.write(batch))
                    .await
                    .map_err(|e| BufferError::io("write", &s.dir, std::io::Error::other(e)))??;
            }
        }
        Ok(receiver)
    }

    async fn wait_for_space(&self) {
        let mut logged = false;
        loop {
            let mut freed = pin!(self.shared.space.notified());
            freed.as_mut().enable();
            {
                let s = &self.shared.settings;
                let mut inner = self.shared.lock();
                if inner.bytes < s.total_limit_size {
                    return;
                }
                if inner.has_open() {
                    // Sealed chunks can be uploaded, which frees space.
                    if let Err(e) = inner.seal_all(s, self.shared.clock.now()) {
                        tracing::error!(error = %e, "Cannot seal chunks of a full buffer.");
                    }
                    drop(inner);
                    self.shared.ready.notify_waiters();
                }
            }
            if !logged {
                logged = true;
                tracing::warn!(
                    path = %self.shared.settings.dir.display(),
                    limit = self.shared.settings.total_limit_size,
                    "Buffer is full (total_limit_size); waiting for uploads."
                );
            }
            freed.await;
        }
    }

    /// Waits until a sealed chunk is due and hands it out ("in flight"). Chunks are sealed by
    /// time here, as the clock passes `slice end + timekey_wait` or `flush_interval`.
    pub async fn next_ready(&self) -> Chunk {
        loop {
            let mut notified = pin!(self.shared.ready.notified());
            notified.as_mut().enable();
            let wait = {
                let now = self.shared.clock.now();
                let mut inner = self.shared.lock();
                inner.seal_due(&self.shared.settings, now);
                if let Some(chunk) = inner.take_ready(now, Arc::downgrade(&self.shared)) {
                    return chunk;
                }
                inner.next_wakeup(now)
            };
            let wait = wait
                .unwrap_or(MAX_POLL)
                .clamp(Duration::from_millis(1), MAX_POLL);
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    /// Hands out a sealed chunk that is due, if there is one (sealing by time first).
    pub fn try_next_ready(&self) -> Option<Chunk> {
        let now = self.shared.clock.now();
        let mut inner = self.shared.lock();
        inner.seal_due(&self.shared.settings, now);
        inner.take_ready(now, Arc::downgrade(&self.shared))
    }

    /// Seals every open chunk now (at shutdown with `flush_at_shutdown`, or for `--once`).
    pub fn seal_all(&self) -> Result<(), BufferError> {
        let result = self
            .shared
            .lock()
            .seal_all(&self.shared.settings, self.shared.clock.now());
        self.shared.ready.notify_waiters();
        result
    }

    fn owns(&self, chunk: &Chunk) -> bool {
        std::ptr::eq(chunk.owner.as_ptr(), Arc::as_ptr(&self.shared))
    }

    /// Deletes a chunk whose upload was acknowledged, first merging its source positions and
    /// sequence number into the buffer's state file.
    ///
    /// An error while saving the state puts the chunk back in line (it will be uploaded again,
    /// to the same key). An error while removing its files is returned after the chunk was
    /// forgotten; a leftover chunk is offered again after a restart.
    pub fn complete(&self, mut chunk: Chunk) -> Result<(), BufferError> {
        if !self.owns(&chunk) {
            return Err(BufferError::UnknownChunk {
                id: chunk.meta.id_hex(),
            });
        }
        chunk.disarm();
        let result = self.shared.lock().complete(
            &self.shared.settings,
            chunk.meta.id,
            self.shared.clock.now(),
        );
        self.shared.space.notify_waiters();
        self.shared.ready.notify_waiters();
        result
    }

    /// Gives back a chunk whose upload failed: it is offered again after the retry delay
    /// (a warning with the attempt number and the delay is logged), or, with
    /// `retry_forever = false` once `retry_max_times` retries failed, moved to the `failed/`
    /// subdirectory (an error is logged; a memory chunk's records are dropped).
    pub fn retry_later(&self, mut chunk: Chunk, error: &(dyn std::error::Error + 'static)) {
        if !self.owns(&chunk) {
            tracing::warn!(chunk = %chunk.meta.id_hex(), "A chunk to retry is not from this buffer.");
            return;
        }
        chunk.disarm();
        self.shared.lock().retry_later(
            &self.shared.settings,
            chunk.meta.id,
            self.shared.clock.now(),
            error,
        );
        self.shared.space.notify_waiters();
        self.shared.ready.notify_waiters();
    }

    /// The highest offset stored per source stream, across every chunk and the state file
    /// (file buffers; a memory buffer tracks no positions and returns an empty map). Streams
    /// not updated for 30 days are forgotten.
    pub fn positions(&self) -> HashMap<String, u64> {
        match self.shared.settings.kind {
            BufferType::File => self.shared.lock().positions.offsets(),
            BufferType::Memory => HashMap::new(),
        }
    }

    /// Counts of chunks, records and bytes.
    pub fn stats(&self) -> BufferStats {
        let inner = self.shared.lock();
        let mut stats = BufferStats {
            failed_chunks: inner.failed,
            records: inner.records,
            bytes: inner.bytes,
            ..BufferStats::default()
        };
        for entry in inner.chunks.values() {
            match entry.state {
                State::Open { .. } => stats.open_chunks += 1,
                State::Ready { .. } => {
                    stats.sealed_chunks += 1;
                    if entry.attempt > 0 {
                        stats.retrying_chunks += 1;
                    }
                }
                State::InFlight => {
                    stats.sealed_chunks += 1;
                    stats.in_flight_chunks += 1;
                }
            }
        }
        stats
    }

    /// Whether nothing at all is buffered (no open, sealed or in-flight chunk).
    pub fn is_empty(&self) -> bool {
        self.shared.lock().chunks.is_empty()
    }
}

/// Copies the lines into one block and computes each record's slice, outside the lock.
fn prepare(
    s: &Settings,
    tag: &str,
    records: &[BufferRecord<'_>],
    position: Option<SourcePosition<'_>>,
    ack: Option<AckToken>,
) -> Prepared {
    let total: usize = records.iter().map(|r| r.line.len() + 1).sum();
    let mut data = Vec::with_capacity(total);
    let mut slices = Vec::with_capacity(records.len());
    let timekey = s.slicer.timekey_secs();
    let mut cached: Option<(i64, i64)> = None;
    for record in records {
        let secs = record.time.unix_seconds();
        let start = match cached {
            Some((start, end)) if start <= secs && secs < end => start,
            _ => {
                let start = s.slicer.slice_start(record.time);
                cached = Some((start, start.saturating_add(timekey)));
                start
            }
        };
        let from = data.len();
        data.extend_from_slice(record.line);
        if memchr::memchr(b'\n', record.line).is_some() {
            for b in &mut data[from..] {
                if *b == b'\n' {
                    *b = b' ';
                }
            }
        }
        data.push(b'\n');
        slices.push((start, data.len()));
    }
    Prepared {
        tag: tag.to_owned(),
        data,
        records: slices,
        position: position.map(|p| (p.stream.to_owned(), p.offset)),
        ack,
    }
}
