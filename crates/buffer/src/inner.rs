//! The buffer's state machine: chunks, their states (open, ready, in flight) and the file
//! operations that move them along. Every method runs under the buffer's lock.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use logferry_core::{AckStatus, AckToken, Timestamp};

use crate::buffer::{Settings, Shared};
use crate::chunk::{Chunk, ChunkBody};
use crate::clock::{add, slice_timestamp, until};
use crate::meta::{
    FileKind, encode_meta, file_name, open_append, remove_if_exists, sync_parent, write_atomic,
};
use crate::state::{
    POSITION_RETENTION_SECS, Position, Positions, STATE_FILE, SeqCounters, encode_commit_line,
    save_state,
};
use crate::{BufferError, BufferType, ChunkMeta, FsyncMode};

pub(crate) type Id = [u8; 16];

/// Name of the subdirectory that receives chunks given up after `retry_max_times`.
pub(crate) const FAILED_DIR: &str = "failed";

/// How long a chunk whose sealing failed stays open before sealing is tried again.
const SEAL_RETRY: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Open { deadline: Timestamp },
    Ready { due: Timestamp, order: u64 },
    InFlight,
}

/// The acknowledgements of the memory-buffer appends whose records are in a chunk. Unless the
/// chunk is completed, dropping them reports `Errored` (the records were lost).
#[derive(Debug, Default)]
pub(crate) struct AckSet {
    tokens: Vec<AckToken>,
    last_append: u64,
    delivered: bool,
}

impl Drop for AckSet {
    fn drop(&mut self) {
        if !self.delivered {
            for token in &self.tokens {
                token.update(AckStatus::Errored);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum Store {
    Disk {
        data_path: PathBuf,
        data: Option<Arc<File>>,
        pos: Option<Arc<File>>,
    },
    Memory {
        data: Arc<Vec<u8>>,
        acks: AckSet,
    },
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) meta: ChunkMeta,
    pub(crate) state: State,
    pub(crate) attempt: u32,
    pub(crate) positions: Positions,
    pub(crate) store: Store,
}

/// The records of one append, copied and sliced before the lock is taken.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) tag: String,
    /// The lines, each followed by `\n`.
    pub(crate) data: Vec<u8>,
    /// Per record: its slice start and the end of its line in `data`.
    pub(crate) records: Vec<(i64, usize)>,
    pub(crate) position: Option<(String, u64)>,
    pub(crate) ack: Option<AckToken>,
}

/// Consecutive records going to the same chunk, written with one `write`.
#[derive(Clone, Copy, Debug)]
struct Run {
    id: Id,
    start: usize,
    end: usize,
    records: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) chunks: HashMap<Id, Entry>,
    open: HashMap<String, HashMap<i64, Id>>,
    deadlines: BTreeSet<(Timestamp, Id)>,
    ready: BTreeSet<(Timestamp, u64, Id)>,
    next_order: u64,
    next_append: u64,
    pub(crate) seqs: SeqCounters,
    pub(crate) positions: Positions,
    pub(crate) bytes: u64,
    pub(crate) records: u64,
    pub(crate) failed: u64,
}

impl Inner {
    /// Adds a sealed chunk found on disk when the buffer was opened.
    pub(crate) fn insert_recovered(&mut self, entry: Entry, now: Timestamp) {
        let id = entry.meta.id;
        self.bytes += entry.meta.bytes;
        self.records += entry.meta.records;
        self.chunks.insert(id, entry);
        self.make_ready(id, now);
    }

    fn make_ready(&mut self, id: Id, due: Timestamp) {
        let order = self.next_order;
        self.next_order += 1;
        if let Some(entry) = self.chunks.get_mut(&id) {
            entry.state = State::Ready { due, order };
            self.ready.insert((due, order, id));
        }
    }

    /// Writes one append's records. Returns the files to fsync before acknowledging it.
    pub(crate) fn append(
        &mut self,
        s: &Settings,
        now: Timestamp,
        batch: Prepared,
    ) -> Result<Vec<(Arc<File>, PathBuf)>, BufferError> {
        self.seal_due(s, now);
        self.next_append += 1;
        let append_no = self.next_append;
        let mut syncs: Vec<(Arc<File>, PathBuf)> = Vec::new();
        // Chunks this append fills up are sealed once its records are committed: a sealed
        // chunk never holds records of an append that did not finish.
        let mut full = Vec::new();
        let result = self.write_records(s, now, &batch, append_no, &mut syncs, &mut full);
        for id in full {
            if let Err(e) = self.seal(s, id, now) {
                tracing::error!(error = %e, "Cannot seal a full chunk; trying again shortly.");
            }
        }
        result.map(|()| syncs)
    }

    /// Writes the records of an append, then its commit line (with its source position) to
    /// the sidecar of every chunk it wrote to. If the process dies before a commit line is
    /// written, the next open cuts the chunks back to what earlier lines commit, and the
    /// source, whose position was not recorded either, sends the records again: a record is
    /// stored once or not at all.
    fn write_records(
        &mut self,
        s: &Settings,
        now: Timestamp,
        batch: &Prepared,
        append_no: u64,
        syncs: &mut Vec<(Arc<File>, PathBuf)>,
        full: &mut Vec<Id>,
    ) -> Result<(), BufferError> {
        let mut run: Option<Run> = None;
        let mut touched: Vec<Id> = Vec::new();
        let mut start = 0;
        for &(slice, end) in &batch.records {
            let len = (end - start) as u64;
            let id = self.target(s, now, batch, slice, len, &mut run, syncs, append_no, full)?;
            match &mut run {
                Some(r) if r.id == id => {
                    r.end = end;
                    r.records += 1;
                }
                _ => {
                    if let Some(r) = run.take() {
                        self.flush_run(s, r, batch, syncs, append_no, now)?;
                    }
                    run = Some(Run {
                        id,
                        start,
                        end,
                        records: 1,
                    });
                }
            }
            if !touched.contains(&id) {
                touched.push(id);
            }
            let (bytes, records) = self.counts(id, run.as_ref());
            let full_records = s.chunk_limit_records.is_some_and(|limit| records >= limit);
            if bytes >= s.chunk_limit_size || full_records {
                if let Some(r) = run.take() {
                    self.flush_run(s, r, batch, syncs, append_no, now)?;
                }
                self.retire(id, full);
            }
            start = end;
        }
        if let Some(r) = run.take() {
            self.flush_run(s, r, batch, syncs, append_no, now)?;
        }
        let position = match (&batch.position, s.kind) {
            (Some((stream, offset)), BufferType::File) => Some((
                stream.as_str(),
                Position {
                    offset: *offset,
                    updated: now.unix_seconds(),
                },
            )),
            _ => None,
        };
        if let Some((stream, pos)) = position {
            self.positions.merge(stream, pos);
        }
        if touched.is_empty() {
            if position.is_some() {
                self.save_state(s, now)?;
            }
            return Ok(());
        }
        if s.kind == BufferType::File {
            let lengths: Vec<(Id, u64)> = touched
                .iter()
                .filter_map(|id| self.chunks.get(id).map(|e| (*id, e.meta.bytes)))
                .collect();
            let line = encode_commit_line(position, &lengths, now.unix_seconds());
            for id in &touched {
                self.write_commit(s, *id, &line, position, syncs)?;
            }
        }
        Ok(())
    }

    /// The open chunk that takes a record of `len` bytes for `(tag, slice)`, retiring a full
    /// one (to be sealed after the append) and creating a new one as needed.
    #[allow(clippy::too_many_arguments)]
    fn target(
        &mut self,
        s: &Settings,
        now: Timestamp,
        batch: &Prepared,
        slice: i64,
        len: u64,
        run: &mut Option<Run>,
        syncs: &mut Vec<(Arc<File>, PathBuf)>,
        append_no: u64,
        full: &mut Vec<Id>,
    ) -> Result<Id, BufferError> {
        let existing = self
            .open
            .get(&batch.tag)
            .and_then(|m| m.get(&slice))
            .copied();
        let Some(id) = existing else {
            return self.create(s, now, &batch.tag, slice);
        };
        let (bytes, records) = self.counts(id, run.as_ref());
        let over_size = bytes + len > s.chunk_limit_size;
        let over_records = s
            .chunk_limit_records
            .is_some_and(|limit| records + 1 > limit);
        if records == 0 || !(over_size || over_records) {
            return Ok(id);
        }
        if let Some(r) = run.take_if(|r| r.id == id) {
            self.flush_run(s, r, batch, syncs, append_no, now)?;
        }
        self.retire(id, full);
        self.create(s, now, &batch.tag, slice)
    }

    /// Takes a full chunk out of the open ones (so that no further record goes to it) and
    /// notes it for sealing at the end of the append.
    fn retire(&mut self, id: Id, full: &mut Vec<Id>) {
        let Some(entry) = self.chunks.get(&id) else {
            return;
        };
        let slice = entry.meta.timekey.unix_seconds();
        if let Some(m) = self.open.get_mut(&entry.meta.tag) {
            if m.get(&slice) == Some(&id) {
                m.remove(&slice);
            }
            if m.is_empty() {
                self.open.remove(&entry.meta.tag);
            }
        }
        if !full.contains(&id) {
            full.push(id);
        }
    }

    /// Bytes and records of a chunk, counting the pending run.
    fn counts(&self, id: Id, run: Option<&Run>) -> (u64, u64) {
        let (mut bytes, mut records) = self
            .chunks
            .get(&id)
            .map_or((0, 0), |e| (e.meta.bytes, e.meta.records));
        if let Some(r) = run.filter(|r| r.id == id) {
            bytes += (r.end - r.start) as u64;
            records += r.records;
        }
        (bytes, records)
    }

    fn flush_run(
        &mut self,
        s: &Settings,
        run: Run,
        batch: &Prepared,
        syncs: &mut Vec<(Arc<File>, PathBuf)>,
        append_no: u64,
        now: Timestamp,
    ) -> Result<(), BufferError> {
        let Some(entry) = self.chunks.get_mut(&run.id) else {
            return Ok(());
        };
        let bytes = &batch.data[run.start..run.end];
        let mut failure = None;
        match &mut entry.store {
            Store::Disk {
                data_path,
                data: Some(file),
                ..
            } => {
                if let Err(e) = (&**file).write_all(bytes) {
                    // Cut the partial write away; if even that fails, seal the chunk at its
                    // last complete record (readers stop at `meta.bytes`).
                    let cut = file.set_len(entry.meta.bytes).is_ok();
                    failure = Some((BufferError::io("write", data_path.clone(), e), cut));
                } else if s.fsync != FsyncMode::Never
                    && !syncs.iter().any(|(f, _)| Arc::ptr_eq(f, file))
                {
                    syncs.push((file.clone(), data_path.clone()));
                }
            }
            Store::Disk {
                data_path,
                data: None,
                ..
            } => {
                let e = std::io::Error::other("the chunk is no longer open");
                return Err(BufferError::io("write", data_path.clone(), e));
            }
            Store::Memory { data, acks } => {
                Arc::make_mut(data).extend_from_slice(bytes);
                if let Some(token) = &batch.ack
                    && acks.last_append != append_no
                {
                    acks.last_append = append_no;
                    acks.tokens.push(token.clone());
                }
            }
        }
        if let Some((err, cut)) = failure {
            if !cut && let Err(seal_err) = self.seal(s, run.id, now) {
                tracing::error!(error = %seal_err, "Cannot seal a chunk after a failed write.");
            }
            return Err(err);
        }
        let len = (run.end - run.start) as u64;
        entry.meta.bytes += len;
        entry.meta.records += run.records;
        self.bytes += len;
        self.records += run.records;
        Ok(())
    }

    /// Appends an append's commit line to a chunk's sidecar.
    fn write_commit(
        &mut self,
        s: &Settings,
        id: Id,
        line: &[u8],
        position: Option<(&str, Position)>,
        syncs: &mut Vec<(Arc<File>, PathBuf)>,
    ) -> Result<(), BufferError> {
        let Some(entry) = self.chunks.get_mut(&id) else {
            return Ok(());
        };
        if let Some((stream, pos)) = position {
            entry.positions.merge(stream, pos);
        }
        let Store::Disk { pos: pos_file, .. } = &mut entry.store else {
            return Ok(());
        };
        let path = s.dir.join(file_name(FileKind::Positions, &id));
        let file = match pos_file {
            Some(file) => file.clone(),
            None => {
                let file = Arc::new(open_append(&path)?);
                sync_parent(&path, s.fsync)?;
                *pos_file = Some(file.clone());
                file
            }
        };
        (&*file)
            .write_all(line)
            .map_err(|e| BufferError::io("write", &path, e))?;
        if s.fsync != FsyncMode::Never && !syncs.iter().any(|(f, _)| Arc::ptr_eq(f, &file)) {
            syncs.push((file, path));
        }
        Ok(())
    }

    fn create(
        &mut self,
        s: &Settings,
        now: Timestamp,
        tag: &str,
        slice: i64,
    ) -> Result<Id, BufferError> {
        let mut id = *uuid::Uuid::new_v4().as_bytes();
        while self.chunks.contains_key(&id) {
            id = *uuid::Uuid::new_v4().as_bytes();
        }
        let seq = self.seqs.allocate();
        let timekey = slice_timestamp(slice);
        let meta = ChunkMeta {
            id,
            tag: tag.to_owned(),
            timekey,
            seq,
            created_at: now,
            sealed_at: None,
            records: 0,
            bytes: 0,
        };
        let slice_end = add(
            timekey,
            Duration::from_secs(s.slicer.timekey_secs().unsigned_abs()),
        );
        let mut deadline = add(slice_end, s.timekey_wait);
        if let Some(interval) = s.flush_interval {
            deadline = deadline.min(add(now, interval));
        }
        let store = match s.kind {
            BufferType::File => {
                let meta_path = s.dir.join(file_name(FileKind::Meta, &id));
                write_atomic(&meta_path, &encode_meta(&meta), s.fsync)?;
                // The sidecar starts with a commit of length 0, before any data: at recovery
                // the chunk's records count only as far as commit lines say.
                let pos_path = s.dir.join(file_name(FileKind::Positions, &id));
                let data_path = s.dir.join(file_name(FileKind::OpenData, &id));
                let marker = encode_commit_line(None, &[(id, 0)], now.unix_seconds());
                let files = open_append(&pos_path).and_then(|mut pos| {
                    pos.write_all(&marker)
                        .map_err(|e| BufferError::io("write", &pos_path, e))?;
                    let data = open_append(&data_path)?;
                    sync_parent(&data_path, s.fsync)?;
                    Ok((pos, data))
                });
                let (pos, data) = match files {
                    Ok(files) => files,
                    Err(e) => {
                        let _ = remove_if_exists(&data_path);
                        let _ = remove_if_exists(&pos_path);
                        let _ = remove_if_exists(&meta_path);
                        return Err(e);
                    }
                };
                Store::Disk {
                    data_path,
                    data: Some(Arc::new(data)),
                    pos: Some(Arc::new(pos)),
                }
            }
            BufferType::Memory => {
                // Memory chunks are lost on a crash, but their sequence numbers must not be
                // reused by the next run: the object of this chunk may already be uploaded.
                self.save_state(s, now)?;
                Store::Memory {
                    data: Arc::new(Vec::new()),
                    acks: AckSet::default(),
                }
            }
        };
        tracing::debug!(chunk = %meta.id_hex(), tag, seq, timekey = %timekey, "Created a chunk.");
        self.chunks.insert(
            id,
            Entry {
                meta,
                state: State::Open { deadline },
                attempt: 0,
                positions: Positions::default(),
                store,
            },
        );
        self.open
            .entry(tag.to_owned())
            .or_default()
            .insert(slice, id);
        self.deadlines.insert((deadline, id));
        Ok(id)
    }

    /// Seals an open chunk: fsyncs it, writes its final metadata and renames it to its sealed
    /// name. On failure the chunk stays open and sealing is retried a little later.
    pub(crate) fn seal(&mut self, s: &Settings, id: Id, now: Timestamp) -> Result<(), BufferError> {
        let Some(entry) = self.chunks.get_mut(&id) else {
            return Ok(());
        };
        let State::Open { deadline } = entry.state else {
            return Ok(());
        };
        let slice = entry.meta.timekey.unix_seconds();
        self.deadlines.remove(&(deadline, id));
        if let Some(m) = self.open.get_mut(&entry.meta.tag) {
            if m.get(&slice) == Some(&id) {
                m.remove(&slice);
            }
            if m.is_empty() {
                self.open.remove(&entry.meta.tag);
            }
        }
        if let Err(e) = seal_store(s, entry, now) {
            let retry_at = add(now, SEAL_RETRY);
            entry.state = State::Open { deadline: retry_at };
            self.deadlines.insert((retry_at, id));
            self.open
                .entry(entry.meta.tag.clone())
                .or_default()
                .entry(slice)
                .or_insert(id);
            return Err(e);
        }
        tracing::debug!(
            chunk = %entry.meta.id_hex(),
            tag = %entry.meta.tag,
            seq = entry.meta.seq,
            records = entry.meta.records,
            bytes = entry.meta.bytes,
            "Sealed a chunk."
        );
        self.make_ready(id, now);
        Ok(())
    }

    /// Seals every open chunk whose deadline has passed. Failures are logged (and retried).
    pub(crate) fn seal_due(&mut self, s: &Settings, now: Timestamp) -> bool {
        let due: Vec<Id> = self
            .deadlines
            .iter()
            .take_while(|(d, _)| *d <= now)
            .map(|(_, id)| *id)
            .collect();
        for id in &due {
            if let Err(e) = self.seal(s, *id, now) {
                tracing::error!(error = %e, "Cannot seal a chunk; trying again shortly.");
            }
        }
        !due.is_empty()
    }

    /// Seals every open chunk; returns the first error.
    pub(crate) fn seal_all(&mut self, s: &Settings, now: Timestamp) -> Result<(), BufferError> {
        let open: Vec<Id> = self.deadlines.iter().map(|(_, id)| *id).collect();
        let mut first = Ok(());
        for id in open {
            if let Err(e) = self.seal(s, id, now) {
                tracing::error!(error = %e, "Cannot seal a chunk.");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Number of sealed chunks waiting to be handed out.
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub(crate) fn has_open(&self) -> bool {
        !self.deadlines.is_empty()
    }

    /// Hands out the first chunk that is due.
    pub(crate) fn take_ready(&mut self, now: Timestamp, owner: Weak<Shared>) -> Option<Chunk> {
        let &(due, order, id) = self.ready.first()?;
        if due > now {
            return None;
        }
        self.ready.remove(&(due, order, id));
        let entry = self.chunks.get_mut(&id)?;
        entry.state = State::InFlight;
        let body = match &entry.store {
            Store::Disk { data_path, .. } => ChunkBody::File(data_path.clone()),
            Store::Memory { data, .. } => ChunkBody::Memory(data.clone()),
        };
        Some(Chunk {
            meta: entry.meta.clone(),
            attempt: entry.attempt,
            body,
            owner,
            armed: true,
        })
    }

    /// How long until a chunk becomes due or an open chunk must be sealed.
    pub(crate) fn next_wakeup(&self, now: Timestamp) -> Option<Duration> {
        let ready = self.ready.first().map(|(due, _, _)| *due);
        let seal = self.deadlines.first().map(|(d, _)| *d);
        let next = match (ready, seal) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(until(now, next))
    }

    /// Puts a chunk handed out but dropped back in line.
    pub(crate) fn requeue(&mut self, id: Id, now: Timestamp) {
        if self
            .chunks
            .get(&id)
            .is_some_and(|e| e.state == State::InFlight)
        {
            self.make_ready(id, now);
        }
    }

    fn in_flight(&self, id: &Id) -> Result<&Entry, BufferError> {
        match self.chunks.get(id) {
            Some(e) if e.state == State::InFlight => Ok(e),
            _ => Err(BufferError::UnknownChunk {
                id: crate::meta::hex(id),
            }),
        }
    }

    /// Deletes an uploaded chunk, after merging its positions and sequence number into the
    /// state file.
    pub(crate) fn complete(
        &mut self,
        s: &Settings,
        id: Id,
        now: Timestamp,
    ) -> Result<(), BufferError> {
        self.in_flight(&id)?;
        if s.kind == BufferType::File
            && let Err(e) = self.save_state(s, now)
        {
            self.make_ready(id, add(now, SEAL_RETRY));
            return Err(e);
        }
        let Some(mut entry) = self.chunks.remove(&id) else {
            return Ok(());
        };
        self.forget(&entry);
        tracing::debug!(chunk = %entry.meta.id_hex(), tag = %entry.meta.tag, "Completed a chunk.");
        match &mut entry.store {
            Store::Disk { data_path, .. } => {
                let mut result = Ok(());
                for path in [
                    data_path.clone(),
                    s.dir.join(file_name(FileKind::Positions, &id)),
                    s.dir.join(file_name(FileKind::Meta, &id)),
                ] {
                    if let Err(e) = remove_if_exists(&path)
                        && result.is_ok()
                    {
                        result = Err(BufferError::io("remove", path, e));
                    }
                }
                result.and_then(|()| sync_parent(data_path, s.fsync))
            }
            Store::Memory { acks, .. } => {
                acks.delivered = true;
                Ok(())
            }
        }
    }

    fn forget(&mut self, entry: &Entry) {
        self.bytes = self.bytes.saturating_sub(entry.meta.bytes);
        self.records = self.records.saturating_sub(entry.meta.records);
    }

    /// Schedules an in-flight chunk again after the backoff, or gives it up.
    pub(crate) fn retry_later(
        &mut self,
        s: &Settings,
        id: Id,
        now: Timestamp,
        error: &(dyn std::error::Error + 'static),
    ) {
        let Ok(entry) = self.in_flight(&id) else {
            tracing::warn!(chunk = %crate::meta::hex(&id), "A chunk to retry is not in flight.");
            return;
        };
        let failures = entry.attempt.saturating_add(1);
        if s.retry.gives_up_after(failures) {
            self.give_up(s, id, now, failures, error);
            return;
        }
        let delay = s.retry.delay(entry.attempt);
        let (chunk, tag) = (entry.meta.id_hex(), entry.meta.tag.clone());
        tracing::warn!(
            chunk,
            tag,
            attempt = failures,
            delay_ms = delay.as_millis() as u64,
            error = error as &dyn std::error::Error,
            "Chunk upload failed; retrying later."
        );
        if let Some(entry) = self.chunks.get_mut(&id) {
            entry.attempt = failures;
        }
        self.make_ready(id, add(now, delay));
    }

    fn give_up(
        &mut self,
        s: &Settings,
        id: Id,
        now: Timestamp,
        failures: u32,
        error: &(dyn std::error::Error + 'static),
    ) {
        if s.kind == BufferType::File
            && let Err(e) = self.save_state(s, now)
        {
            tracing::error!(error = %e, "Cannot save the buffer state; keeping the chunk.");
            self.make_ready(id, add(now, s.retry.delay(failures)));
            return;
        }
        let Some(mut entry) = self.chunks.remove(&id) else {
            return;
        };
        self.forget(&entry);
        self.failed += 1;
        match &mut entry.store {
            Store::Disk { data_path, .. } => {
                let failed_dir = s.dir.join(FAILED_DIR);
                let moved = move_to_failed(s, &failed_dir, id, data_path);
                tracing::error!(
                    chunk = %entry.meta.id_hex(),
                    tag = %entry.meta.tag,
                    attempts = failures,
                    records = entry.meta.records,
                    path = %failed_dir.display(),
                    error = error as &dyn std::error::Error,
                    move_error = moved.err().map(tracing::field::display),
                    "Chunk upload failed too many times; moved it to the failed directory."
                );
            }
            Store::Memory { acks, .. } => {
                for token in &acks.tokens {
                    token.update(AckStatus::Rejected);
                }
                tracing::error!(
                    chunk = %entry.meta.id_hex(),
                    tag = %entry.meta.tag,
                    attempts = failures,
                    records = entry.meta.records,
                    error = error as &dyn std::error::Error,
                    "Chunk upload failed too many times; its records are dropped (memory buffer)."
                );
            }
        }
    }

    /// Writes `state.json`: positions and sequence counters, pruned.
    pub(crate) fn save_state(&mut self, s: &Settings, now: Timestamp) -> Result<(), BufferError> {
        let secs = now.unix_seconds();
        self.positions
            .prune(secs.saturating_sub(POSITION_RETENTION_SECS));
        let positions = match s.kind {
            BufferType::File => &self.positions,
            BufferType::Memory => &Positions::default(),
        };
        save_state(&s.dir.join(STATE_FILE), positions, &self.seqs, s.fsync)
    }
}

/// The file part of sealing.
fn seal_store(s: &Settings, entry: &mut Entry, now: Timestamp) -> Result<(), BufferError> {
    let Store::Disk {
        data_path,
        data,
        pos,
    } = &mut entry.store
    else {
        entry.meta.sealed_at = Some(now);
        return Ok(());
    };
    if s.fsync != FsyncMode::Never {
        if let Some(file) = data {
            file.sync_data()
                .map_err(|e| BufferError::io("fsync", data_path.clone(), e))?;
        }
        if let Some(file) = pos {
            let path = s.dir.join(file_name(FileKind::Positions, &entry.meta.id));
            file.sync_data()
                .map_err(|e| BufferError::io("fsync", path, e))?;
        }
    }
    let mut sealed = entry.meta.clone();
    sealed.sealed_at = Some(now);
    let meta_path = s.dir.join(file_name(FileKind::Meta, &sealed.id));
    write_atomic(&meta_path, &encode_meta(&sealed), s.fsync)?;
    entry.meta = sealed;
    *data = None;
    *pos = None;
    let sealed_path = s.dir.join(file_name(FileKind::SealedData, &entry.meta.id));
    match fs::rename(&*data_path, &sealed_path) {
        Ok(()) => {
            *data_path = sealed_path;
            if let Err(e) = sync_parent(data_path, s.fsync) {
                tracing::warn!(error = %e, "Cannot fsync the buffer directory.");
            }
        }
        // The metadata already says sealed; the next open renames the file.
        Err(e) => tracing::warn!(
            path = %data_path.display(),
            error = %e,
            "Cannot rename a sealed chunk file; it keeps its open name."
        ),
    }
    Ok(())
}

/// Moves a chunk's files into `failed/`: metadata first, so that a crash half-way leaves
/// data without metadata, which the next open also moves there.
pub(crate) fn move_to_failed(
    s: &Settings,
    failed_dir: &Path,
    id: Id,
    data_path: &Path,
) -> Result<(), BufferError> {
    fs::create_dir_all(failed_dir).map_err(|e| BufferError::io("create", failed_dir, e))?;
    let mut files = vec![s.dir.join(file_name(FileKind::Meta, &id))];
    files.push(data_path.to_owned());
    files.push(s.dir.join(file_name(FileKind::Positions, &id)));
    for path in files {
        let Some(name) = path.file_name() else {
            continue;
        };
        let target = failed_dir.join(name);
        match fs::rename(&path, &target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BufferError::io("rename", path, e));
            }
            _ => {}
        }
    }
    sync_parent(&failed_dir.join("x"), s.fsync)?;
    sync_parent(data_path, s.fsync)
}
